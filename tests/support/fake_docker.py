"""A stand-in `docker` executable for tests: records every invocation and answers with recorded
output (`docker compose ps --format json` payloads, engine errors, busybox wget replies).

Tests put it first on PATH as `docker`; the code under test runs it as a real subprocess, exactly as
it runs the real CLI. The scenario is a JSON file: a list of rules, the first whose `when` tokens all
appear in the argv (in order) answers; a rule with a list of `replies` answers them in turn (the last
one repeats), which is how a container that exits during start-up is played back.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.httpservers import http_server

SCRIPT = f"""#!{sys.executable}
import fcntl, json, os, sys
from pathlib import Path
home = Path(os.environ["FAKE_DOCKER_HOME"])
argv = sys.argv[1:]
# Read stdin only when the command is fed through it: elsewhere it may be a terminal or a pipe left open.
stdin = sys.stdin.read() if ["--config", "-"] == argv[-2:] else ""
with (home / "calls.jsonl").open("a") as log:
    password_set = bool(os.environ.get("STACK_GRAFANA_ADMIN_PASSWORD"))
    # Which of the project's secrets this call found in its environment (names only, never values).
    secret_names = ("STACK_GRAFANA_ADMIN_PASSWORD", "STACK_PROXY_TLS_CERT", "STACK_PROXY_TLS_KEY")
    secrets_set = [name for name in secret_names if os.environ.get(name)]
    record = {{"argv": argv, "password_set": password_set, "secrets_set": secrets_set, "stdin": stdin}}
    log.write(json.dumps(record) + "\\n")
rules = json.loads((home / "scenario.json").read_text())
def matches(when):
    i = 0
    for token in argv:
        if i < len(when) and token == when[i]:
            i += 1
    return i == len(when)
for index, rule in enumerate(rules):
    if matches(rule["when"]):
        replies = rule.get("replies") or [rule]
        # Calls may run in parallel (readiness, provisioning reads): count under a lock.
        with open(home / f"count-{{index}}", "a+") as counter:
            fcntl.flock(counter, fcntl.LOCK_EX)
            counter.seek(0)
            seen = int(counter.read() or 0)
            counter.seek(0)
            counter.truncate()
            counter.write(str(seen + 1))
        reply = replies[min(seen, len(replies) - 1)]
        if "curl_to" in reply:
            sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
            from tests.support.fake_curl import answer
            sys.stdout.write(answer(stdin, reply["curl_to"]))
            sys.exit(0)
        sys.stdout.write(reply.get("stdout", ""))
        sys.stderr.write(reply.get("stderr", ""))
        sys.exit(reply.get("rc", 0))
sys.stderr.write("fake docker: no rule for " + " ".join(argv) + "\\n")
sys.exit(97)
"""

DATA = Path(__file__).parent / "data" / "docker"

ENGINE_OK: list[dict[str, Any]] = [
    {"when": ["version", "--format"], "stdout": "28.2.2\n"},
    {"when": ["compose", "version", "--short"], "stdout": "2.36.2\n"},
]


def recorded(name: str) -> str:
    """A recorded payload from tests/support/data/docker."""
    return (DATA / name).read_text()


class FakeDocker:
    def __init__(self, home: Path, engine_url: str = "") -> None:
        self.home = home
        # Where `docker context inspect` says the engine is (a fake Engine API, for the SDK).
        self.engine_url = engine_url

    def scenario(self, *rules: dict[str, Any], engine_ok: bool = True) -> None:
        for counter in self.home.glob("count-*"):
            counter.unlink()
        context = [{"when": ["context", "inspect"], "stdout": self.engine_url + "\n"}] if self.engine_url else []
        chosen = [*rules, *(ENGINE_OK + context if engine_ok else [])]
        (self.home / "scenario.json").write_text(json.dumps(chosen))

    def calls(self) -> list[list[str]]:
        log = self.home / "calls.jsonl"
        if not log.exists():
            return []
        return [json.loads(line)["argv"] for line in log.read_text().splitlines()]

    def records(self) -> list[dict[str, Any]]:
        log = self.home / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def compose_calls(self, subcommand: str) -> list[list[str]]:
        """The argv of every `docker compose ... <subcommand>` call."""
        found = []
        for argv in self.calls():
            if "compose" in argv and subcommand in argv:
                found.append(argv)
        return found

    def reset_calls(self) -> None:
        (self.home / "calls.jsonl").unlink(missing_ok=True)


def install(home: Path, monkeypatch: pytest.MonkeyPatch, engine_url: str = "") -> FakeDocker:
    """Put the stand-in `docker` first on PATH (for the duration of a test)."""
    bin_dir = home / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "docker"
    exe.write_text(SCRIPT)
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_HOME", str(home))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    fake = FakeDocker(home, engine_url)
    fake.scenario()
    return fake


# The components of the default stack, in stack.yaml's order.
COMPONENTS = ("otel-collector", "prometheus", "loki", "tempo", "alertmanager", "grafana")


def all_running(*, up: bool = True) -> list[dict[str, Any]]:
    """Rules for a stack whose every container runs as recorded (`compose up` succeeding first, with `up`)."""
    return [
        *([{"when": ["compose", "up"]}] if up else []),
        {"when": ["compose", "ps"], "stdout": recorded("ps-all-running.jsonl")},
        {"when": ["container", "inspect"], "stdout": recorded("inspect-all-running.json")},
    ]


def only_enabled(project_dir: Path, ports: dict[str, int]) -> None:
    """stack.yaml with only these components enabled, each published on its port on 127.0.0.1: the readiness
    checks reach whatever listens there (a small HTTP server, a fake Grafana); the others are disabled."""
    disabled = "".join(f"  {name}: {{enabled: false}}\n" for name in COMPONENTS if name not in ports)
    enabled = "".join(f"  {name}: {{port: {port}}}\n" for name, port in ports.items())
    (project_dir / "stack.yaml").write_text("components:\n" + disabled + enabled)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@contextlib.contextmanager
def loki_only(project_dir: Path, fake_docker: FakeDocker, *rules: dict[str, Any]) -> Iterator[str]:
    """The smallest stack `up` brings to ready on the fake docker: Loki alone, answered by a real HTTP server
    on 127.0.0.1 saying ready, every recorded container running (`rules` are tried first). Yields Loki's URL."""
    with http_server(lambda m, p, b: (200, b"ready")) as loki:
        only_enabled(project_dir, {"loki": port_of(loki)})
        fake_docker.scenario(*rules, *all_running())
        yield loki
