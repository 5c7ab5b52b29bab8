"""An HTTPS GET as a browser makes it to the stack's TLS proxy, trusting only the test certificate."""

from __future__ import annotations

import socket
import ssl

from tests.support import DATA

TLS = DATA / "tls"
HOSTNAME = "grafana.test"  # the name in tests/support/data/tls/cert.pem


def https_get(port: int, path: str, *, sni: str = HOSTNAME, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """GET from 127.0.0.1:PORT asking for SNI (the Host header too): status, lower-cased headers, body."""
    context = ssl.create_default_context(cafile=str(TLS / "cert.pem"))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=sni) as sock,
    ):
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body
