"""A `stack` project on the session's real engine (tests/support/engine.py), for the tests of the Docker path.

`EngineStack` writes a stack.yaml in its own directory, runs the CLI in-process against it exactly as a
user would (`stack -c DIR/stack.yaml ...`), and reads what the engine really holds: containers, their
ids and start times, volumes. `running_stack` brings it down with its volumes however the test ends.

Images are the local ones of tests/support/images.py; the components of NO_IMAGE are disabled unless a test
gives them an image. Grafana, Loki and Tempo have no binary on this machine: a test that wants them uses
stand-ins and says so; a test that wants the Collector gives it `collector_image`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from stack.net.ports import free_port
from tests.conftest import invoke
from tests.support.engine import Engine
from tests.support.images import alertmanager_image, collector_image, prometheus_image

# Disabled unless a test gives them an image: Grafana, Loki and Tempo have none here (stand-ins only),
# and the Collector's (the stack's own build) goes only to the tests that want a Collector.
NO_IMAGE = ("otel-collector", "loki", "tempo", "grafana")
_serial = itertools.count(1)


def project_name(kind: str) -> str:
    """A compose project name no other test (nor another session on this machine) uses."""
    return f"stack-{kind}-{os.getpid()}-{next(_serial)}"


@dataclass
class EngineStack:
    engine: Engine
    directory: Path
    project: str
    components: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def settings_file(self) -> Path:
        return self.directory / "stack.yaml"

    def write(self) -> None:
        """stack.yaml for `components` (each one's settings), every component without an image disabled."""
        lines = [f"project: {self.project}", "components:"]
        for name in NO_IMAGE:
            if name not in self.components:
                lines.append(f"  {name}: {{enabled: false}}")
        for name, values in self.components.items():
            lines.append(f"  {name}: {json.dumps(values)}")
        self.settings_file.write_text("\n".join(lines) + "\n")

    def stack(self, *args: str) -> Result:
        """`stack -c DIR/stack.yaml ARGS`, in-process, against the test engine."""
        with _engine_environment(self.engine):
            return invoke("-c", str(self.settings_file), *args)

    def argv(self, *args: str) -> list[str]:
        """The same command line for a child process (`python -m stack ...`)."""
        import sys

        return [sys.executable, "-m", "stack", "-c", str(self.settings_file), *args]

    def env(self) -> dict[str, str]:
        """A child's environment: this engine only, no STACK_* setting leaking in."""
        kept = {k: v for k, v in os.environ.items() if not k.startswith("STACK_") and k != "DOCKER_CONTEXT"}
        return {**kept, **self.engine.env()}

    def container_ids(self, *, all: bool = True) -> list[str]:
        args = ["ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={self.project}"]
        return self.engine.docker(*args, *(["--all"] if all else [])).stdout.split()

    def containers(self) -> dict[str, dict[str, Any]]:
        """`docker inspect` of each of the project's containers, by compose service name."""
        ids = self.container_ids()
        if not ids:
            return {}
        inspected = json.loads(self.engine.docker("inspect", *ids).stdout)
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in inspected}

    def starts(self) -> dict[str, tuple[str, str]]:
        """Each container's id and start time: what a recreation or a restart would change."""
        return {name: (c["Id"], c["State"]["StartedAt"]) for name, c in self.containers().items()}

    def volumes(self) -> list[str]:
        args = ["volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={self.project}"]
        return self.engine.docker(*args).stdout.split()

    def networks(self) -> list[str]:
        args = ["network", "ls", "-q", "--filter", f"label=com.docker.compose.project={self.project}"]
        return self.engine.docker(*args).stdout.split()

    def volume(self, component: str, key: str = "data") -> str:
        """The engine's name of a component's named volume."""
        for mount in self.containers()[component]["Mounts"]:
            if mount.get("Type") == "volume" and mount["Name"].endswith(f"{component}-{key}"):
                return str(mount["Name"])
        raise AssertionError(f"{component} has no volume {key}")


def prometheus_and_alertmanager(engine: Engine, *, alertmanager_port: int) -> dict[str, dict[str, Any]]:
    """The smallest real stack: Prometheus (never published) and Alertmanager on 127.0.0.1."""
    return {
        "prometheus": {"image": prometheus_image(engine), "scrape_interval": "5s"},
        "alertmanager": {"image": alertmanager_image(engine), "port": alertmanager_port},
    }


