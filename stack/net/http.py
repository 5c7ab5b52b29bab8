"""One way to make an HTTP request from this machine: a kept-alive `requests.Session` per thread
(sessions are not thread-safe; checks and provisioning run requests in parallel), and failures as the
builtin ConnectionError / TimeoutError with a short reason, never a raw library exception."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

_local = threading.local()
# The part of a requests/urllib3 error worth showing; the rest is the library's call chain.
_REASONS = ("Connection refused", "Name or service not known", "No route to host", "certificate verify failed")


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def ok(self) -> bool:
        return self.status < 400


def preload() -> None:
    """Import the HTTP library now. Called in a thread while the caller waits on something else
    (`status` on docker's child processes), so that the first request does not wait for it (~40 ms)."""
    import requests  # noqa: F401


def session() -> requests.Session:
    """This thread's session (created on first use)."""
    current = getattr(_local, "session", None)
    if current is None:
        import requests

        current = _local.session = requests.Session()
    return current


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5,
    fresh: bool = False,
) -> HttpReply:
    """Send one request; raise TimeoutError when no answer comes within `timeout` seconds and
    ConnectionError (its message a short reason, e.g. `connection refused`) when none can.

    `fresh`: on a connection of its own, closed after the answer, for an address whose server may
    have been replaced since the last request (a Swarm task behind a published port): a kept-alive
    connection would still lead to the one that is gone."""
    import requests

    try:
        if fresh:
            with requests.Session() as one_off:
                reply = one_off.request(method, url, data=body, headers=dict(headers or {}), timeout=timeout)
        else:
            reply = session().request(method, url, data=body, headers=dict(headers or {}), timeout=timeout)
    except requests.Timeout:
        raise TimeoutError(f"no answer within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise ConnectionError(connection_reason(exc)) from None
    return HttpReply(reply.status_code, reply.content, dict(reply.headers))


def connection_reason(exc: Exception) -> str:
    text = str(exc)
    for pattern in _REASONS:
        if pattern in text:
            return pattern.lower()
    return text.split(": ")[-1][:160]
