"""The process runtime with Debian's real prometheus and prometheus-alertmanager."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.errors import EXIT_FAILURE, RuntimeUnavailable, StackError
from stack.health import probe, startup_diagnosis
from stack.net.ports import free_port
from stack.paths import Paths
from stack.polling import poll_until
from stack.project import load
from stack.runtime.base import Runtime, StartupFailure
from stack.runtime.process.binaries import pinned_version
from stack.runtime.process.ports import PortInUse
from stack.runtime.process.runtime import ProcessRuntime
from stack.runtime.process.state import ProcessRecord, boot_id, start_ticks
from stack.runtime.select import get_runtime
from stack.settings import COMPONENT_NAMES
from tests.support.realbin import binary


def _settings_text(alertmanager_port: int, extra: dict[str, Any] | None = None) -> str:
    """Prometheus and Alertmanager only, both at ports the OS gave: never 9090/9093, which other
    test runs on this machine may hold."""
    data: dict[str, Any] = {
        "project": "proc-test",
        "runtime": "process",
        "components": {name: {"enabled": False} for name in COMPONENT_NAMES},
    }
    data["components"]["prometheus"] = {"scrape_interval": "1s", "port": free_port()}
    data["components"]["alertmanager"] = {"port": alertmanager_port}
    for key, value in (extra or {}).items():
        if key == "components":
            for name, block in value.items():
                data["components"][name] = {**data["components"][name], **block}
        else:
            data[key] = value
    return yaml.safe_dump(data)


def open_runtime(directory: Path) -> ProcessRuntime:
    paths = Paths.discover(directory / "stack.yaml")
    runtime = get_runtime(load(paths), paths)
    assert isinstance(runtime, ProcessRuntime)
    return runtime


def processes_under(root: Path) -> list[str]:
    """Command lines of live processes that mention `root` (what the runtime started there)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(root) in command and state not in ("Z", "X"):
            found.append(f"{proc.name}: {command}")
    return found


@pytest.fixture
def project(project_dir: Path) -> Iterator[Path]:
    binary("prometheus")
    binary("prometheus-alertmanager", "alertmanager")
    (project_dir / "stack.yaml").write_text(_settings_text(free_port()))
    yield project_dir
    open_runtime(project_dir).down(volumes=True, timeout=5)
    assert processes_under(project_dir) == []


def _wait(condition: Any, timeout: float = 30) -> None:
    assert poll_until(condition, timeout, interval=0.2), "condition not met in time"


def test_it_is_a_runtime_and_checks_versions(project: Path) -> None:
    runtime = open_runtime(project)
    assert isinstance(runtime, Runtime)
    runtime.check()
    # Debian ships older versions than the pinned images: a warning, not a failure.
    assert any("alertmanager" in warning and "pins 0.35.1" in warning for warning in runtime.warnings)
    # Prometheus' config is rendered for the binary's version: the warning says so.
    prometheus = next(warning for warning in runtime.warnings if warning.startswith("prometheus:"))
    assert re.search(r"; its config and flags are rendered for \d+\.\d+\.\d+$", prometheus), prometheus
    assert pinned_version("prom/prometheus:v3.14.0") == "3.14.0"
    assert pinned_version("otel/opentelemetry-collector-contrib:0.160.0") == "0.160.0"
    assert pinned_version("grafana/grafana@sha256:abc") is None