@contextlib.contextmanager
def running_stack(
    engine: Engine, directory: Path, components: dict[str, dict[str, Any]], *, kind: str = "e2e"
) -> Iterator[EngineStack]:
    """An EngineStack written to `directory` (not started); `down --volumes --yes` afterwards, whatever happened."""
    directory.mkdir(parents=True, exist_ok=True)
    stack = EngineStack(engine, directory, project_name(kind), components)
    stack.write()
    try:
        yield stack
    finally:
        down = stack.stack("down", "--volumes", "--yes")
        assert down.exit_code == 0, down.output


@contextlib.contextmanager
def _engine_environment(engine: Engine) -> Iterator[None]:
    names = ["DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", *(n for n in os.environ if n.startswith("STACK_"))]
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ.pop(name, None)
    os.environ.update(engine.env())
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def absent_images(engine: Engine, images: list[str]) -> list[str]:
    """The images the engine does not have (nothing is ever pulled in the tests)."""
    return [image for image in images if engine.docker("image", "inspect", image, check=False).returncode != 0]


def full_stack_images(engine: Engine) -> dict[str, str]:
    """An image per component: Prometheus, Alertmanager and the Collector built here; Grafana, Loki and
    Tempo as stack.yaml's defaults (present only where a test image for them exists on the engine: see
    `absent_images`)."""
    from stack.settings import Settings

    defaults = Settings()
    images = {name: defaults.component(name).image for name in ("loki", "tempo", "grafana")}
    return {
        **images,
        "prometheus": prometheus_image(engine),
        "alertmanager": alertmanager_image(engine),
        "otel-collector": collector_image(engine),
    }


# The published ports of the full stack: one per component, and the Collector's health, OTLP gRPC and HTTP.
FULL_STACK_PORTS = ("grafana", "loki", "tempo", "alertmanager", "health", "grpc", "http")


def full_stack_settings(
    engine: Engine, project_dir: Path, extra: str = "", images: dict[str, str] | None = None
) -> dict[str, int]:
    """Every component, on the test engine, with its port free on 127.0.0.1 (returned by name, as
    FULL_STACK_PORTS); skipped while an image is absent.

    Grafana, Loki and Tempo have no binary on this machine: a test that needs the real ones cannot run
    until the engine has an image for each; `images` gives their stand-ins instead.
    """
    ports = {name: free_port() for name in FULL_STACK_PORTS}
    images = images or full_stack_images(engine)
    absent = absent_images(engine, list(images.values()))
    if absent:
        pytest.skip(f"no image on the test engine for {', '.join(absent)} (nothing is pulled in the tests)")
    (project_dir / "stack.yaml").write_text(
        f"project: stack-e2e-{os.getpid()}\n"
        "components:\n"
        f"  prometheus: {{image: {images['prometheus']}}}\n"
        f"  grafana: {{image: {images['grafana']}, port: {ports['grafana']}}}\n"
        f"  loki: {{image: {images['loki']}, port: {ports['loki']}}}\n"
        f"  tempo: {{image: {images['tempo']}, port: {ports['tempo']}}}\n"
        f"  alertmanager: {{image: {images['alertmanager']}, port: {ports['alertmanager']}}}\n"
        f"  otel-collector: {{image: {images['otel-collector']}, port: {ports['health']}, "
        f"otlp_grpc_port: {ports['grpc']}, otlp_http_port: {ports['http']}}}\n" + extra
    )
    return ports


def write_engine_settings(project_dir: Path, engine: Engine, prefix: str) -> str:
    """Prometheus (unpublished, scraping every second) and Alertmanager on a free port; returns the
    compose project's name (`prefix`-pid)."""
    project = f"{prefix}-{os.getpid()}"
    (project_dir / "stack.yaml").write_text(
        f"project: {project}\n"
        "components:\n"
        f"  prometheus: {{image: {prometheus_image(engine)}, scrape_interval: 1s}}\n"
        f"  alertmanager: {{image: {alertmanager_image(engine)}, port: {free_port()}}}\n"
        "  otel-collector: {enabled: false}\n"
        "  loki: {enabled: false}\n"
        "  tempo: {enabled: false}\n"
        "  grafana: {enabled: false}\n"
    )
    return project
