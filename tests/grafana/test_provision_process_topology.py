"""The datasources `stack provision` compares on the process runtime are the ones the local Grafana was
given (127.0.0.1 and the ports assigned at `up`), not the compose ones (`http://prometheus:9090`)."""

from __future__ import annotations

from pathlib import Path

from stack.components.base import RenderContext
from stack.components.grafana import datasources
from stack.grafana.provision import stack_datasources
from stack.paths import Paths
from stack.project import load
from stack.runtime.process.runtime import ProcessRuntime
from stack.runtime.process.topology import LocalTopology


def test_process_runtime_datasources_are_those_its_grafana_was_rendered_with(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text("runtime: process\n")
    paths = Paths.discover(project_dir / "stack.yaml")
    runtime = ProcessRuntime(load(paths), paths)
    state = runtime.state_file.load()
    state.ports = {"prometheus": {"http": 19090}, "loki": {"http": 13100, "grpc": 19096}, "tempo": {"http": 13200}}
    state.ports["alertmanager"] = {"http": 19093}
    runtime.state_file.save(state)

    compared = {source["uid"]: source["url"] for source in stack_datasources(runtime.settings, runtime)}
    rendered = datasources(
        RenderContext(settings=runtime.settings, topology=LocalTopology(state.ports, runtime.settings))
    )
    assert compared == {source["uid"]: source["url"] for source in rendered}
    assert "http://127.0.0.1:19090" in compared.values()
    assert not [url for url in compared.values() if "prometheus:9090" in url]
