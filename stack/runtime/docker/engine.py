"""The Engine API (docker SDK), for what the CLI does poorly: image pulls with per-layer progress,
archive streams in and out of containers (which work on shell-less images), and reads that should
start no process (a container's health). Over an `ssh://` engine it goes through the very `ssh` the
CLI uses (dialstdio.py)."""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import IO, Any

from stack.errors import RuntimeUnavailable, StackError
from stack.runtime.base import ContainerHealth
from stack.runtime.docker.errors import api_error, process_hint, pull_error, ssh_destination, ssh_unreachable
from stack.runtime.docker.states import health_since_start
from stack.settings import Settings
from stack.sshcli import ssh_command


@dataclass(frozen=True)
class PullProgress:
    """Where the pull of one image stands (bytes over every layer seen so far)."""

    image: str
    status: str
    done: int
    total: int
    finished: bool = False


class Engine:
    """A docker SDK client for the engine the CLI talks to. `locate` asks the CLI where a docker context
    (named, or the CLI's current one) points, so that both reach the very same engine."""

    def __init__(self, settings: Settings, host: str | None, locate: Callable[[str | None], str | None]) -> None:
        self.settings, self.host, self._locate = settings, host, locate
        self._ssh_url = ""

    @cached_property
    def client(self) -> Any:
        """The SDK's DockerClient (`.api`: its APIClient)."""
        import docker

        base_url = self.host
        if not base_url or "://" not in base_url:
            if not base_url and os.environ.get("DOCKER_HOST"):
                base_url = os.environ["DOCKER_HOST"]
            else:
                base_url = self._locate(base_url)
        if base_url and base_url.startswith("ssh://"):
            return self._over_ssh(base_url)
        try:
            if base_url and base_url != os.environ.get("DOCKER_HOST"):
                return docker.DockerClient(base_url=base_url)
            # DOCKER_HOST and its TLS settings (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), as the CLI reads them.
            return docker.from_env()
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"cannot reach the Docker engine: {exc}", hint=process_hint()) from None

    def _over_ssh(self, url: str) -> Any:
        """The Engine API through `ssh DESTINATION docker system dial-stdio`, as the docker CLI does it."""
        from stack.runtime.docker.dialstdio import DialStdio, DialStdioClient, DialStdioEngine, connection_errors

        destination, port = ssh_destination(url)
        self._ssh_url = url
        command = ssh_command(destination, port, "docker", "system", "dial-stdio")
        transport = DialStdio(command)
        try:
            return DialStdioEngine(DialStdioClient(transport))
        except connection_errors() as exc:
            transport.close()
            raise ssh_unreachable(url, transport.failure() or str(exc)) from None

    def call(self, call: Callable[[Any], Any]) -> Any:
        """An Engine API call; over ssh, a broken connection becomes one line saying what ssh printed."""
        api = self.client.api
        transport = getattr(api, "transport", None)
        if transport is None:
            return call(api)
        from stack.runtime.docker.dialstdio import connection_errors

        try:
            return call(api)
        except connection_errors() as exc:
            raise ssh_unreachable(self._ssh_url, transport.failure() or str(exc)) from None

    def container_health(self, project: str, service: str) -> ContainerHealth | None:
        """The compose service's healthcheck verdict since its current start (one lookup, no process
        started); None when it has none, or the engine cannot tell."""
        import docker

        labels = [f"com.docker.compose.project={project}", f"com.docker.compose.service={service}"]
        try:
            found = self.client.api.containers(all=True, filters={"label": labels})
            if not found:
                return None
            inspected = self.client.api.inspect_container(found[0]["Id"])
        except (docker.errors.DockerException, StackError, OSError):
            # The caller probes another way; an engine hiccup is not a verdict.
            return None
        return health_since_start(inspected.get("State") or {})

    # -- images (per-layer progress) ---------------------------------------------------------------

    def missing_images(self, images: list[str]) -> list[str]:
        """Those of `images` that the engine does not have yet."""
        import docker

        missing = []
        for image in images:
            try:
                self.call(functools.partial(_inspect_image, image=image))
            except docker.errors.ImageNotFound:
                missing.append(image)
            except docker.errors.APIError as exc:
                raise api_error(exc, f"cannot inspect image {image}", self.settings) from None
        return missing

    def pull_images(self, images: list[str], on_progress: Callable[[PullProgress], None] | None = None) -> None:
        """Pull `images` in parallel, reporting bytes per image; one clear error for a failed pull."""
        from concurrent.futures import ThreadPoolExecutor

        report = on_progress or (lambda _progress: None)
        with ThreadPoolExecutor(max_workers=max(1, len(images)), thread_name_prefix="pull") as pool:
            futures = [pool.submit(self._pull_one, image, report) for image in images]
            for future in futures:
                future.result()

    def _pull_one(self, image: str, report: Callable[[PullProgress], None]) -> None:
        import docker
        from docker.utils import parse_repository_tag

        repository, tag = parse_repository_tag(image)
        layers: dict[str, tuple[int, int]] = {}
        report(PullProgress(image, "waiting", 0, 0))
        try:
            for event in self.call(lambda api: api.pull(repository, tag=tag, stream=True, decode=True)):
                if "error" in event:
                    raise pull_error(self.settings, image, str(event.get("error")))
                detail = event.get("progressDetail") or {}
                layer = event.get("id")
                status = str(event.get("status", ""))
                if layer and detail.get("total") and status.startswith("Downloading"):
                    layers[layer] = (int(detail.get("current", 0)), int(detail["total"]))
                elif layer and status in ("Download complete", "Pull complete", "Already exists") and layer in layers:
                    layers[layer] = (layers[layer][1], layers[layer][1])
                done = sum(current for current, _ in layers.values())
                total = sum(size for _, size in layers.values())
                report(PullProgress(image, status.split(" for ")[0][:40], done, total))
        except docker.errors.APIError as exc:
            raise pull_error(self.settings, image, str(exc.explanation or exc)) from None
        report(PullProgress(image, "pulled", 1, 1, finished=True))

    # -- archives (work on shell-less images, and on a remote engine alike) --------------------------

    def copy_out(self, container_id: str, service: str, path: str) -> IO[bytes]:
        """A tar stream of `path` in the container."""
        import docker

        try:
            chunks, _stat = self.call(lambda api: api.get_archive(container_id, path))
        except docker.errors.NotFound:
            raise StackError(f"{service}: {path} does not exist in its container") from None
        except docker.errors.APIError as exc:
            raise api_error(exc, f"{service}: cannot copy {path} out", self.settings, error=StackError) from None
        return io.BufferedReader(_ChunkStream(chunks), buffer_size=1024 * 1024)

    def copy_in(self, container_id: str, service: str, path: str, archive: IO[bytes]) -> None:
        """Unpack the tar stream into `path` in the container."""
        import docker

        try:
            ok = self.call(lambda api: api.put_archive(container_id, path, archive))
        except docker.errors.NotFound:
            raise StackError(f"{service}: {path} does not exist in its container") from None
        except docker.errors.APIError as exc:
            raise api_error(exc, f"{service}: cannot copy into {path}", self.settings, error=StackError) from None
        if not ok:
            raise StackError(f"{service}: the engine refused the archive for {path}")


def _inspect_image(api: Any, *, image: str) -> Any:
    return api.inspect_image(image)


class _ChunkStream(io.RawIOBase):
    """A readable binary stream over an iterator of byte chunks (the Engine API's tar stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size
