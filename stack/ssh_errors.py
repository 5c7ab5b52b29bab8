"""OpenSSH's messages for a connection that opened but never reached the SSH handshake, named.

Shared by the deploy's own ssh (facts, tunnel) and by docker's `ssh://` hosts, whose stderr ends
with what docker's ssh printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class HandshakeFailure:
    meaning: str  # what happened, in words
    printed: str  # what ssh printed
    hint: str  # with {destination} to fill in


_KNOWN = (
    (
        re.compile(r"Connection timed out during banner exchange", re.IGNORECASE),
        "the server accepted the connection but sent no SSH banner in time",
        "is sshd listening on that port (not another service), and is the server overloaded? "
        "Try `ssh -v {destination}`; a slow link may need STACK_SSH_OPTIONS='-o ConnectTimeout=30'",
    ),
    (
        re.compile(
            r"(?:kex|ssh)_exchange_identification: (?:read: )?Connection (?:closed by remote host|reset by peer)",
            re.IGNORECASE,
        ),
        "the server closed the connection before the SSH handshake",
        "sshd turned this client away before login: check the port, sshd's MaxStartups (too many "
        "connections at once) and firewall or fail2ban rules for this address; try `ssh -v {destination}`",
    ),
    (
        re.compile(r"(?:kex|ssh)_exchange_identification: banner line contains invalid characters", re.IGNORECASE),
        "the service on that port does not speak SSH",
        "check the port (ssh://user@server:PORT, or Port in ~/.ssh/config); try `ssh -v {destination}`",
    ),
)


def handshake_failure(stderr: str) -> HandshakeFailure | None:
    """The handshake failure ssh reported in `stderr`, or None for anything else."""
    for pattern, meaning, hint in _KNOWN:
        match = pattern.search(stderr)
        if match:
            return HandshakeFailure(meaning, match.group(0), hint)
    return None
