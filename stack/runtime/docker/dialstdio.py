"""The Engine API over `ssh DESTINATION docker system dial-stdio`, the way the docker CLI reaches an
`ssh://` engine.

Each HTTP connection of the docker SDK is one end of a socket pair whose other end is the stdin and
stdout of an `ssh` process. So the Engine API (archives, image pulls) goes through the very `ssh` the
CLI and the deploy use: ~/.ssh/config applies exactly as it does for them (HostName, Port, User,
IdentityFile, ProxyJump, ControlMaster), and what ssh prints is captured, never mixed into our output.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from typing import IO, Any

import docker
import docker.constants
import requests
import urllib3.connection
import urllib3.connectionpool
from docker.transport.basehttpadapter import BaseHTTPAdapter

from stack.sshcli import first_line

# Old enough for every engine `stack` supports, only used to ask the engine for its own version.
_PROBE_VERSION = docker.constants.MINIMUM_DOCKER_API_VERSION


class DialStdio:
    """Starts one `ssh ... docker system dial-stdio` per connection, and remembers what ssh printed."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)
        self._lock = threading.Lock()
        self._open: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
        self._failures: list[str] = []

    def open(self, timeout: float | None) -> tuple[socket.socket, subprocess.Popen[bytes]]:
        ours, theirs = socket.socketpair()
        errors = tempfile.TemporaryFile()  # noqa: SIM115 (kept open until the connection's ssh ends)
        try:
            # Its own session: a Ctrl-C reaches `stack`, which then closes the connection itself.
            process = subprocess.Popen(
                self.command, stdin=theirs.fileno(), stdout=theirs.fileno(), stderr=errors, start_new_session=True
            )
        except OSError:
            ours.close()
            errors.close()
            raise
        finally:
            theirs.close()
        ours.settimeout(timeout)
        with self._lock:
            self._open.append((process, errors))
        return ours, process

    def release(self, process: subprocess.Popen[bytes]) -> None:
        """End one connection's ssh (its socket is closed already: ssh sees the end of its input)."""
        with self._lock:
            found = [entry for entry in self._open if entry[0] is process]
            self._open = [entry for entry in self._open if entry[0] is not process]
        for entry in found:
            self._finish(*entry)

    def close(self) -> None:
        with self._lock:
            entries, self._open = self._open, []
        for entry in entries:
            self._finish(*entry)

    def failure(self) -> str | None:
        """What a failed ssh printed (the last line that says something), if one failed."""
        with self._lock:
            running = list(self._open)
        for process, errors in running:
            if process.poll() not in (None, 0):
                self._record(process, errors)
        with self._lock:
            return self._failures[-1] if self._failures else None

    def _finish(self, process: subprocess.Popen[bytes], errors: IO[bytes]) -> None:
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            errors.close()
            return
        if process.returncode != 0:
            self._record(process, errors)
        errors.close()

    def _record(self, process: subprocess.Popen[bytes], errors: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            errors.seek(0)
            printed = first_line(errors.read().decode("utf-8", errors="replace"))
            line = printed or f"ssh exited with {process.returncode}"
            with self._lock:
                if line not in self._failures:
                    self._failures.append(line)


class _Connection(urllib3.connection.HTTPConnection):
    def __init__(self, transport: DialStdio, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._transport = transport
        self._process: subprocess.Popen[bytes] | None = None

    def connect(self) -> None:
        self.sock, self._process = self._transport.open(self.timeout)

    def close(self) -> None:
        super().close()
        if self._process is not None:
            process, self._process = self._process, None
            self._transport.release(process)


class _Pool(urllib3.connectionpool.HTTPConnectionPool):
    def __init__(self, transport: DialStdio, timeout: float, maxsize: int) -> None:
        super().__init__("localhost", timeout=timeout, maxsize=maxsize)
        self._transport = transport
        self._seconds = timeout

    def _new_conn(self) -> _Connection:
        return _Connection(self._transport, self._seconds)


class _Adapter(BaseHTTPAdapter):
    def __init__(self, transport: DialStdio, timeout: float, max_pool_size: int) -> None:
        self._pool = _Pool(transport, timeout, max_pool_size)
        super().__init__()

    def get_connection(self, url: str | bytes, proxies: Any = None) -> _Pool:
        return self._pool

    def request_url(self, request: Any, proxies: Any) -> str:
        # No host in the URL that means anything: the path is the whole request target.
        return str(request.path_url)

    def close(self) -> None:
        super().close()
        self._pool.close()


class DialStdioClient(docker.APIClient):
    """A docker SDK APIClient whose every connection is `ssh ... docker system dial-stdio`.

    Raises requests' ConnectionError, as the SDK does, when ssh fails: `transport.failure()` then says why.
    """

    def __init__(self, transport: DialStdio, *, timeout: int = 60, max_pool_size: int = 10) -> None:
        # An explicit version: the SDK would otherwise ask the engine before the transport is in place.
        super().__init__(base_url="tcp://localhost:2375", version=_PROBE_VERSION, timeout=timeout)
        self.transport = transport
        self.mount("http+docker://", _Adapter(transport, timeout, max_pool_size))
        # Nothing may go out as plain HTTP(S): every request takes the transport above.
        for prefix in ("http://", "https://"):
            self.adapters.pop(prefix, None)
        self.base_url = "http+docker://dial-stdio"
        # Then the engine's own API version, as the SDK's version="auto" does.
        self._version = str(self.version(api_version=False)["ApiVersion"])

    def close(self) -> None:
        super().close()
        self.transport.close()


class DialStdioEngine:
    """What `docker.DockerClient` offers that `stack` uses: `.api`, and `close()`."""

    def __init__(self, api: DialStdioClient) -> None:
        self.api = api

    def close(self) -> None:
        self.api.close()


def connection_errors() -> tuple[type[BaseException], ...]:
    """What an Engine API call over ssh raises when the connection itself fails."""
    return (requests.exceptions.ConnectionError, urllib3.exceptions.ProtocolError, ConnectionError)
