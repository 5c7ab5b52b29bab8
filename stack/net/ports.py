"""TCP ports on this machine: is one free, give me a free one, does something answer on one."""

from __future__ import annotations

import contextlib
import socket

from stack.net.address import socket_host

LOOPBACK = "127.0.0.1"


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port, as a server would bind it (SO_REUSEADDR on, so a port
    in TIME_WAIT after its last user counts as free). `host` may be a URL host part (`[::1]`)."""
    address = socket_host(host)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK) -> int:
    """A port the kernel has free on `host` right now (another process may take it before you do)."""
    address = socket_host(host)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def port_answers(host: str, port: int, *, timeout: float = 0.5) -> bool:
    """True when a TCP connection to host:port (a name, an IP or a URL host part) is accepted in time."""
    with contextlib.suppress(OSError), socket.create_connection((socket_host(host), port), timeout=timeout):
        return True
    return False
