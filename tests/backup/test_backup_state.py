"""Alertmanager silences on a real Alertmanager, and Loki/Tempo: flushed, then their state copied."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from stack.backup.create import create_backup
from stack.backup.restore import restore_backup
from stack.backup.verify import verify_backup
from stack.cli import cli
from stack.paths import Paths
from stack.settings import Settings
from tests.conftest import invoke
from tests.support.httpservers import http_server
from tests.support.local_runtime import LocalRuntime, LocalService
from tests.support.realbin import alertmanager


def alertmanager_service(root: Path) -> LocalService:
    config = root / "alertmanager.yml"
    config.write_text("route: {receiver: default}\nreceivers: [{name: default}]\n")

    @contextlib.contextmanager
    def start(service: LocalService) -> Iterator[Any]:
        with alertmanager(config, service.data_dir) as server:
            yield server

    return LocalService("alertmanager", "/alertmanager", root / "am-data", start, image="prom/alertmanager:v0.35.1")


def _silence(url: str, name: str, hours: int) -> str:
    now = datetime.now(UTC)
    body = {
        "matchers": [{"name": "alertname", "value": name, "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=hours)).isoformat(),
        "createdBy": "tests",
        "comment": f"quiet {name}",
    }
    reply = requests.post(f"{url}/api/v2/silences", json=body, timeout=5)
    reply.raise_for_status()
    return str(reply.json()["silenceID"])


def _active(url: str) -> set[tuple[str, str]]:
    silences = requests.get(f"{url}/api/v2/silences", timeout=5).json()
    return {(s["matchers"][0]["value"], s["comment"]) for s in silences if s["status"]["state"] == "active"}


def test_alertmanager_silences_round_trip(tmp_path: Path, paths: Paths) -> None:
    service = alertmanager_service(tmp_path)
    runtime = LocalRuntime(service)
    runtime.up()
    try:
        _silence(service.server.url, "DiskFull", 4)
        expired = _silence(service.server.url, "Flapping", 1)
        requests.delete(f"{service.server.url}/api/v2/silence/{expired}", timeout=5).raise_for_status()
        result = create_backup(runtime, Settings(), paths, only=["alertmanager"])

        runtime.down(volumes=True)
        runtime.up()
        assert _active(service.server.url) == set()
        restored = restore_backup(runtime, Settings(), paths, result.path, only=["alertmanager"])

        assert restored.plan.online == ["alertmanager"] and runtime.stopped == []
        assert _active(service.server.url) == {("DiskFull", "quiet DiskFull")}
        # A silence made after the backup does not survive it: the restore puts back the backup's state.
        _silence(service.server.url, "MadeLater", 2)
        again = restore_backup(runtime, Settings(), paths, result.path, only=["alertmanager"])
        assert _active(service.server.url) == {("DiskFull", "quiet DiskFull")}
        assert "1 made after the backup expired" in again.notes[-1]
        # Restoring twice does not duplicate them.
        restore_backup(runtime, Settings(), paths, result.path, only=["alertmanager"])
        silences = requests.get(f"{service.server.url}/api/v2/silences", timeout=5).json()
        assert len([s for s in silences if s["status"]["state"] == "active"]) == 1
    finally:
        runtime.down()


def test_the_restore_prompt_says_what_becomes_of_silences_and_it_does(
    tmp_path: Path, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The words the user agrees to and what the restore does, on one real Alertmanager: a silence
    made after the backup is named as expired, and is."""
    service = alertmanager_service(tmp_path)
    runtime = LocalRuntime(service)
    # The seam: the runtime the commands open (Docker or processes in real use).
    monkeypatch.setattr("stack.commands.options.get_runtime", lambda *args, **kwargs: runtime)
    runtime.up()
    try:
        _silence(service.server.url, "DiskFull", 4)
        made = invoke("backup", "--only", "alertmanager", "--json")
        assert made.exit_code == 0, made.output
        archive = json.loads(made.stdout)["path"]
        created_at = verify_backup(Path(archive)).manifest.created_at
        _silence(service.server.url, "MadeLater", 2)
        both = {("DiskFull", "quiet DiskFull"), ("MadeLater", "quiet MadeLater")}
        assert _active(service.server.url) == both

        promise = (
            "Will restore through its API: alertmanager's silences are put back as they were "
            f"(those made since {created_at} are expired)"
        )
        declined = CliRunner().invoke(cli, ["restore", archive, "--only", "alertmanager"], input="n\n")
        assert declined.exit_code == 1
        assert promise in declined.stderr
        assert _active(service.server.url) == both

        agreed = CliRunner().invoke(cli, ["restore", archive, "--only", "alertmanager"], input="y\n")
        assert agreed.exit_code == 0, agreed.output
        assert promise in agreed.stderr
        assert _active(service.server.url) == {("DiskFull", "quiet DiskFull")}
        assert "1 made after the backup expired" in agreed.stderr
    finally:
        runtime.down()


def file_state_service(name: str, state_root: str, root: Path, flushed: list[str]) -> LocalService:
    """A component with files on disk and a `/flush` endpoint that writes what it holds in memory."""

    @contextlib.contextmanager
    def start(service: LocalService) -> Iterator[Any]:
        def respond(method: str, path: str, body: bytes) -> tuple[int, bytes]:
            if method == "POST" and path == "/flush":
                flushed.append(name)
                (service.data_dir / "chunks").mkdir(exist_ok=True)
                (service.data_dir / "chunks" / "flushed-from-memory").write_text("in memory until flushed")
                return 204, b""
            return (200, b"ready") if path == "/ready" else (404, b"")

        with http_server(respond) as url:
            yield type("Server", (), {"url": url, "port": int(url.rsplit(":", 1)[1])})()

    return LocalService(name, state_root, root / f"{name}-data", start, image=f"grafana/{name}:test")


def test_loki_and_tempo_are_flushed_then_copied(tmp_path: Path, paths: Paths) -> None:
    flushed: list[str] = []
    loki = file_state_service("loki", "/loki", tmp_path, flushed)
    tempo = file_state_service("tempo", "/var/tempo", tmp_path, flushed)
    for service, files in (
        (loki, {"tsdb-shipper-active/index_20000/1.tsdb": b"index"}),
        (tempo, {"wal/blocks/abc/data.parquet": b"\x00" * 5000, "blocks/meta.json": b"{}"}),
    ):
        for relative, data in files.items():
            (service.data_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            (service.data_dir / relative).write_bytes(data)
    runtime = LocalRuntime(loki, tempo)
    runtime.up()
    try:
        result = create_backup(runtime, Settings(), paths, only=["loki", "tempo"])
        assert flushed == ["loki", "tempo"]
        expected = {
            service.name: {
                str(path.relative_to(service.data_dir)): path.read_bytes()
                for path in service.data_dir.rglob("*")
                if path.is_file()
            }
            for service in (loki, tempo)
        }
        assert "chunks/flushed-from-memory" in expected["loki"]

        for service in (loki, tempo):
            shutil.rmtree(service.data_dir)
        restored = restore_backup(runtime, Settings(), paths, result.path)
        assert restored.plan.offline == ["loki", "tempo"]
        for service in (loki, tempo):
            found = {
                str(path.relative_to(service.data_dir)): path.read_bytes()
                for path in service.data_dir.rglob("*")
                if path.is_file()
            }
            assert found == expected[service.name]
        manifest = json.loads(json.dumps(restored.verified.manifest.components["tempo"].sections))
        assert manifest == ["data"]
    finally:
        runtime.down()
