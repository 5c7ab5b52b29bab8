"""A fake Grafana for provisioning tests: a real HTTP server on 127.0.0.1 that follows Grafana's
documented HTTP API (health, org, service accounts and tokens, folders, datasources by uid,
dashboards by uid, search), status codes included:

- 401 on missing or wrong credentials or an unknown token; 403 when a Viewer writes;
- 404 for unknown uids; 409 when a folder uid/title or a datasource name/uid exists;
- 412 `version-mismatch` (stale version, no overwrite); before 11.3, `name-exists` (same title in the
  folder) and 409 for a folder title already used: since 11.3 only uids are unique, titles are not;
- Grafana 13 may store dashboards as schema v2 (`stores_v2`): the legacy GET then returns a lossy v1
  copy (panel descriptions and plugin versions, the dashboard's graphTooltip are lost); every save
  makes a version with its message, listed newest first by `/api/dashboards/uid/:uid/versions`;
- a dashboard saved into a folder that does not exist fails (400 "folder not found");
- the ngalert admin configuration (where Grafana-managed alerts go): 404 until it is first set,
  403 for anyone but an org Admin, 400 for `external` without an Alertmanager datasource that
  handles Grafana-managed alerts, 201 once stored.

It keeps what it is sent, as Grafana's database does, and journals every request.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class FakeGrafana:
    admin_user: str = "admin"
    admin_password: str = "s3cret-admin"
    version: str = "13.2.0"
    database: str = "ok"
    url: str = ""
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    service_accounts: dict[int, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    # The ngalert admin configuration; None until it is first set (Grafana then sends to "all").
    admin_config: dict[str, Any] | None = None
    journal: list[tuple[str, str, int]] = field(default_factory=list)
    # Dashboards "saved by someone else" just before our next save of them (to play a race).
    race: set[str] = field(default_factory=set)
    # Grafana 13 with dashboards stored as schema v2: the legacy API serves a lossy v1 copy.
    stores_v2: bool = False
    # uid -> saved versions, oldest first ({"version", "message", "created"}).
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- helpers for tests ------------------------------------------------------------------------

    def writes(self) -> list[tuple[str, str, int]]:
        return [entry for entry in self.journal if entry[0] != "GET"]

    def reset_journal(self) -> None:
        self.journal.clear()

    def edit_dashboard(self, uid: str, **changes: Any) -> None:
        """An edit saved in Grafana's UI: the model changes and a new version is made (no message)."""
        dashboard = self.dashboards[uid]["dashboard"]
        dashboard.update(changes, version=dashboard["version"] + 1)
        self.versions.setdefault(uid, []).append(
            {"version": dashboard["version"], "message": "", "created": "2026-12-05T07:30:00Z"}
        )

    def add_token(self, role: str = "Admin") -> str:
        account_id = next(self._ids)
        self.service_accounts[account_id] = {"id": account_id, "name": f"sa-{account_id}", "role": role}
        key = "glsa_" + secrets.token_hex(16)
        self.tokens[key] = account_id
        return key

    def provisioned_datasource(self, source: dict[str, Any]) -> None:
        """A datasource as file provisioning leaves it: read-only through the API."""
        stored = {**source, "id": next(self._ids), "orgId": 1, "version": 1, "readOnly": True}
        stored.pop("editable", None)
        self.datasources[source["uid"]] = stored

    # -- the API ----------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: Any) -> tuple[int, Any]:
        if path == "/api/health":
            return 200, {"commit": "0a1b2c3", "database": self.database, "version": self.version}
        role = self._role(headers.get("Authorization", ""))
        if role is None:
            return 401, {"message": "Unauthorized"}
        if method != "GET" and role not in ("Admin", "Editor"):
            return 403, {
                "accessErrorId": "ACE0000000001",
                "message": "You'll need additional permissions to perform this action.",
                "title": "Access denied",
            }
        for pattern, handler in self._routes():
            match = re.fullmatch(pattern, f"{method} {path}")
            if match:
                return handler(*match.groups(), query=query, body=body, role=role)
        return 404, {"message": "Not found"}

    def _role(self, header: str) -> str | None:
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return "Admin" if (user, password) == (self.admin_user, self.admin_password) else None
        if header.startswith("Bearer "):
            account = self.tokens.get(header[7:])
            return None if account is None else self.service_accounts[account]["role"]
        return None

    def _routes(self) -> list[tuple[str, Any]]:
        return [
            (r"GET /api/org", lambda **_: (200, {"id": 1, "name": "Main Org."})),
            (r"GET /api/serviceaccounts/search", self._search_accounts),
            (r"POST /api/serviceaccounts", self._create_account),
            (r"POST /api/serviceaccounts/(\d+)/tokens", self._create_token),
            (r"GET /api/folders/([^/]+)", self._get_folder),
            (r"POST /api/folders", self._create_folder),
            (r"PUT /api/folders/([^/]+)", self._update_folder),
            (r"GET /api/datasources", lambda **_: (200, list(self.datasources.values()))),
            (r"GET /api/datasources/uid/([^/]+)", self._get_datasource),
            (r"POST /api/datasources", self._create_datasource),
            (r"PUT /api/datasources/uid/([^/]+)", self._update_datasource),
            (r"GET /api/dashboards/uid/([^/]+)", self._get_dashboard),
            (r"GET /api/dashboards/uid/([^/]+)/versions", self._get_versions),
            (r"POST /api/dashboards/db", self._save_dashboard),
            (r"GET /api/search", self._search),
            (r"GET /api/v1/ngalert/admin_config", self._get_admin_config),
            (r"POST /api/v1/ngalert/admin_config", self._post_admin_config),
        ]

    def _get_admin_config(self, *, role: str, **_: Any) -> tuple[int, Any]:
        if role != "Admin":
            return 403, {"message": "permissions denied"}
        if self.admin_config is None:
            return 404, {"message": "no admin configuration available"}
        return 200, self.admin_config

    def _post_admin_config(self, *, body: Any, role: str, **_: Any) -> tuple[int, Any]:
        if role != "Admin":
            return 403, {"message": "permissions denied"}
        choice = body.get("alertmanagersChoice")
        if choice not in ("all", "internal", "external"):
            return 400, {"message": "Invalid alertmanager choice specified"}
        handling = [
            s
            for s in self.datasources.values()
            if s.get("type") == "alertmanager" and (s.get("jsonData") or {}).get("handleGrafanaManagedAlerts")
        ]
        if choice == "external" and not handling:
            return 400, {
                "message": "At least one Alertmanager must be provided or configured as a datasource that "
                "handles alerts to choose this option"
            }
        self.admin_config = {"alertmanagersChoice": choice}
        return 201, {"message": "admin configuration updated"}

    def _search_accounts(self, *, query: dict[str, list[str]], **_: Any) -> tuple[int, Any]:
        wanted = (query.get("query") or [""])[0]
        found = [sa for sa in self.service_accounts.values() if wanted in sa["name"]]
        return 200, {"totalCount": len(found), "serviceAccounts": found, "page": 1, "perPage": 1000}

    def _create_account(self, *, body: Any, **_: Any) -> tuple[int, Any]:
        if any(sa["name"] == body.get("name") for sa in self.service_accounts.values()):
            return 409, {"message": "service account already exists"}
        account_id = next(self._ids)
        account = {"id": account_id, "name": body["name"], "login": f"sa-1-{body['name']}", "orgId": 1}
        account.update({"isDisabled": bool(body.get("isDisabled")), "role": body.get("role", "Viewer"), "tokens": 0})
        self.service_accounts[account_id] = account
        return 201, account

    def _create_token(self, account: str, *, body: Any, **_: Any) -> tuple[int, Any]:
        if int(account) not in self.service_accounts:
            return 404, {"message": "service account not found"}
        key = "glsa_" + secrets.token_hex(16)
        self.tokens[key] = int(account)
        return 200, {"id": next(self._ids), "name": body.get("name"), "key": key}

    def _get_folder(self, uid: str, **_: Any) -> tuple[int, Any]:
        folder = self.folders.get(uid)
        return (200, folder) if folder else (404, {"message": "folder not found", "status": "not-found"})

    def _create_folder(self, *, body: Any, **_: Any) -> tuple[int, Any]:
        uid, title = body.get("uid") or secrets.token_hex(7), body.get("title", "")
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        if self._unique_titles() and any(f["title"] == title for f in self.folders.values()):
            return 409, {"message": "a folder or dashboard in the general folder with the same name already exists"}
        folder = {"id": next(self._ids), "uid": uid, "title": title, "url": f"/dashboards/f/{uid}/", "version": 1}
        self.folders[uid] = folder
        return 200, folder

    def _update_folder(self, uid: str, *, body: Any, **_: Any) -> tuple[int, Any]:
        folder = self.folders.get(uid)
        if folder is None:
            return 404, {"message": "folder not found", "status": "not-found"}
        if not body.get("overwrite") and body.get("version") != folder["version"]:
            return 412, {"message": "the folder has been changed by someone else", "status": "version-mismatch"}
        folder.update(title=body.get("title", folder["title"]), version=folder["version"] + 1)
        return 200, folder

    def _get_datasource(self, uid: str, **_: Any) -> tuple[int, Any]:
        source = self.datasources.get(uid)
        return (200, source) if source else (404, {"message": "Data source not found"})

    def _create_datasource(self, *, body: Any, **_: Any) -> tuple[int, Any]:
        if any(s["name"] == body.get("name") for s in self.datasources.values()):
            return 409, {"message": "data source with the same name already exists"}
        uid = body.get("uid") or secrets.token_hex(7)
        if uid in self.datasources:
            return 409, {"message": "data source with the same uid already exists"}
        stored = {
            "id": next(self._ids),
            "uid": uid,
            "orgId": 1,
            "basicAuth": False,
            "withCredentials": False,
            "isDefault": False,
            "jsonData": {},
            "secureJsonFields": {},
            "version": 1,
            "readOnly": False,
            **{k: v for k, v in body.items() if k != "secureJsonData"},
        }
        self.datasources[uid] = stored
        return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource added", "name": stored["name"]}

    def _update_datasource(self, uid: str, *, body: Any, **_: Any) -> tuple[int, Any]:
        stored = self.datasources.get(uid)
        if stored is None:
            return 404, {"message": "Data source not found"}
        if stored.get("readOnly"):
            return 403, {"message": "Cannot update read-only data source"}
        if body.get("version") is not None and body["version"] != stored["version"]:
            return 409, {"message": "Datasource has already been updated by someone else. Please reload and try again"}
        stored.update({k: v for k, v in body.items() if k not in ("secureJsonData", "id", "version")})
        stored["version"] += 1
        return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource updated", "name": stored["name"]}

    def _get_dashboard(self, uid: str, **_: Any) -> tuple[int, Any]:
        entry = self.dashboards.get(uid)
        if entry is None:
            return 404, {"message": "Dashboard not found"}
        folder = self.folders.get(entry["folderUid"], {})
        meta = {
            "type": "db",
            "slug": entry["dashboard"]["title"].lower().replace(" ", "-"),
            "url": f"/d/{uid}/",
            "version": entry["dashboard"]["version"],
            "provisioned": False,
            "folderUid": entry["folderUid"],
            "folderTitle": folder.get("title", "Dashboards"),
        }
        model = _lossy_v1(entry["dashboard"]) if self.stores_v2 else entry["dashboard"]
        return 200, {"dashboard": model, "meta": meta}

    def _get_versions(self, uid: str, *, query: dict[str, list[str]], **_: Any) -> tuple[int, Any]:
        if uid not in self.dashboards:
            return 404, {"message": "Dashboard not found"}
        limit = int((query.get("limit") or ["0"])[0]) or None
        newest_first = list(reversed(self.versions.get(uid, [])))[:limit]
        return 200, {"continueToken": "", "versions": [{"uid": uid, **entry} for entry in newest_first]}

    def _unique_titles(self) -> bool:
        # Grafana 11.3 dropped the unique-title constraint of dashboards and folders.
        numbers = tuple(int(part) for part in re.findall(r"\d+", self.version)[:2])
        return numbers < (11, 3)

    def _save_dashboard(self, *, body: Any, **_: Any) -> tuple[int, Any]:
        model = dict(body.get("dashboard") or {})
        folder_uid = body.get("folderUid") or ""
        overwrite = bool(body.get("overwrite"))
        if not model.get("title"):
            return 400, {"message": "Dashboard title cannot be empty", "status": "empty-name"}
        if folder_uid and folder_uid not in self.folders:
            return 400, {"message": "folder not found"}
        uid = model.get("uid") or secrets.token_hex(7)
        if uid in self.race:
            self.race.discard(uid)
            if uid in self.dashboards:
                self.dashboards[uid]["dashboard"]["version"] += 1
        existing = self.dashboards.get(uid)
        if existing and not overwrite and model.get("version") != existing["dashboard"]["version"]:
            return 412, {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"}
        for other_uid, other in self.dashboards.items():
            same_place = other["folderUid"] == folder_uid and other["dashboard"]["title"] == model["title"]
            if other_uid != uid and same_place and not overwrite and self._unique_titles():
                return 412, {
                    "message": "A dashboard with the same name in the folder already exists",
                    "status": "name-exists",
                }
        version = existing["dashboard"]["version"] + 1 if existing else 1
        dashboard_id = existing["dashboard"]["id"] if existing else next(self._ids)
        model.update(id=dashboard_id, uid=uid, version=version)
        self.dashboards[uid] = {"dashboard": model, "folderUid": folder_uid}
        self.versions.setdefault(uid, []).append(
            {"version": version, "message": str(body.get("message", "")), "created": "2026-12-05T07:00:00Z"}
        )
        return 200, {
            "id": dashboard_id,
            "uid": uid,
            "url": f"/d/{uid}/",
            "status": "success",
            "version": version,
            "slug": model["title"].lower().replace(" ", "-"),
            "folderUid": folder_uid,
        }

    def _search(self, *, query: dict[str, list[str]], **_: Any) -> tuple[int, Any]:
        kind = (query.get("type") or ["dash-db"])[0]
        if kind == "dash-folder":
            return 200, [{"uid": f["uid"], "title": f["title"], "type": "dash-folder"} for f in self.folders.values()]
        return 200, [
            {"uid": uid, "title": d["dashboard"]["title"], "type": "dash-db", "folderUid": d["folderUid"]}
            for uid, d in self.dashboards.items()
        ]


def _lossy_v1(model: dict[str, Any]) -> dict[str, Any]:
    """What Grafana 13's legacy API returns for a dashboard stored as schema v2: a v1 conversion that
    loses what v2 keeps elsewhere or drops."""
    copy = {key: value for key, value in model.items() if key != "graphTooltip"}
    copy["panels"] = [
        {key: value for key, value in panel.items() if key not in ("description", "pluginVersion")}
        for panel in model.get("panels", [])
        if isinstance(panel, dict)
    ]
    return copy


class _Server(ThreadingHTTPServer):
    # Python's default backlog of 5 drops the SYNs of a burst of parallel clients (retried after 1 s);
    # Grafana and the Docker engine accept far more.
    request_queue_size = 128


@contextlib.contextmanager
def fake_grafana(
    grafana: FakeGrafana | None = None, *, address: tuple[str, int] = ("127.0.0.1", 0), **options: Any
) -> Iterator[FakeGrafana]:
    """Serve `grafana` (a FakeGrafana, or a subclass extending it), else FakeGrafana(**options), on
    `address` (a free port by default)."""
    grafana = grafana if grafana is not None else FakeGrafana(**options)

    class Handler(BaseHTTPRequestHandler):
        def setup(self) -> None:
            super().setup()
            # Headers and body leave in separate writes: without this, delayed ACKs add 40 ms a request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _answer(self) -> None:
            parsed = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                status, payload = 400, {"message": "bad request data"}
            else:
                with grafana.lock:
                    status, payload = grafana.handle(
                        self.command, parsed.path, parse_qs(parsed.query), self.headers, body
                    )
            with grafana.lock:
                grafana.journal.append((self.command, parsed.path, status))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    server = _Server(address, Handler)
    server.daemon_threads = True
    grafana.url = f"http://{address[0]}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield grafana
    finally:
        server.shutdown()
        server.server_close()
