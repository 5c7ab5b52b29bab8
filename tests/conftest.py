from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from stack.cli import cli
from stack.paths import Paths
from stack.resources import repo_root
from tests.support.engine import REQUIRE_DOCKER, Engine, engine_problem, running_engine

REPO = repo_root()
SHARED_SCHEMA = REPO.parent / "shared" / "schemas" / "compose-spec.json"


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty directory as the current directory, with no STACK_* settings leaking in."""
    for name in list(os.environ):
        if name.startswith("STACK_"):
            monkeypatch.delenv(name)
    # Under `make test` hints would name make targets (stack/invocation.py): as from a user's shell.
    monkeypatch.delenv("MAKELEVEL", raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture
def paths(project_dir: Path) -> Paths:
    return Paths.discover(project_dir / "stack.yaml")


def invoke(*args: str) -> Result:
    """Run the CLI in-process exactly as a user would (stderr kept apart from stdout)."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def require_tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not on PATH: `make test` installs it (Debian package)")
        pytest.skip(f"{name} is not on PATH (run `make test`, which installs it)")
    return found


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Engine]:
    """One real engine for the whole session (tests/support/engine.py), stopped and removed at the end."""
    problem = engine_problem()
    if problem is not None:
        if REQUIRE_DOCKER:
            pytest.fail(f"STACK_REQUIRE_DOCKER=1 but {problem}")
        pytest.skip(problem)
    with running_engine() as engine:
        yield engine


@pytest.fixture
def engine(docker_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The session's engine, named by DOCKER_HOST and DOCKER_CONFIG for this test only."""
    for name, value in docker_engine.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    return docker_engine
