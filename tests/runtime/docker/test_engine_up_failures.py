"""`stack up` failing on the real test engine (tests/support/engine.py): each failure is one clear line, and what
an interrupted `up` started, `down` removes. Grafana, Loki, Tempo and the Collector are disabled."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from stack.net.ports import free_port
from tests.support.engine import Engine
from tests.support.enginestack import prometheus_and_alertmanager, running_stack
from tests.support.images import exits_at_start_image, prometheus_image

pytestmark = pytest.mark.docker


def flat(output: str) -> str:
    """The output with rich's wrapping at 80 columns undone."""
    return " ".join(output.split())


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error: ")]


def test_up_with_a_published_port_taken_on_loopback_names_the_port(engine: Engine, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with running_stack(engine, tmp_path, prometheus_and_alertmanager(engine, alertmanager_port=port)) as stack:
            result = stack.stack("up", "--timeout", "60")
    assert result.exit_code == 1, result.output
    assert error_lines(result.output) == [
        f"Error: port {port} on 127.0.0.1 is already in use (hint: stop what uses it, "
        "or set components.alertmanager.port to a free port in stack.yaml)"
    ], result.output


def test_up_with_an_image_not_present_and_not_pullable_names_the_image(engine: Engine, tmp_path: Path) -> None:
    components = prometheus_and_alertmanager(engine, alertmanager_port=free_port())
    components["alertmanager"]["image"] = "prom/alertmanager:v0.0.0-absent"
    with running_stack(engine, tmp_path, components) as stack:
        result = stack.stack("up", "--timeout", "60")
    assert result.exit_code == 1, result.output
    [line] = error_lines(result.output)
    assert line.startswith("Error: cannot pull prom/alertmanager:v0.0.0-absent: "), result.output


def test_up_on_a_data_volume_owned_by_another_user_gives_the_permission_hint(engine: Engine, tmp_path: Path) -> None:
    components = prometheus_and_alertmanager(engine, alertmanager_port=free_port())
    with running_stack(engine, tmp_path, components) as stack:
        first = stack.stack("up", "--timeout", "120")
        assert first.exit_code == 0, first.output
        volume = stack.volume("prometheus")
        assert stack.stack("down").exit_code == 0
        # As an old volume or a restore made by hand leaves it: owned by root, closed to the image's user.
        chown = ["run", "--rm", "--user", "0", "--entrypoint", "/bin/sh", "-v", f"{volume}:/prometheus"]
        stack.engine.docker(*chown, prometheus_image(engine), "-c", "chown -R 0:0 /prometheus; chmod 700 /prometheus")
        result = stack.stack("up", "--timeout", "60")
    assert result.exit_code == 1, result.output
    assert "hint: permission denied on its data: the volume is owned by another user" in flat(result.output)


def test_up_of_a_container_that_exits_at_start_shows_its_state_and_last_log_lines(
    engine: Engine, tmp_path: Path
) -> None:
    components = prometheus_and_alertmanager(engine, alertmanager_port=free_port())
    components["alertmanager"]["image"] = exits_at_start_image(engine)
    with running_stack(engine, tmp_path, components) as stack:
        result = stack.stack("up", "--timeout", "60")
    assert result.exit_code == 1, result.output
    assert "Error: alertmanager is not ready: restarting (it keeps exiting, last exit code 3)" in flat(result.output)
    assert "fatal: cannot start (test image exits at start)" in result.output


def test_ctrl_c_during_up_leaves_nothing_that_down_does_not_remove(engine: Engine, tmp_path: Path) -> None:
    components = prometheus_and_alertmanager(engine, alertmanager_port=free_port())
    with running_stack(engine, tmp_path, components) as stack:
        up = subprocess.Popen(stack.argv("up"), env=stack.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not stack.container_ids() and time.monotonic() < deadline and up.poll() is None:
            time.sleep(0.1)
        assert stack.container_ids(), "up started no container within 60 s"
        up.send_signal(signal.SIGINT)
        _, stderr = up.communicate(timeout=60)
        assert up.returncode != 0 and b"Traceback" not in stderr, stderr.decode()
        down = stack.stack("down", "--volumes", "--yes")
        assert down.exit_code == 0, down.output
        assert (stack.container_ids(), stack.networks(), stack.volumes()) == ([], [], [])
