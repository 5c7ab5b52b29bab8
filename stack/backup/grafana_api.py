"""The Grafana client backup and restore use: the provisioning client (stack.grafana.client) with
the stack's admin credentials, plus the alerting provisioning header on the way out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from stack.grafana.client import Auth, GrafanaClient, Transport
from stack.grafana.provision import admin_auth, stack_transport
from stack.paths import Paths
from stack.runtime.base import HttpReply, Runtime
from stack.settings import Settings

ALERTING = "/api/v1/provisioning"


class _EditableAlerting:
    """Alerting objects created through the API are locked in the UI ("provisioned") unless the
    request says otherwise: restored objects must stay editable, as they were."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.where = inner.where

    def send(self, method: str, path: str, body: bytes | None, headers: Mapping[str, str], timeout: float) -> HttpReply:
        if method != "GET" and path.startswith(ALERTING):
            headers = {**headers, "X-Disable-Provenance": "true"}
        return self.inner.send(method, path, body, headers, timeout)


def stack_client(runtime: Runtime, settings: Settings, paths: Paths, *, timeout: float = 30) -> GrafanaClient:
    """A client of this stack's Grafana with its admin credentials (the generated password)."""
    return GrafanaClient(_EditableAlerting(stack_transport(runtime)), admin_auth(paths, settings), timeout=timeout)


def client_for(runtime: Runtime, user: str, password: str) -> GrafanaClient:
    """A client with explicit credentials (tests, or a Grafana that is not this stack's)."""
    return GrafanaClient(_EditableAlerting(stack_transport(runtime)), Auth(user=user, password=password))


def get(client: GrafanaClient, path: str, *, what: str = "") -> Any:
    return client.request("GET", path, what=what)[1]


def q(value: str) -> str:
    """A path segment (uids and names may hold characters that need quoting)."""
    return quote(str(value), safe="")
