"""stack.net: port helpers on real sockets, the HTTP helper against real local HTTP servers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from stack.net.http import HttpReply, request, session
from stack.net.ports import free_port, port_answers, port_free
from tests.support.httpservers import http_server, silent_server


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


HOSTS = ["127.0.0.1", pytest.param("[::1]", marks=pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback"))]


@pytest.fixture
def listener(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    host = request.param
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host.strip("[]"), 0))
        sock.listen(4)
        yield host, sock.getsockname()[1]


@pytest.mark.parametrize("listener", HOSTS, indirect=True)
def test_a_listening_port_is_taken_and_answers(listener: tuple[str, int]) -> None:
    host, port = listener
    assert not port_free(host, port)
    assert port_answers(host, port)


@pytest.mark.parametrize("host", HOSTS)
def test_a_free_port_binds_and_nothing_answers_on_it(host: str) -> None:
    port = free_port(host)
    assert port_free(host, port)
    assert not port_answers(host, port, timeout=0.2)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host.strip("[]"), port))


def test_a_port_bound_without_listening_is_not_free() -> None:
    # A process that bound the port but does not listen yet still owns it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        assert not port_free("127.0.0.1", sock.getsockname()[1])


def test_a_request_carries_method_body_and_headers_and_returns_the_answer() -> None:
    seen: list[tuple[str, str, bytes]] = []

    def respond(method: str, path: str, body: bytes) -> tuple[int, bytes]:
        seen.append((method, path, body))
        return (201, b'{"made": true}')

    with http_server(respond) as url:
        reply = request("POST", url + "/api/x?y=1", body=b"payload", headers={"X-Test": "1"}, timeout=5)
    assert reply == HttpReply(201, b'{"made": true}', reply.headers)
    assert reply.ok and reply.text() == '{"made": true}'
    assert reply.headers["Content-Length"] == "14"
    assert seen == [("POST", "/api/x?y=1", b"payload")]


def test_an_error_status_is_a_reply_not_an_exception() -> None:
    with http_server(lambda method, path, body: (503, b"not ready")) as url:
        reply = request("GET", url + "/ready")
    assert reply.status == 503 and not reply.ok and reply.text() == "not ready"


def test_nothing_listening_is_a_connection_error_with_a_short_reason() -> None:
    port = free_port()
    with pytest.raises(ConnectionError) as caught:
        request("GET", f"http://127.0.0.1:{port}/", timeout=2)
    assert str(caught.value) == "connection refused"


def test_a_server_that_never_answers_is_a_timeout() -> None:
    with silent_server() as url, pytest.raises(TimeoutError, match=r"no answer within 0.3 s"):
        request("GET", url + "/", timeout=0.3)


def test_each_thread_keeps_its_own_session() -> None:
    mine = session()
    assert session() is mine
    theirs: list[object] = []
    thread = threading.Thread(target=lambda: theirs.append(session()))
    thread.start()
    thread.join()
    assert theirs and theirs[0] is not mine


def test_parallel_requests_from_many_threads_all_get_their_answer() -> None:
    with http_server(lambda method, path, body: (200, path.encode())) as url:
        results: dict[int, bytes] = {}

        def fetch(n: int) -> None:
            for _ in range(5):
                results[n] = request("GET", f"{url}/{n}").body

        threads = [threading.Thread(target=fetch, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == {n: f"/{n}".encode() for n in range(8)}


@pytest.fixture
def keep_alive_server() -> Iterator[tuple[str, list[int]]]:
    """An HTTP/1.1 server that keeps connections open; yields its URL and the client port of each
    connection it accepted."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    accepted: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            accepted.append(self.client_address[1])

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", accepted
    finally:
        server.shutdown()
        server.server_close()


def test_requests_keep_their_connection_alive_unless_fresh(keep_alive_server: tuple[str, list[int]]) -> None:
    url, accepted = keep_alive_server
    session().close()  # whatever this thread's session kept from earlier tests
    assert request("GET", url).ok and request("GET", url).ok
    assert len(accepted) == 1
    # A fresh request never rides a kept connection, nor leaves one behind for the next.
    for _ in range(3):
        assert request("GET", url, fresh=True).body == b"ok"
    assert len(accepted) == 4
    assert request("GET", url).ok
    assert len(accepted) == 4
