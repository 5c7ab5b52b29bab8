"""Small real HTTP servers on 127.0.0.1 for readiness tests: slow, 503-for-a-while, never answering."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (method, path, body) -> (status, body bytes)
Responder = Callable[[str, str, bytes], tuple[int, bytes]]


class _Server(ThreadingHTTPServer):
    # Python's default backlog of 5 drops the SYNs of a burst of parallel clients (retried after 1 s);
    # Grafana and the Docker engine accept far more.
    request_queue_size = 128


@contextlib.contextmanager
def http_server(responder: Responder, *, delay: float = 0.0) -> Iterator[str]:
    """A threaded HTTP server answering with `responder` after `delay` seconds; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def setup(self) -> None:
            super().setup()
            # Headers and body leave in separate writes: without this, delayed ACKs add 40 ms a request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if delay:
                time.sleep(delay)
            status, payload = responder(self.command, self.path, body)
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def ready_after(count: int, ok_body: bytes = b"ready") -> Responder:
    """503 for the first `count` requests, then 200."""
    seen = {"n": 0}
    lock = threading.Lock()

    def respond(method: str, path: str, body: bytes) -> tuple[int, bytes]:
        with lock:
            seen["n"] += 1
            n = seen["n"]
        return (503, b"Ingester not ready: waiting for 15s after being ready") if n <= count else (200, ok_body)

    return respond


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
