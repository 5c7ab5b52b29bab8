"""Hints name a command the user can type: `make up RUNTIME=process` under make, the path `stack` was
run by when it is not on PATH (the virtualenv not active), plain `stack` otherwise."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stack.invocation import no_docker_command, stack_command


def _install(directory: Path) -> Path:
    directory.mkdir(parents=True)
    program = directory / "stack"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    return program


def test_outside_make_with_the_virtualenv_inactive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = _install(tmp_path / ".venv" / "bin")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAKELEVEL", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(sys, "argv", [str(program), "up"])
    assert stack_command() == ".venv/bin/stack"
    assert no_docker_command() == ".venv/bin/stack up --runtime process --skip-missing"


def test_with_the_virtualenv_active(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = _install(tmp_path / ".venv" / "bin")
    monkeypatch.delenv("MAKELEVEL", raising=False)
    monkeypatch.setenv("PATH", f"{program.parent}:/usr/bin")
    monkeypatch.setattr(sys, "argv", [str(program), "up"])
    assert no_docker_command() == "stack up --runtime process --skip-missing"


def test_under_make(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAKELEVEL", "1")
    assert no_docker_command() == "make up RUNTIME=process"
