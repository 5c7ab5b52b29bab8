"""Each runtime has the optional abilities (stack/runtime/abilities.py) that its callers ask for by
isinstance, not by probing an attribute's name: a renamed member then fails here, and in mypy, instead
of silently taking the default (as `provision` did with the process runtime's topology)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stack.components.base import ComposeTopology
from stack.grafana.provision import stack_datasources
from stack.paths import Paths
from stack.project import load
from stack.runtime import abilities
from stack.runtime.docker.runtime import DockerRuntime
from stack.runtime.process.runtime import ProcessRuntime
from stack.runtime.process.topology import LocalTopology
from stack.runtime.swarm.runtime import SwarmRuntime

ABILITIES = (
    abilities.PullsImages,
    abilities.Warns,
    abilities.ChecksStart,
    abilities.RendersItself,
    abilities.StopTimeout,
    abilities.ShowsPlacement,
    abilities.ChecksWhileListing,
    abilities.HasTopology,
)


def has(runtime: Any) -> set[str]:
    return {ability.__name__ for ability in ABILITIES if isinstance(runtime, ability)}


def test_each_runtime_has_the_abilities_it_is_asked_for(project_dir: Path) -> None:
    paths = Paths.discover(project_dir / "stack.yaml")
    settings = load(paths)
    assert has(ProcessRuntime(settings, paths)) == {
        "Warns",
        "ChecksStart",
        "RendersItself",
        "StopTimeout",
        "HasTopology",
    }
    assert has(DockerRuntime(settings, paths)) == {"PullsImages", "ChecksWhileListing"}
    # Swarm builds on the Docker runtime: it pulls and lists the same way.
    assert has(SwarmRuntime(settings, paths)) == {
        "PullsImages",
        "ChecksWhileListing",
        "RendersItself",
        "ShowsPlacement",
    }


def test_provision_compares_datasources_in_the_topology_the_runtime_declares(project_dir: Path) -> None:
    paths = Paths.discover(project_dir / "stack.yaml")
    settings = load(paths)
    topology = LocalTopology({"prometheus": {"http": 19090}}, settings)

    class Declares:
        def __init__(self) -> None:
            self.topology = topology

    assert isinstance(Declares(), abilities.HasTopology)
    urls = {source["uid"]: source["url"] for source in stack_datasources(settings, Declares())}  # type: ignore[arg-type]
    assert urls["prometheus"] == "http://127.0.0.1:19090"
    compose = {source["uid"]: source["url"] for source in stack_datasources(settings, DockerRuntime(settings, paths))}
    assert compose["prometheus"] == f"http://{ComposeTopology().host('prometheus')}:9090"
