"""The one rule for turning a bind address into the host part of a URL that reaches it from this machine.

Wildcards are reached through loopback, IPv6 literals need brackets, and a user is shown `localhost` for
either loopback. Three modules used to carry their own copy of this rule, and they disagreed (`::` became
`http://:::3000/` in `stack credentials`).
"""

from __future__ import annotations

_V4_LOCAL = ("0.0.0.0", "localhost")
_V6_LOCAL = ("::", "::1", "[::]", "[::1]")


def url_host(bind_address: str) -> str:
    """The host part of a URL that connects to something listening on `bind_address`: an IP literal."""
    address = bind_address.strip()
    if address in _V4_LOCAL or address.startswith("127."):
        return "127.0.0.1"
    if address in _V6_LOCAL:
        return "[::1]"
    if address.startswith("[") and address.endswith("]"):
        return address
    return f"[{address}]" if ":" in address else address


def shown_host(bind_address: str) -> str:
    """The host part of a URL shown to a user: `localhost` where the address is loopback or a wildcard."""
    host = url_host(bind_address)
    return "localhost" if host in ("127.0.0.1", "[::1]") else host


def http_url(host: str, port: int | str, path: str = "") -> str:
    """`host` is a URL host part already (`url_host` or `shown_host` made it)."""
    return f"http://{host}:{port}{path}"


def socket_host(host: str) -> str:
    """A URL host part as sockets take it: an IPv6 literal without its brackets."""
    return host.strip("[]")
