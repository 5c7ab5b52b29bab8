"""The docker CLI (`docker`, `docker compose`, `docker stack`), called one way: python-on-whales builds
every command line (the engine's `--host` or `--context`, the compose file, project name and
directory, in its order) and streams long-running output; one-shot commands run to completion under a
timeout, shielded from a terminal's Ctrl-C in a critical section (stack.tools.run). Every failure
becomes one clear StackError (errors.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING

from stack.errors import RuntimeUnavailable
from stack.paths import Paths
from stack.runtime.docker.errors import explain, process_hint, whales_error
from stack.secrets import GRAFANA_ADMIN_PASSWORD, GRAFANA_PASSWORD_ENV, SecretStore, compose_environment
from stack.settings import Settings
from stack.tools import ToolResult
from stack.tools import run as run_tool

if TYPE_CHECKING:
    from pathlib import Path

    from python_on_whales import DockerClient


class DockerCli:
    """The CLI for one project on one engine (`host`: an `ssh://`/`tcp://` URL, or a context name)."""

    def __init__(self, settings: Settings, paths: Paths, host: str | None) -> None:
        self.settings, self.paths, self.host = settings, paths, host

    @cached_property
    def client(self) -> DockerClient:
        """python-on-whales, configured for the project (its compose file, once rendered).

        Imported here, not at the top: it costs a quarter of a second that `status` need not pay."""
        from python_on_whales import DockerClient

        self.export_environment()
        compose_files: list[str | Path] = [self.paths.compose_file] if self.paths.compose_file.exists() else []
        return DockerClient(
            host=self.host if self.host and "://" in self.host else None,
            context=self.host if self.host and "://" not in self.host else None,
            compose_files=compose_files,
            compose_project_name=self.settings.project,
            compose_project_directory=self.paths.render_dir if compose_files else None,
        )

    def refresh(self) -> None:
        """Forget the client: the compose file and the secrets may have been written since."""
        self.__dict__.pop("client", None)

    def docker(self, *args: str) -> list[str]:
        """`docker` with the global flags python-on-whales gives it (same engine, same order), then `args`.

        Built here rather than by python-on-whales itself: importing it costs a quarter of a second,
        which `stack status` (version, ps, inspect) need not pay."""
        found = shutil.which("docker")
        if not found:
            raise no_cli()
        argv = [found]
        if self.host and "://" in self.host:
            argv += ["--host", self.host]
        elif self.host:
            argv += ["--context", self.host]
        return [*argv, *args]

    def compose(self, *args: str) -> list[str]:
        """`docker compose` for the project (its file, name and directory, once rendered), then `args`."""
        argv = [*self.docker(), "compose"]
        exists = self.paths.compose_file.exists()
        if exists:
            argv += ["--file", str(self.paths.compose_file)]
        argv += ["--project-name", self.settings.project]
        if exists:
            argv += ["--project-directory", str(self.paths.render_dir)]
        return [*argv, *args]

    def export_environment(self) -> None:
        """Put the variables compose reads the project's secrets from into our environment (which
        every docker command inherits); the values never land in compose.yaml or on a command line."""
        store = SecretStore.for_paths(self.paths)
        if self.settings.component("grafana").enabled:
            password = store.get(GRAFANA_ADMIN_PASSWORD)
            if password:
                os.environ[GRAFANA_PASSWORD_ENV] = password
        if self.settings.component("proxy").enabled:
            # The TLS proxy's certificate and key (tls.mode files) travel the same way.
            os.environ.update(
                {k: v for k, v in compose_environment(self.settings, self.paths).items() if k != GRAFANA_PASSWORD_ENV}
            )

    def execute(
        self, argv: list[str], *, timeout: float = 300, input: str | None = None, cwd: str | None = None
    ) -> ToolResult:
        """Run a command to completion, whatever its exit status."""
        self.export_environment()
        return run_tool(argv, timeout=timeout, input=input, cwd=cwd)

    def run(self, argv: list[str], *, action: str, timeout: float = 300) -> str:
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

        self.export_environment()
        try:
            for _source, line in stream_stdout_and_stderr(argv):
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
