"""A fake Docker Engine API (the HTTP API the docker SDK speaks) on 127.0.0.1, for the parts of the
Docker runtime that use the SDK: image inspect, image pull with its progress stream, and container
archives (`GET`/`PUT /containers/{id}/archive`, which backup and restore rely on).

It follows the Engine API reference: `GET /version`; `GET /v1.NN/images/{name}/json` (404 "No such
image"); `POST /images/create?fromImage=&tag=` streaming JSON progress objects, or 404 for an unknown
manifest; archives as tar streams with the `X-Docker-Container-Path-Stat` header, 404 for a missing path.
Container filesystems are directories on disk.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import socket
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

API_VERSION = "1.47"


def layer_events(image: str, layers: int = 2, size: int = 4096) -> list[dict[str, Any]]:
    """The progress objects the Engine streams for a pull (as `docker pull` shows them)."""
    repository, _, tag = image.rpartition(":")
    events: list[dict[str, Any]] = [{"status": f"Pulling from {repository}", "id": tag}]
    for n in range(layers):
        layer = f"{n:02d}ab34cd56ef"
        events.append({"status": "Pulling fs layer", "progressDetail": {}, "id": layer})
        for current in (size // 2, size):
            events.append({"status": "Downloading", "progressDetail": {"current": current, "total": size}, "id": layer})
        events += [
            {"status": "Download complete", "progressDetail": {}, "id": layer},
            {"status": "Pull complete", "progressDetail": {}, "id": layer},
        ]
    events += [
        {"status": "Digest: sha256:" + "0" * 64},
        {"status": f"Status: Downloaded newer image for {image}"},
    ]
    return events


@dataclass
class FakeEngine:
    root: Path
    url: str = ""
    images: set[str] = field(default_factory=set)
    # image -> what a pull streams, or an int: the HTTP status it fails with before streaming.
    pulls: dict[str, list[dict[str, Any]] | int] = field(default_factory=dict)
    containers: dict[str, Path] = field(default_factory=dict)
    journal: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def container(self, container_id: str) -> Path:
        """A container's filesystem (created empty on first use)."""
        path = self.root / container_id
        path.mkdir(parents=True, exist_ok=True)
        self.containers[container_id] = path
        return path

    def _find(self, container_id: str) -> Path | None:
        for known, path in self.containers.items():
            if known.startswith(container_id) or container_id.startswith(known):
                return path
        return None


def _tar_of(source: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(source, arcname=source.name)
    return buffer.getvalue()


class _Server(ThreadingHTTPServer):
    # Python's default backlog of 5 drops the SYNs of a burst of parallel clients (retried after 1 s);
    # Grafana and the Docker engine accept far more.
    request_queue_size = 128


@contextlib.contextmanager
def fake_engine(root: Path) -> Iterator[FakeEngine]:
    engine = FakeEngine(root)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body leave in separate writes: without this, delayed ACKs add 40 ms a request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header(
                "Content-Type", "application/json" if not isinstance(payload, bytes) else "application/x-tar"
            )
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _route(self) -> None:
            parsed = urlparse(self.path)
            path = re.sub(r"^/v1\.\d+", "", unquote(parsed.path))
            query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with engine.lock:
                engine.journal.append((self.command, path))
            if path in ("/version", "/_ping"):
                self._send(200, {"ApiVersion": API_VERSION, "Version": "28.2.2", "MinAPIVersion": "1.24"})
                return
            match = re.fullmatch(r"/images/(.+)/json", path)
            if match and self.command == "GET":
                name = match.group(1)
                if name in engine.images:
                    self._send(200, {"Id": "sha256:" + "1" * 64, "RepoTags": [name]})
                else:
                    self._send(404, {"message": f"No such image: {name}"})
                return
            if path == "/images/create" and self.command == "POST":
                image = f"{query.get('fromImage')}:{query.get('tag')}"
                script = engine.pulls.get(image, layer_events(image))
                if isinstance(script, int):
                    message = f"manifest for {image} not found: manifest unknown: manifest unknown"
                    self._send(script, {"message": message})
                    return
                if not any("error" in event for event in script):
                    engine.images.add(image)
                # Like the real engine: one JSON object per chunk of a chunked response.
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in script:
                    data = json.dumps(event).encode() + b"\r\n"
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            match = re.fullmatch(r"/containers/([^/]+)/archive", path)
            if match:
                self._archive(match.group(1), query.get("path", "/"), body)
                return
            self._send(404, {"message": f"page not found: {path}"})

        def _archive(self, container_id: str, inner: str, body: bytes) -> None:
            fs = engine._find(container_id)
            if fs is None:
                self._send(404, {"message": f"No such container: {container_id}"})
                return
            target = fs / inner.lstrip("/")
            if not target.exists():
                self._send(404, {"message": f"Could not find the file {inner} in container {container_id}"})
                return
            if self.command == "GET":
                info = target.stat()
                stat = {"name": target.name, "size": info.st_size, "mode": info.st_mode, "mtime": "", "linkTarget": ""}
                header = base64.b64encode(json.dumps(stat).encode()).decode()
                self._send(200, _tar_of(target), {"X-Docker-Container-Path-Stat": header})
            elif self.command == "PUT":
                with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                    tar.extractall(target, filter="data")
                self._send(200, b"")
            else:
                self._send(405, {"message": "method not allowed"})

        do_GET = do_POST = do_PUT = do_HEAD = _route

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    engine.url = f"tcp://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield engine
    finally:
        server.shutdown()
        server.server_close()
