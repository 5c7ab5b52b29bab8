"""The docker CLI (`docker`, `docker compose`, `docker stack`), called one way.

Command lines are built here, in python-on-whales' flag order (the engine's `--host` or `--context`,
then the compose file, project name and directory). One-shot commands run to completion through
`stack.tools.run` (a timeout; in a critical section, a process group of their own, so a terminal's
Ctrl-C does not cut a restore in half); output that lasts (logs, `--follow`) streams through
python-on-whales. Every failure becomes one clear StackError (errors.py).

The project's secrets (Grafana's admin password, the TLS proxy's certificate and key) are handed to
`docker compose` in its own environment, which it reads them from (compose.yaml names only the
variables): never on a command line, never in our own environment, where every later child (ssh,
promtool, a plain `docker`) would inherit them. That is also why compose does not go through
python-on-whales' compose methods: they cannot give the child an environment of its own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

from stack.errors import RuntimeUnavailable
from stack.paths import Paths
from stack.runtime.docker.errors import explain, process_hint, whales_error
from stack.secrets import compose_environment
from stack.settings import Settings
from stack.tools import ToolResult
from stack.tools import run as run_tool


class DockerCli:
    """The CLI for one project on one engine (`host`: an `ssh://`/`tcp://` URL, or a context name)."""

    def __init__(self, settings: Settings, paths: Paths, host: str | None) -> None:
        self.settings, self.paths, self.host = settings, paths, host

    def docker(self, *args: str) -> list[str]:
        """`docker` with the engine's global flags, then `args`.

        Built here rather than by python-on-whales: importing it costs a quarter of a second, which
        `stack status` (version, ps, inspect) need not pay."""
        return [*self._global(), *args]

    def compose(self, *args: str) -> list[str]:
        """`docker compose` for the project (its file, name and directory, once rendered), then `args`."""
        argv = [*self._global(), "compose"]
        exists = self.paths.compose_file.exists()
        if exists:
            argv += ["--file", str(self.paths.compose_file)]
        argv += ["--project-name", self.settings.project]
        if exists:
            argv += ["--project-directory", str(self.paths.render_dir)]
        return [*argv, *args]

    def _global(self) -> list[str]:
        found = shutil.which("docker")
        if not found:
            raise no_cli()
        if self.host and "://" in self.host:
            return [found, "--host", self.host]
        if self.host:
            return [found, "--context", self.host]
        return [found]

    def secrets(self) -> dict[str, str]:
        """The variables compose reads the project's secrets from (only those already stored: the
        Grafana password is generated when the project is rendered)."""
        return compose_environment(self.settings, self.paths, generate=False)

    def _secrets_for(self, argv: list[str]) -> dict[str, str]:
        """What a command gets besides our environment: the secrets for compose, nothing for the rest."""
        return self.secrets() if argv[len(self._global()) : len(self._global()) + 1] == ["compose"] else {}

    def execute(
        self, argv: list[str], *, timeout: float | None = 300, input: str | None = None, cwd: str | None = None
    ) -> ToolResult:
        """Run a command to completion, whatever its exit status."""
        extra = self._secrets_for(argv)
        env = {**os.environ, **extra} if extra else None
        return run_tool(argv, timeout=timeout, input=input, cwd=cwd, env=env)

    def run(self, argv: list[str], *, action: str, timeout: float | None = 300) -> str:
        """Run a command to completion; its stdout, or one clear StackError."""
        result = self.execute(argv, timeout=timeout)
        if result.returncode == 127 and not shutil.which("docker"):
            raise no_cli()
        if not result.ok:
            raise explain(result.stderr or result.stdout, self.settings, command=argv, action=action)
        return result.stdout

    def stream(self, argv: list[str], *, action: str) -> Iterator[str]:
        """The lines a long-running command prints (logs, `--follow` included), as they come."""
        from python_on_whales import DockerException
        from python_on_whales.utils import stream_stdout_and_stderr

        extra = self._secrets_for(argv)
        try:
            # python-on-whales adds `extra` to a copy of our environment, for this child alone.
            for _source, line in stream_stdout_and_stderr(argv, env=extra):
                yield line.decode("utf-8", errors="replace").rstrip("\n")
        except DockerException as exc:
            raise whales_error(exc, self.settings, action) from None

    def locate(self, context: str | None) -> str | None:
        """The engine URL of a docker context (the CLI's current one when None), or None."""
        # Without --context: the context asked about may be the very one that does not answer.
        argv = [*self.docker()[:1], "context", "inspect", *([context] if context else [])]
        found = self.run([*argv, "--format", "{{.Endpoints.docker.Host}}"], action="docker context inspect")
        return found.strip() or None


def no_cli() -> RuntimeUnavailable:
    return RuntimeUnavailable("the docker command is not installed", hint="install Docker, or " + process_hint())