def test_up_status_alert_and_down_with_real_binaries(project: Path) -> None:
    runtime = open_runtime(project)
    runtime.up()
    states = {state.name: state for state in runtime.ps()}
    assert {name: state.state for name, state in states.items()} == {"prometheus": "running", "alertmanager": "running"}
    assert runtime.http("prometheus", "http", "/-/ready").status == 200
    assert runtime.http("alertmanager", "http", "/-/ready").status == 200

    # Prometheus scrapes itself and Alertmanager, and loads the rendered rules.
    def targets_up() -> bool:
        reply = json.loads(runtime.http("prometheus", "http", "/api/v1/targets").body)
        health = {target["labels"]["job"]: target["health"] for target in reply["data"]["activeTargets"]}
        return health == {"prometheus": "up", "alertmanager": "up"}

    _wait(targets_up)
    groups = json.loads(runtime.http("prometheus", "http", "/api/v1/rules").body)["data"]["groups"]
    rules = [rule["name"] for group in groups for rule in group["rules"]]
    assert "StackComponentDown" in rules
    assert all(rule["health"] in ("ok", "unknown") for group in groups for rule in group["rules"])
    alertmanagers = json.loads(runtime.http("prometheus", "http", "/api/v1/alertmanagers").body)["data"]
    assert [am["url"] for am in alertmanagers["activeAlertmanagers"]] == [
        f"http://127.0.0.1:{runtime.settings.component('alertmanager').port}/api/v2/alerts"
    ]

    # An alert posted to Alertmanager's API is listed.
    alert = [{"labels": {"alertname": "ProcessRuntimeTest", "severity": "warning"}}]
    posted = runtime.http(
        "alertmanager",
        "http",
        "/api/v2/alerts",
        method="POST",
        body=json.dumps(alert).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert posted.status == 200
    listed = json.loads(runtime.http("alertmanager", "http", "/api/v2/alerts").body)
    assert [a["labels"]["alertname"] for a in listed] == ["ProcessRuntimeTest"]

    # Published ports are offered as URLs.
    am_port = runtime.settings.component("alertmanager").port
    assert runtime.base_url("alertmanager", "http") == f"http://localhost:{am_port}"

    # Logs are per-component files, read back by logs().
    assert any("Server is ready to receive web requests" in line for line in runtime.logs("prometheus"))
    assert len(list(runtime.logs("alertmanager", tail=2))) == 2
    assert all(line.startswith(("prometheus | ", "alertmanager | ")) for line in runtime.logs(tail=3))
    assert list(runtime.logs("prometheus", since="2000-01-01T00:00:00Z"))
    assert not [line for line in runtime.logs("prometheus", since="2h") if "ts=2000" in line]

    # From a new shell (another Python process): status sees them, down stops them all.
    script = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from stack.paths import Paths
        from stack.project import load
        from stack.runtime.process.runtime import ProcessRuntime
        paths = Paths.discover(Path(sys.argv[1]) / "stack.yaml")
        runtime = ProcessRuntime(load(paths), paths)
        print(json.dumps([state.state for state in runtime.ps()]))
        runtime.down()
        print(json.dumps([state.state for state in runtime.ps()]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(project)], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ['["running", "running"]', '["missing", "missing"]']
    assert processes_under(project) == []
    # Data is kept by a plain down.
    assert (runtime.root / "prometheus" / "data" / "wal").is_dir()


def test_up_is_idempotent_and_restarts_only_what_changed(project: Path) -> None:
    runtime = open_runtime(project)
    runtime.up()
    before = {name: record.pid for name, record in runtime.state_file.load().processes.items()}
    runtime.up()
    assert {name: record.pid for name, record in runtime.state_file.load().processes.items()} == before
    settings_file = project / "stack.yaml"
    data = yaml.safe_load(settings_file.read_text())
    data["components"]["prometheus"]["retention"] = "2d"
    settings_file.write_text(yaml.safe_dump(data))
    runtime = open_runtime(project)
    runtime.up()
    after = {name: record.pid for name, record in runtime.state_file.load().processes.items()}
    assert after["alertmanager"] == before["alertmanager"]
    assert after["prometheus"] != before["prometheus"]
    assert [state.state for state in runtime.ps()] == ["running", "running"]
    # The previous run's log is kept beside the new one.
    assert (runtime.logs_dir / "prometheus.log.1").exists()


def test_stop_and_start(project: Path) -> None:
    runtime = open_runtime(project)
    runtime.up()
    runtime.stop(["alertmanager"], timeout=5)
    assert {s.name: s.state for s in runtime.ps()} == {"prometheus": "running", "alertmanager": "exited"}
    runtime.start(["alertmanager"])
    assert {s.name: s.state for s in runtime.ps()} == {"prometheus": "running", "alertmanager": "running"}


def test_a_port_already_taken_is_named_and_nothing_runs(project: Path) -> None:
    port = open_runtime(project).settings.component("alertmanager").port
    assert port is not None
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        runtime = open_runtime(project)
        with pytest.raises(PortInUse) as caught:
            runtime.up()
    message = caught.value.one_line()
    assert f"alertmanager: port {port} on 127.0.0.1 (components.alertmanager.port) is already in use" in message
    assert f"pid {os.getpid()}" in message
    assert "set components.alertmanager.port to a free port" in message
    assert processes_under(project) == []
    assert [state.state for state in runtime.ps()] == ["missing", "missing"]


def test_a_missing_binary_is_listed_with_how_to_get_it(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (project / "stack.yaml").read_text()
    data = yaml.safe_load(text)
    data["components"]["loki"] = {"enabled": True}
    (project / "stack.yaml").write_text(yaml.safe_dump(data))
    runtime = open_runtime(project)
    with pytest.raises(RuntimeUnavailable) as caught:
        runtime.up()
    message = caught.value.one_line()
    assert "loki (loki or loki-linux-amd64 or loki-linux-arm64): download loki from" in message
    assert "components.loki.enabled: false" in message
    # Only what is missing is listed.
    assert "prometheus (" not in message
    assert "alertmanager (" not in message
    assert processes_under(project) == []
    # With nothing on PATH, every binary is missing, Debian's names included in the list.
    monkeypatch.setenv("PATH", str(project / "nothing"))
    with pytest.raises(RuntimeUnavailable) as caught:
        open_runtime(project).binaries()
    assert "alertmanager (alertmanager or prometheus-alertmanager)" in caught.value.one_line()
    # Looking at the stack (check, status, down) does not need the binaries.
    open_runtime(project).check()
    open_runtime(project).down()


def test_a_component_that_exits_at_start_up_is_reported_and_nothing_runs(project: Path) -> None:
    data = yaml.safe_load((project / "stack.yaml").read_text())
    # A route to a receiver that does not exist: the real Alertmanager refuses the config and exits.
    data["components"]["alertmanager"]["overrides"] = {"route": {"receiver": "nobody"}}
    (project / "stack.yaml").write_text(yaml.safe_dump(data))
    runtime = open_runtime(project)
    with pytest.raises(StartupFailure) as caught:
        runtime.up()
    failure = caught.value
    assert failure.component == "alertmanager"
    assert failure.component_exit_code == 1
    assert failure.exit_code == EXIT_FAILURE  # the CLI exits 1, whatever code the component had
    assert 0 < len(failure.tail) <= 30
    assert "nobody" in failure.one_line()
    assert failure.one_line().startswith("alertmanager exited during start-up with code 1: ")
    # Prometheus, started in the same call, was stopped again.
    assert processes_under(project) == []
    assert [state.state for state in runtime.ps()] == ["missing", "missing"]


def _fake_binary(directory: Path, name: str, body: str) -> None:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(f"#!{sys.executable}\n{textwrap.dedent(body)}")
    path.chmod(0o755)


def test_bin_dir_comes_before_path_and_an_instant_exit_is_reported(project: Path) -> None:
    data = yaml.safe_load((project / "stack.yaml").read_text())
    data["process"] = {"bin_dir": "bin"}
    (project / "stack.yaml").write_text(yaml.safe_dump(data))
    _fake_binary(
        project / "bin",
        "prometheus",
        """
        import sys
        if "--version" in sys.argv:
            print("prometheus, version 3.14.0 (branch: HEAD)")
            sys.exit(0)
        print("level=error msg=\\"cannot open the storage\\"", flush=True)
        sys.exit(3)
        """,
    )
    runtime = open_runtime(project)
    runtime.check()
    assert not any(warning.startswith("prometheus") for warning in runtime.warnings)
    with pytest.raises(StartupFailure) as caught:
        runtime.up()
    assert caught.value.component_exit_code == 3
    assert caught.value.exit_code == EXIT_FAILURE
    assert caught.value.tail == ['level=error msg="cannot open the storage"']
    assert processes_under(project) == []


def test_down_kills_what_ignores_sigterm_and_never_touches_strangers(project: Path) -> None:
    data = yaml.safe_load((project / "stack.yaml").read_text())
    data["process"] = {"bin_dir": "bin"}
    (project / "stack.yaml").write_text(yaml.safe_dump(data))
    # An Alertmanager stand-in that answers HTTP but ignores SIGTERM.
    _fake_binary(
        project / "bin",
        "alertmanager",
        """
        import http.server, signal, sys
        if "--version" in sys.argv:
            print("alertmanager, version 0.35.1")
            sys.exit(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        address = [a for a in sys.argv if a.startswith("--web.listen-address=")][0].split("=", 1)[1]
        host, port = address.rsplit(":", 1)
        class Ok(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
        http.server.HTTPServer((host, int(port)), Ok).serve_forever()
        """,
    )
    runtime = open_runtime(project)
    runtime.up()
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        state = runtime.state_file.load()
        # A record that names a live process started by someone else (the pid was reused).
        ticks = start_ticks(stranger.pid)
        assert ticks is not None
        state.processes["grafana"] = ProcessRecord(
            stranger.pid, ticks + 1, boot_id(), ["grafana"], "2026-01-01T00:00:00+00:00", "x.log", "hash"
        )
        runtime.state_file.save(state)
        runtime.down(timeout=1)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
    assert processes_under(project) == []


def test_copy_out_copy_in_and_exec(project: Path) -> None:
    runtime = open_runtime(project)
    runtime.up()
    snapshot = json.loads(runtime.http("prometheus", "http", "/api/v1/admin/tsdb/snapshot", method="POST").body)
    name = snapshot["data"]["name"]
    archive = runtime.copy_out("prometheus", f"/prometheus/snapshots/{name}")
    with tarfile.open(fileobj=archive, mode="r|") as tar:
        members = [member.name for member in tar]
    assert members[0] == name
    listed = runtime.exec("prometheus", ["promtool", "tsdb", "list", f"/prometheus/snapshots/{name}"])
    assert listed.ok, listed.output

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        payload = b"restored\n"
        info = tarfile.TarInfo("restore-test/file.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    buffer.seek(0)
    runtime.copy_in("prometheus", "/prometheus", buffer)
    assert (runtime.root / "prometheus" / "data" / "restore-test" / "file.txt").read_bytes() == b"restored\n"

    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tar:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    evil.seek(0)
    with pytest.raises(Exception, match="cannot unpack"):
        runtime.copy_in("prometheus", "/prometheus", evil)
    assert not (runtime.root / "escaped.txt").exists()

    with pytest.raises(Exception, match="not part of its state"):
        runtime.copy_out("prometheus", "/etc/passwd")
    # Outside a container an absolute path would reach the whole machine: refused.
    with pytest.raises(Exception, match="not part of its state"):
        runtime.exec("prometheus", ["rm", "-rf", "/tmp/somewhere-else"])
    removed = runtime.exec("prometheus", ["rm", "-rf", f"/prometheus/snapshots/{name}"])
    assert removed.ok and not (runtime.root / "prometheus" / "data" / "snapshots" / name).exists()


def _tree(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path under `root` with its mode and, for files, its bytes: equal trees, equal states."""
    found: dict[str, tuple[int, bytes | None]] = {".": (root.stat().st_mode, None)}
    for path in sorted(root.rglob("*")):
        found[str(path.relative_to(root))] = (path.stat().st_mode, path.read_bytes() if path.is_file() else None)
    return found


def _tar(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_replace_state_leaves_exactly_the_archive_and_rolls_back_a_bad_one(project: Path) -> None:
    runtime = open_runtime(project)
    data = runtime.root / "prometheus" / "data"
    (data / "01OLDBLOCK").mkdir(parents=True)
    (data / "01OLDBLOCK" / "meta.json").write_text('{"old": true}')
    (data / "written-after-the-backup").write_text("must go")
    data.chmod(0o750)

    runtime.replace_state("prometheus", "/prometheus", io.BytesIO(_tar(("01NEW/meta.json", b"{}"), ("wal/0", b"w"))))

    assert sorted(_tree(data)) == [".", "01NEW", "01NEW/meta.json", "wal", "wal/0"]
    assert data.stat().st_mode & 0o7777 == 0o750
    assert [p.name for p in data.parent.iterdir() if ".previous-" in p.name] == []

    before = _tree(data)
    whole = _tar(("01BROKEN/index", b"i" * 4096), ("01BROKEN/chunks/000001", b"c" * 200_000))
    bad_archives = {
        # Cut inside its second member: the first one is already unpacked when the stream ends.
        "truncated": whole[: len(whole) // 2],
        "corrupt": b"\x00garbage, not a tar stream" * 40,
        "escaping": _tar(("01X/meta.json", b"{}"), ("../../escaped", b"x")),
    }
    for label, archive in bad_archives.items():
        with pytest.raises(StackError) as caught:
            runtime.replace_state("prometheus", "/prometheus", io.BytesIO(archive))
        line = caught.value.one_line()
        assert line.startswith("prometheus: cannot unpack the archive into /prometheus: "), (label, line)
        assert line.endswith("; its previous state is back in place"), (label, line)
        assert "\n" not in str(caught.value), label
        assert _tree(data) == before, label
        assert [p.name for p in data.parent.iterdir() if ".previous-" in p.name] == [], label
    assert not (runtime.root / "escaped").exists()

    with pytest.raises(StackError, match=r"^prometheus: /prometheus/wal is not one of its state directories$"):
        runtime.replace_state("prometheus", "/prometheus/wal", io.BytesIO(_tar(("x", b"x"))))
    assert _tree(data) == before


def test_replace_state_refuses_a_running_component(project: Path) -> None:
    runtime = open_runtime(project)
    runtime.up()
    data = runtime.root / "prometheus" / "data"
    before = sorted(p.name for p in data.iterdir())
    archive = io.BytesIO(_tar(("01NEW/meta.json", b"{}")))

    with pytest.raises(StackError) as caught:
        runtime.replace_state("prometheus", "/prometheus", archive)

    assert caught.value.one_line() == (
        "prometheus is running: its state cannot be replaced (hint: stack stop prometheus)"
    )
    assert archive.tell() == 0
    assert sorted(p.name for p in data.iterdir()) == before
    assert {s.name: s.state for s in runtime.ps()}["prometheus"] == "running"

    runtime.stop(["prometheus"], timeout=5)
    runtime.replace_state("prometheus", "/prometheus", archive)
    assert sorted(p.name for p in data.iterdir()) == ["01NEW"]


def test_down_volumes_deletes_the_data(project: Path) -> None:
    runtime = open_runtime(project)
    runtime.up()
    assert (runtime.root / "prometheus" / "data").is_dir()
    runtime.down(volumes=True, timeout=5)
    assert not (runtime.root / "prometheus").exists()
    assert processes_under(project) == []
    with pytest.raises(ConnectionError):
        runtime.http("prometheus", "http", "/-/ready")


def test_a_port_taken_while_starting_is_recognised() -> None:
    tail = ['msg="Unable to start web listener" err="listen tcp 127.0.0.1:9090: bind: address already in use"']
    failure = StartupFailure("prometheus", 1, Path("prometheus.log"), tail)
    assert failure.taken_port == 9090
    assert StartupFailure("prometheus", 1, Path("p.log"), ["other"]).taken_port is None
    assert "a port is already in use" in " ".join(startup_diagnosis(failure).hints)


def test_a_restarted_component_keeps_its_assigned_port(project: Path) -> None:
    # Prometheus unpublished (its default, for the admin API): the runtime assigns its port. It
    # would take 9090 when free, which other test runs here may take too while Prometheus restarts:
    # the port it had before comes from the OS instead (kept while free, like 9090 would be).
    data = yaml.safe_load((project / "stack.yaml").read_text())
    data["components"]["prometheus"]["port"] = None
    (project / "stack.yaml").write_text(yaml.safe_dump(data))
    runtime = open_runtime(project)
    state = runtime.state_file.load()
    state.ports["prometheus"] = {"http": free_port()}
    runtime.state_file.save(state)
    runtime.up()
    port = runtime.state_file.load().ports["prometheus"]["http"]
    assert port == state.ports["prometheus"]["http"]
    # Only published ports are offered as URLs; Prometheus (admin API) stays internal.
    assert runtime.base_url("prometheus", "http") is None
    data = yaml.safe_load((project / "stack.yaml").read_text())
    data["components"]["prometheus"]["retention"] = "3d"
    (project / "stack.yaml").write_text(yaml.safe_dump(data))
    runtime = open_runtime(project)
    runtime.up()
    assert runtime.state_file.load().ports["prometheus"]["http"] == port
    assert runtime.http("prometheus", "http", "/-/ready").status == 200


def _component_pid(record: ProcessRecord) -> int:
    children = (Path("/proc") / str(record.pid) / "task" / str(record.pid) / "children").read_text().split()
    assert len(children) == 1
    return int(children[0])


def test_a_crashed_component_is_restarted_and_its_exit_code_known(project: Path) -> None:
    runtime = open_runtime(project)
    runtime.up()
    record = runtime.state_file.load().processes["alertmanager"]
    crashed = _component_pid(record)
    os.kill(crashed, 9)  # the component itself dies, not its runner: a crash

    def state() -> tuple[str, int | None]:
        # A fresh runtime object each time, as from another shell.
        found = {s.name: s for s in open_runtime(project).ps()}["alertmanager"]
        return found.state, found.exit_code

    assert poll_until(lambda: state() == ("restarting", 137), 5)
    assert poll_until(lambda: state()[0] == "running", 10)
    assert _component_pid(record) != crashed
    assert record.alive()
    assert poll_until(lambda: probe(runtime, "alertmanager").ready, 10)
    # Stopped on purpose, it stays stopped.
    runtime.stop(["alertmanager"], timeout=5)
    assert state()[0] == "exited"
    assert processes_under(project) != []  # Prometheus still runs


def test_data_dir_holds_one_directory_per_project(project: Path) -> None:
    data = yaml.safe_load((project / "stack.yaml").read_text())
    data["process"] = {"data_dir": "var/stack"}
    (project / "stack.yaml").write_text(yaml.safe_dump(data))
    runtime = open_runtime(project)
    assert runtime.root == project / "var" / "stack" / "proc-test"
    runtime.up()
    assert (project / "var/stack/proc-test/state.json").stat().st_mode & 0o777 == 0o600
    assert (project / "var/stack/proc-test/prometheus/data").is_dir()
    assert (project / "var/stack/proc-test/logs/prometheus.log").stat().st_mode & 0o777 == 0o600
    runtime.down(volumes=True)
    assert processes_under(project) == []


def test_lifecycle_up_renders_the_project_once(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stack.render
    import stack.runtime.process.plan
    from stack import lifecycle

    renders: list[str] = []
    # stack.project imports the renderer when it renders (so the patch on stack.render counts its renders).
    for module in (stack.render, stack.runtime.process.plan):
        original = module.render_project

        def counted(*args: Any, _original: Any = original, _name: str = module.__name__, **kwargs: Any) -> Any:
            renders.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, "render_project", counted)
    paths = Paths.discover(project / "stack.yaml")
    result = lifecycle.up(paths, load(paths), open_runtime(project), timeout=60)
    assert result.readiness.ok
    # Rendered for this machine as the processes start; no compose file that nothing would read.
    assert renders == ["stack.runtime.process.plan"]
    assert not paths.compose_file.exists()
