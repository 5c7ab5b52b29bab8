"""The fake Grafana of tests/support/fake_grafana.py, extended with what backups touch and it does not
cover: nested folders (`parentUid`), the alerting provisioning API (alert rules, contact points,
notification policies, mute timings, templates), `/api/user`, secure datasource fields, and state
kept in a real SQLite file, `grafana.db` in its data directory, like Grafana's. So a database-file
restore is as real as an API restore, and the admin password lives in the database: it applies
when the database is created, never afterwards (as GF_SECURITY_ADMIN_PASSWORD does).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.fake_grafana import FakeGrafana, fake_grafana

ALERTING = "/api/v1/provisioning"
_PERSISTED = ("folders", "datasources", "dashboards", "rules", "contacts", "mutes", "templates", "policy")


@dataclass
class StoredGrafana(FakeGrafana):
    data_dir: Path | None = None
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    mutes: dict[str, dict[str, Any]] = field(default_factory=dict)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=lambda: {"receiver": "grafana-default-email"})

    def __post_init__(self) -> None:
        assert self.data_dir is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS state (kind TEXT PRIMARY KEY, body TEXT)")
            created = db.execute("SELECT 1 FROM state WHERE kind = 'admin'").fetchone() is None
        if created:
            self._save_admin(self.admin_password)
            self.save()
        else:
            self.load()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    # -- the database file ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        assert self.data_dir is not None
        db = sqlite3.connect(self.data_dir / "grafana.db")
        try:
            with db:
                yield db
        finally:
            db.close()

    def _save_admin(self, password: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO state VALUES ('admin', ?)", (json.dumps(password),))

    def save(self) -> None:
        with self._db() as db:
            for kind in _PERSISTED:
                db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (kind, json.dumps(getattr(self, kind))))

    def load(self) -> None:
        with self._db() as db:
            rows = dict(db.execute("SELECT kind, body FROM state").fetchall())
        for kind in _PERSISTED:
            if kind in rows:
                setattr(self, kind, json.loads(rows[kind]))
        self.admin_password = json.loads(rows["admin"])

    def wipe(self) -> None:
        """Everything users built is gone (the admin user stays)."""
        for kind in _PERSISTED:
            getattr(self, kind).clear()
        self.policy = {"receiver": "grafana-default-email"}
        self.save()

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: Any) -> tuple[int, Any]:
        # The database is the truth: what another process wrote to it (grafana cli) counts.
        self.load()
        status, data = super().handle(method, path, query, headers, body)
        if method != "GET" and status < 300:
            self.save()
        return status, data

    # -- what the base fake lacks ------------------------------------------------------------------

    def _routes(self) -> list[tuple[str, Any]]:
        return [
            (r"GET /api/user", lambda **_: (200, {"login": self.admin_user, "isGrafanaAdmin": True})),
            (rf"GET {ALERTING}/alert-rules", lambda **_: (200, list(self.rules.values()))),
            (rf"GET {ALERTING}/alert-rules/([^/]+)", lambda uid, **_: self._found(self.rules.get(uid))),
            (rf"POST {ALERTING}/alert-rules", self._create_rule),
            (rf"PUT {ALERTING}/alert-rules/([^/]+)", self._update_rule),
            (rf"GET {ALERTING}/contact-points", lambda **_: (200, list(self.contacts.values()))),
            (rf"POST {ALERTING}/contact-points", lambda body, **_: self._create(self.contacts, body["uid"], body)),
            (rf"PUT {ALERTING}/contact-points/([^/]+)", lambda uid, body, **_: self._update(self.contacts, uid, body)),
            (rf"GET {ALERTING}/policies", lambda **_: (200, self.policy)),
            (rf"PUT {ALERTING}/policies", self._put_policy),
            (rf"GET {ALERTING}/mute-timings", lambda **_: (200, list(self.mutes.values()))),
            (rf"GET {ALERTING}/mute-timings/([^/]+)", lambda name, **_: self._found(self.mutes.get(name))),
            (rf"POST {ALERTING}/mute-timings", lambda body, **_: self._create(self.mutes, body["name"], body)),
            (rf"PUT {ALERTING}/mute-timings/([^/]+)", lambda name, body, **_: self._update(self.mutes, name, body)),
            (rf"GET {ALERTING}/templates", lambda **_: (200, list(self.templates.values()))),
            (rf"PUT {ALERTING}/templates/([^/]+)", self._put_template),
            *super()._routes(),
        ]

    @staticmethod
    def _found(item: Any) -> tuple[int, Any]:
        return (200, item) if item is not None else (404, {"message": "not found"})

    @staticmethod
    def _create(table: dict[str, Any], key: str, body: dict[str, Any]) -> tuple[int, Any]:
        if key in table:
            return 409, {"message": "already exists"}
        table[key] = body
        return 201, body

    @staticmethod
    def _update(table: dict[str, Any], key: str, body: dict[str, Any]) -> tuple[int, Any]:
        if key not in table:
            return 404, {"message": "not found"}
        table[key] = body
        return 202, body

    def _create_rule(self, *, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        if body.get("folderUID") not in self.folders:
            return 400, {"message": "invalid alert rule: folder does not exist"}
        return self._create(self.rules, body["uid"], body)

    def _update_rule(self, uid: str, *, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        if body.get("folderUID") not in self.folders:
            return 400, {"message": "invalid alert rule: folder does not exist"}
        return self._update(self.rules, uid, body)

    def _put_policy(self, *, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        self.policy = body
        return 202, {"message": "policies updated"}

    def _put_template(self, name: str, *, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        self.templates[name] = {"name": name, "template": body.get("template", "")}
        return 202, self.templates[name]

    def _create_folder(self, *, body: Any, **kwargs: Any) -> tuple[int, Any]:
        parent = body.get("parentUid")
        if parent and parent not in self.folders:
            return 404, {"message": "parent folder not found"}
        status, folder = super()._create_folder(body=body, **kwargs)
        if status == 200:
            folder["parentUid"] = parent
        return status, folder

    def _create_datasource(self, *, body: Any, **kwargs: Any) -> tuple[int, Any]:
        status, data = super()._create_datasource(body=body, **kwargs)
        if status == 200:
            # Grafana keeps secrets write-only: the API tells only which ones are set.
            data["datasource"]["secureJsonFields"] = {key: True for key in body.get("secureJsonData", {})}
        return status, data


@contextlib.contextmanager
def stored_grafana(data_dir: Path, *, password: str) -> Iterator[StoredGrafana]:
    """A StoredGrafana served on 127.0.0.1 at a free port (its database in `data_dir`)."""
    with fake_grafana(StoredGrafana(data_dir=data_dir, admin_password=password)) as running:
        assert isinstance(running, StoredGrafana)
        yield running
