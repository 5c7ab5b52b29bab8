"""The few Grafana HTTP API calls backup and restore make, over the runtime (so that it works on a
remote engine and without a published port). Same request shape as the provisioning client
(`request(method, path, payload, ok=..., what=...)`), so that the two can be merged."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

from stack.backup.errors import BackupError
from stack.paths import Paths
from stack.runtime.base import Runtime
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore
from stack.settings import GrafanaSettings, Settings

# Keep objects editable in Grafana's UI after the restore (not "provisioned").
NO_PROVENANCE = {"X-Disable-Provenance": "true"}


class GrafanaApi:
    def __init__(self, runtime: Runtime, user: str, password: str, *, timeout: float = 30) -> None:
        self.runtime = runtime
        self.timeout = timeout
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._auth = {"Authorization": f"Basic {token}"}

    @classmethod
    def for_stack(cls, runtime: Runtime, settings: Settings, paths: Paths) -> GrafanaApi:
        """Admin credentials of this stack: the configured user, the generated password."""
        grafana = settings.component("grafana")
        assert isinstance(grafana, GrafanaSettings)
        password = SecretStore.for_paths(paths).get(GRAFANA_ADMIN_PASSWORD)
        if not password:
            raise BackupError(
                "grafana: no generated admin password found",
                hint=f"it lives in {paths.secrets_dir}; see `stack credentials`",
            )
        return cls(runtime, grafana.admin_user, password)

    def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        ok: tuple[int, ...] = (200,),
        what: str = "",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, JSON) for a status in `ok`; BackupError naming the call otherwise."""
        sent = {"Accept": "application/json", **self._auth, **(headers or {})}
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            sent["Content-Type"] = "application/json"
        try:
            reply = self.runtime.http(
                "grafana", "http", path, method=method, body=body, headers=sent, timeout=self.timeout
            )
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise BackupError(f"grafana: cannot {what or method + ' ' + path}: no answer ({exc})") from None
        try:
            data = json.loads(reply.body) if reply.body else None
        except ValueError:
            data = reply.text()
        if reply.status in ok:
            return reply.status, data
        message = data.get("message") if isinstance(data, dict) else str(data or "")[:200]
        if reply.status == 401:
            raise BackupError(
                "grafana: the admin credentials were rejected (401)",
                hint="the password in .stack-secrets must match Grafana's; see `stack credentials`",
            )
        raise BackupError(f"grafana: cannot {what or method + ' ' + path}: HTTP {reply.status} {message}".rstrip())

    def get(self, path: str, *, what: str = "") -> Any:
        return self.request("GET", path, what=what)[1]

    def get_or_none(self, path: str, *, what: str = "") -> Any:
        status, data = self.request("GET", path, ok=(200, 404), what=what)
        return None if status == 404 else data


def q(value: str) -> str:
    """A path segment (uids and names may hold characters that need quoting)."""
    return quote(str(value), safe="")
