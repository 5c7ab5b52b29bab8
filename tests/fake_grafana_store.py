"""A fake Grafana for backup/restore tests: a real HTTP server on 127.0.0.1 that follows Grafana's
documented HTTP API for what backups touch (search, folders, dashboards, datasources, alerting
provisioning), with its status codes (401, 404, 409, 412 version-mismatch/name-exists, 400 for a
dashboard posted before its folder), and that keeps its state in a real SQLite file, `grafana.db`
in its data directory, like Grafana does. So a database-file restore is as real as an API restore.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Reply = tuple[int, Any]


class Store:
    """Objects by kind and key, as JSON, in SQLite."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS objects (kind TEXT, key TEXT, body TEXT, PRIMARY KEY (kind, key))")

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path)
        try:
            with db:
                yield db
        finally:
            db.close()

    def all(self, kind: str) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute("SELECT body FROM objects WHERE kind = ? ORDER BY rowid", (kind,)).fetchall()
        return [json.loads(row[0]) for row in rows]

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._db() as db:
            row = db.execute("SELECT body FROM objects WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, kind: str, key: str, body: Any) -> None:
        with self._db() as db:
            db.execute(
                "INSERT INTO objects (kind, key, body) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body",
                (kind, key, json.dumps(body)),
            )

    def delete(self, kind: str, key: str) -> bool:
        with self._db() as db:
            return db.execute("DELETE FROM objects WHERE kind = ? AND key = ?", (kind, key)).rowcount > 0

    def wipe(self) -> None:
        """Everything users built is gone (the admin user stays)."""
        with self._db() as db:
            db.execute("DELETE FROM objects WHERE kind != 'user'")


class FakeGrafana:
    def __init__(self, data_dir: Path, user: str, password: str) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(data_dir / "grafana.db")
        self.user = user
        # Like GF_SECURITY_ADMIN_PASSWORD: applies when the database is created, never afterwards.
        if self.store.get("user", user) is None:
            self.store.put("user", user, {"login": user, "password": password})
        self.writes: list[tuple[str, str, int]] = []
        self.port = 0

    # -- dispatch -------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Any, body: Any) -> Reply:
        split = urlsplit(target)
        path, query = split.path, parse_qs(split.query)
        if path == "/api/health":
            return 200, {"database": "ok", "version": "13.2.0"}
        password = (self.store.get("user", self.user) or {}).get("password", "")
        if headers.get("Authorization") != "Basic " + base64.b64encode(f"{self.user}:{password}".encode()).decode():
            return 401, {"message": "Unauthorized"}
        for pattern, handler in self.routes():
            match = re.fullmatch(pattern, f"{method} {path}")
            if match:
                status, data = handler(*(unquote(group) for group in match.groups()), query=query, body=body)
                if method != "GET":
                    self.writes.append((method, path, status))
                return status, data
        return 404, {"message": "Not found"}

    def routes(self) -> list[tuple[str, Any]]:
        alerting = "/api/v1/provisioning"
        return [
            (r"GET /api/user", lambda **_: (200, {"login": self.user, "isGrafanaAdmin": True})),
            (r"GET /api/search", self.search),
            (r"GET /api/folders/([^/]+)", lambda uid, **_: self._found(self.store.get("folder", uid))),
            (r"POST /api/folders", self.create_folder),
            (r"PUT /api/folders/([^/]+)", self.update_folder),
            (r"GET /api/datasources", lambda **_: (200, self.store.all("datasource"))),
            (r"GET /api/datasources/uid/([^/]+)", lambda uid, **_: self._found(self.store.get("datasource", uid))),
            (r"POST /api/datasources", self.create_datasource),
            (r"PUT /api/datasources/uid/([^/]+)", self.update_datasource),
            (r"GET /api/dashboards/uid/([^/]+)", self.get_dashboard),
            (r"POST /api/dashboards/db", self.save_dashboard),
            (r"DELETE /api/dashboards/uid/([^/]+)", lambda uid, **_: self._deleted("dashboard", uid)),
            (rf"GET {alerting}/alert-rules", lambda **_: (200, self.store.all("rule"))),
            (rf"GET {alerting}/alert-rules/([^/]+)", lambda uid, **_: self._found(self.store.get("rule", uid))),
            (rf"POST {alerting}/alert-rules", self.create_rule),
            (rf"PUT {alerting}/alert-rules/([^/]+)", self.update_rule),
            (rf"GET {alerting}/contact-points", lambda **_: (200, self.store.all("contact"))),
            (rf"POST {alerting}/contact-points", lambda body, **_: self._create("contact", body["uid"], body)),
            (rf"PUT {alerting}/contact-points/([^/]+)", lambda uid, body, **_: self._update("contact", uid, body)),
            (
                rf"GET {alerting}/policies",
                lambda **_: (200, self.store.get("policy", "root") or {"receiver": "default"}),
            ),
            (rf"PUT {alerting}/policies", lambda body, **_: (self.store.put("policy", "root", body), (202, {}))[1]),
            (rf"GET {alerting}/mute-timings", lambda **_: (200, self.store.all("mute"))),
            (rf"GET {alerting}/mute-timings/([^/]+)", lambda name, **_: self._found(self.store.get("mute", name))),
            (rf"POST {alerting}/mute-timings", lambda body, **_: self._create("mute", body["name"], body)),
            (rf"PUT {alerting}/mute-timings/([^/]+)", lambda name, body, **_: self._update("mute", name, body)),
            (rf"GET {alerting}/templates", lambda **_: (200, self.store.all("template"))),
            (rf"PUT {alerting}/templates/([^/]+)", self.put_template),
        ]

    @staticmethod
    def _found(item: Any) -> Reply:
        return (200, item) if item is not None else (404, {"message": "not found"})

    def _deleted(self, kind: str, key: str) -> Reply:
        return (200, {"message": "deleted"}) if self.store.delete(kind, key) else (404, {"message": "not found"})

    def _create(self, kind: str, key: str, body: dict[str, Any]) -> Reply:
        if self.store.get(kind, key) is not None:
            return 409, {"message": f"{kind} already exists"}
        self.store.put(kind, key, body)
        return 202, body

    def _update(self, kind: str, key: str, body: dict[str, Any]) -> Reply:
        if self.store.get(kind, key) is None:
            return 404, {"message": "not found"}
        self.store.put(kind, key, body)
        return 202, body

    # -- folders, dashboards, datasources ----------------------------------------------------------

    def search(self, *, query: dict[str, list[str]], **_: Any) -> Reply:
        kind = query.get("type", ["dash-db"])[0]
        if kind == "dash-folder":
            hits = [{"uid": f["uid"], "title": f["title"], "type": "dash-folder"} for f in self.store.all("folder")]
        else:
            hits = [
                {
                    "uid": d["dashboard"]["uid"],
                    "title": d["dashboard"]["title"],
                    "type": "dash-db",
                    "folderUid": d["folderUid"],
                }
                for d in self.store.all("dashboard")
            ]
        limit = int(query.get("limit", ["1000"])[0])
        page = int(query.get("page", ["1"])[0])
        return 200, hits[(page - 1) * limit : page * limit]

    def create_folder(self, *, body: dict[str, Any], **_: Any) -> Reply:
        uid, title = body.get("uid"), body.get("title")
        if not title:
            return 400, {"message": "folder title cannot be empty"}
        if self.store.get("folder", uid) is not None:
            return 409, {"message": "a folder with the same uid already exists"}
        if any(f["title"] == title and f.get("parentUid") == body.get("parentUid") for f in self.store.all("folder")):
            return 409, {"message": "a folder with the same name already exists"}
        if body.get("parentUid") and self.store.get("folder", body["parentUid"]) is None:
            return 404, {"message": "parent folder not found"}
        folder = {"uid": uid, "title": title, "parentUid": body.get("parentUid"), "version": 1}
        self.store.put("folder", uid, folder)
        return 200, folder

    def update_folder(self, uid: str, *, body: dict[str, Any], **_: Any) -> Reply:
        folder = self.store.get("folder", uid)
        if folder is None:
            return 404, {"message": "folder not found"}
        if not body.get("overwrite") and body.get("version") != folder["version"]:
            return 412, {"message": "the folder has been changed by someone else", "status": "version-mismatch"}
        folder.update(title=body.get("title", folder["title"]), version=folder["version"] + 1)
        self.store.put("folder", uid, folder)
        return 200, folder

    def get_dashboard(self, uid: str, **_: Any) -> Reply:
        saved = self.store.get("dashboard", uid)
        if saved is None:
            return 404, {"message": "Dashboard not found"}
        return 200, {"dashboard": saved["dashboard"], "meta": {"folderUid": saved["folderUid"] or ""}}

    def save_dashboard(self, *, body: dict[str, Any], **_: Any) -> Reply:
        dashboard = dict(body["dashboard"])
        uid = dashboard.get("uid")
        folder_uid = body.get("folderUid") or None
        if folder_uid and self.store.get("folder", folder_uid) is None:
            return 400, {"message": "folder not found", "status": "folder-not-found"}
        existing = self.store.get("dashboard", uid)
        overwrite = bool(body.get("overwrite"))
        if not overwrite:
            if existing is not None and dashboard.get("version") != existing["dashboard"].get("version"):
                return 412, {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"}
            for other in self.store.all("dashboard"):
                same_place = other["folderUid"] == folder_uid and other["dashboard"]["title"] == dashboard.get("title")
                if same_place and other["dashboard"]["uid"] != uid:
                    return 412, {"message": "A dashboard with the same name exists", "status": "name-exists"}
        if overwrite:
            for other in self.store.all("dashboard"):
                same_place = other["folderUid"] == folder_uid and other["dashboard"]["title"] == dashboard.get("title")
                if same_place and other["dashboard"]["uid"] != uid:
                    self.store.delete("dashboard", other["dashboard"]["uid"])
        version = (existing["dashboard"].get("version", 0) if existing else 0) + 1
        dashboard.update(id=1, version=version)
        self.store.put("dashboard", uid, {"dashboard": dashboard, "folderUid": folder_uid})
        return 200, {"status": "success", "uid": uid, "version": version}

    def create_datasource(self, *, body: dict[str, Any], **_: Any) -> Reply:
        if any(source["name"] == body.get("name") for source in self.store.all("datasource")):
            return 409, {"message": "data source with the same name already exists"}
        source = {**body, "id": 7, "version": 1, "secureJsonFields": {k: True for k in body.get("secureJsonData", {})}}
        source.pop("secureJsonData", None)
        self.store.put("datasource", body["uid"], source)
        return 200, {"datasource": source, "message": "Datasource added"}

    def update_datasource(self, uid: str, *, body: dict[str, Any], **_: Any) -> Reply:
        existing = self.store.get("datasource", uid)
        if existing is None:
            return 404, {"message": "Data source not found"}
        source = {**existing, **body, "version": existing["version"] + 1}
        source.pop("secureJsonData", None)
        self.store.put("datasource", uid, source)
        return 200, {"datasource": source, "message": "Datasource updated"}

    # -- alerting ---------------------------------------------------------------------------------

    def create_rule(self, *, body: dict[str, Any], **_: Any) -> Reply:
        if self.store.get("folder", body.get("folderUID", "")) is None:
            return 400, {"message": "invalid alert rule: folder does not exist"}
        return self._create("rule", body["uid"], body)

    def update_rule(self, uid: str, *, body: dict[str, Any], **_: Any) -> Reply:
        if self.store.get("folder", body.get("folderUID", "")) is None:
            return 400, {"message": "invalid alert rule: folder does not exist"}
        return self._update("rule", uid, body) if self.store.get("rule", uid) else (404, {"message": "not found"})

    def put_template(self, name: str, *, body: dict[str, Any], **_: Any) -> Reply:
        template = {"name": name, "template": body.get("template", "")}
        self.store.put("template", name, template)
        return 202, template


@dataclass
class Running:
    fake: FakeGrafana
    url: str
    port: int
    server: ThreadingHTTPServer

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def fake_grafana(data_dir: Path, *, user: str = "admin", password: str = "s3cret") -> Iterator[Running]:
    fake = FakeGrafana(data_dir, user, password)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            status, data = fake.handle(self.command, self.path, self.headers, body)
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    fake.port = port
    running = Running(fake, f"http://127.0.0.1:{port}", port, server)
    try:
        yield running
    finally:
        running.stop()
