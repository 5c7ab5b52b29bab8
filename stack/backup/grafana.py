"""Grafana: an API export of everything users build in it (folders, dashboards with their folder,
datasources without secrets, alert rules, contact points, notification policies, mute timings,
templates), plus its database file for a full restore.

Restore: alone (`--only grafana`, or when the archive has no database) through the API without
stopping Grafana, folders before dashboards, conflicts overwritten and reported; together with the
rest of the stack, by putting its database back while it is stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from stack.backup.archive import ArchiveWriter
from stack.backup.errors import BadArchive
from stack.backup.grafana_api import get, q, stack_client
from stack.backup.spool import SectionSpool
from stack.backup.steps import Step, StepContext, state_path
from stack.backup.tempdirs import private_tempdir
from stack.fileio import parse_json
from stack.grafana.client import GrafanaClient
from stack.polling import poll_until
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore

API = "grafana/api"
DATA = "grafana/data"
DATABASE = "grafana.db"
PAGE = 1000
# Fields of a datasource that hold secrets (or ids that only mean something in one database).
_DATASOURCE_DROP = ("id", "orgId", "version", "password", "basicAuthPassword", "secureJsonData", "typeLogoUrl")


def _search(api: GrafanaClient, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        batch = get(api, f"/api/search?type={kind}&limit={PAGE}&page={page}", what="search") or []
        found.extend(batch)
        if len(batch) < PAGE:
            return found
        page += 1


def _folders_parents_first(folders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_uid = {folder["uid"]: folder for folder in folders}
    ordered: list[dict[str, Any]] = []
    placed: set[str] = set()

    def place(folder: dict[str, Any], depth: int = 0) -> None:
        if folder["uid"] in placed or depth > 64:
            return
        parent = folder.get("parentUid")
        if parent and parent in by_uid:
            place(by_uid[parent], depth + 1)
        placed.add(folder["uid"])
        ordered.append(folder)

    for folder in folders:
        place(folder)
    return ordered


def export(api: GrafanaClient) -> dict[str, Any]:
    """Everything the API gives back, as JSON documents by file name."""
    folders = []
    for hit in _search(api, "dash-folder"):
        full = api.get_or_none(f"/api/folders/{q(hit['uid'])}", what="read a folder") or hit
        folders.append({"uid": full["uid"], "title": full["title"], "parentUid": full.get("parentUid") or None})
    dashboards = []
    for hit in _search(api, "dash-db"):
        found = api.get_or_none(f"/api/dashboards/uid/{q(hit['uid'])}", what="read a dashboard")
        if found is None:
            continue
        meta = found.get("meta", {})
        dashboards.append({"dashboard": found["dashboard"], "folderUid": meta.get("folderUid") or None})
    datasources = []
    with_secrets = []
    for source in get(api, "/api/datasources", what="list datasources") or []:
        if any((source.get("secureJsonFields") or {}).values()) or source.get("basicAuthPassword"):
            with_secrets.append(source.get("name"))
        datasources.append({key: value for key, value in source.items() if key not in _DATASOURCE_DROP})
    alerting = "/api/v1/provisioning"
    return {
        "folders.json": _folders_parents_first(folders),
        "dashboards.json": dashboards,
        "datasources.json": {"datasources": datasources, "with_secrets": with_secrets},
        "alert-rules.json": api.get_or_none(f"{alerting}/alert-rules", what="export alert rules") or [],
        "contact-points.json": api.get_or_none(f"{alerting}/contact-points", what="export contact points") or [],
        "policies.json": api.get_or_none(f"{alerting}/policies", what="export notification policies"),
        "mute-timings.json": api.get_or_none(f"{alerting}/mute-timings", what="export mute timings") or [],
        "templates.json": api.get_or_none(f"{alerting}/templates", what="export templates") or [],
    }


class ImportReport:
    def __init__(self) -> None:
        self.created: dict[str, int] = {}
        self.updated: dict[str, int] = {}
        self.overwritten: list[str] = []
        self.notes: list[str] = []

    def count(self, kind: str, *, created: bool) -> None:
        target = self.created if created else self.updated
        target[kind] = target.get(kind, 0) + 1

    def summary(self) -> str:
        kinds = sorted(set(self.created) | set(self.updated))
        parts = [f"{kind} {self.created.get(kind, 0)} created/{self.updated.get(kind, 0)} updated" for kind in kinds]
        text = "grafana: " + (", ".join(parts) or "nothing to restore")
        if self.overwritten:
            text += f"; conflicts overwritten: {', '.join(self.overwritten)}"
        return text


def import_all(api: GrafanaClient, documents: dict[str, Any]) -> ImportReport:
    """Put an export back: folders (parents first), datasources, dashboards into their folders,
    then alerting (mute timings, templates, contact points, policies, rules). Idempotent."""
    report = ImportReport()
    _import_folders(api, documents.get("folders.json") or [], report)
    _import_datasources(api, documents.get("datasources.json") or {}, report)
    _import_dashboards(api, documents.get("dashboards.json") or [], report)
    _import_alerting(api, documents, report)
    return report


def _import_folders(api: GrafanaClient, folders: list[dict[str, Any]], report: ImportReport) -> None:
    for folder in _folders_parents_first(folders):
        body = {"uid": folder["uid"], "title": folder["title"]}
        if folder.get("parentUid"):
            body["parentUid"] = folder["parentUid"]
        status, _ = api.request(
            "POST", "/api/folders", body, ok=(200, 409, 412), what=f"create folder {folder['title']!r}"
        )
        if status == 200:
            report.count("folders", created=True)
            continue
        existing = api.get_or_none(f"/api/folders/{q(folder['uid'])}", what="read a folder")
        if existing is None:
            # The title is taken by a folder with another uid: Grafana keys folders by uid.
            report.overwritten.append(f"folder {folder['title']!r} (title taken by another folder)")
            report.notes.append(f"grafana: folder {folder['title']!r} could not be created: its title is taken")
            continue
        if existing.get("title") != folder["title"]:
            report.overwritten.append(f"folder {folder['title']!r} (was {existing.get('title')!r})")
        api.request(
            "PUT",
            f"/api/folders/{q(folder['uid'])}",
            {"title": folder["title"], "overwrite": True},
            what=f"update folder {folder['title']!r}",
        )
        report.count("folders", created=False)


def _import_datasources(api: GrafanaClient, document: dict[str, Any], report: ImportReport) -> None:
    for source in document.get("datasources", []):
        uid = source.get("uid")
        if not uid:
            continue
        body = {key: value for key, value in source.items() if key not in ("secureJsonFields", "readOnly")}
        existing = api.get_or_none(f"/api/datasources/uid/{q(uid)}", what="read a datasource")
        if existing is not None and existing.get("readOnly"):
            # Provisioned from files by `stack up`: the files are the source of truth for it.
            continue
        if existing is None:
            status, _ = api.request("POST", "/api/datasources", body, ok=(200, 409), what=f"create datasource {uid}")
            if status == 409:
                report.overwritten.append(f"datasource {source.get('name')!r} (name taken)")
                continue
            report.count("datasources", created=True)
        else:
            api.request("PUT", f"/api/datasources/uid/{q(uid)}", body, what=f"update datasource {uid}")
            report.count("datasources", created=False)
    if document.get("with_secrets"):
        names = ", ".join(str(name) for name in document["with_secrets"])
        report.notes.append(f"grafana: datasources backed up without their secrets, re-enter them: {names}")


def _import_dashboards(api: GrafanaClient, dashboards: list[dict[str, Any]], report: ImportReport) -> None:
    for item in dashboards:
        dashboard = dict(item["dashboard"])
        dashboard["id"] = None
        uid = dashboard.get("uid")
        existed = uid is not None and api.get_or_none(f"/api/dashboards/uid/{q(uid)}", what="read a dashboard")
        body: dict[str, Any] = {"dashboard": dashboard, "overwrite": False, "message": "restored by stack"}
        if item.get("folderUid"):
            body["folderUid"] = item["folderUid"]
        title = dashboard.get("title", uid)
        status, data = api.request(
            "POST", "/api/dashboards/db", body, ok=(200, 412), what=f"restore dashboard {title!r}"
        )
        if status == 412:
            body["overwrite"] = True
            api.request("POST", "/api/dashboards/db", body, what=f"restore dashboard {title!r}")
            reason = data.get("status") if isinstance(data, dict) else None
            report.overwritten.append(f"dashboard {title!r} ({reason or 'conflict'})")
        report.count("dashboards", created=not existed)


def _upsert(
    api: GrafanaClient, kind: str, collection: str, key: str, items: list[dict[str, Any]], report: ImportReport
) -> None:
    base = f"/api/v1/provisioning/{collection}"
    for item in items:
        ident = item.get(key)
        if not ident:
            continue
        body = {name: value for name, value in item.items() if name not in ("id", "provenance")}
        existing = (
            api.get_or_none(f"{base}/{q(ident)}", what=f"read {kind}") if collection != "contact-points" else None
        )
        if collection == "contact-points":
            present = {point.get("uid") for point in get(api, base, what="list contact points") or []}
            existing = ident if ident in present else None
        if existing is None:
            api.request("POST", base, body, ok=(200, 201, 202), what=f"create {kind} {ident}")
            report.count(collection, created=True)
        else:
            api.request("PUT", f"{base}/{q(ident)}", body, ok=(200, 202), what=f"update {kind} {ident}")
            report.count(collection, created=False)


def _import_alerting(api: GrafanaClient, documents: dict[str, Any], report: ImportReport) -> None:
    _upsert(api, "mute timing", "mute-timings", "name", documents.get("mute-timings.json") or [], report)
    for template in documents.get("templates.json") or []:
        name = template.get("name")
        if name:
            body = {"template": template.get("template", "")}
            api.request(
                "PUT", f"/api/v1/provisioning/templates/{q(name)}", body, ok=(200, 202), what=f"restore template {name}"
            )
            report.count("templates", created=False)
    _upsert(api, "contact point", "contact-points", "uid", documents.get("contact-points.json") or [], report)
    policies = documents.get("policies.json")
    if policies:
        api.request(
            "PUT", "/api/v1/provisioning/policies", policies, ok=(200, 202), what="restore notification policies"
        )
        report.count("policies", created=False)
    _upsert(api, "alert rule", "alert-rules", "uid", documents.get("alert-rules.json") or [], report)
    redacted = [
        str(point.get("name"))
        for point in documents.get("contact-points.json") or []
        if "[REDACTED]" in json.dumps(point.get("settings", {}))
    ]
    if redacted:
        report.notes.append(
            f"grafana: contact points exported with redacted secrets, check them: {', '.join(redacted)}"
        )


def _extract_database(stream: IO[bytes], target: Path) -> bool:
    """Write the database member of a runtime's tar stream to `target`; False when it has none."""
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                if info.isreg() and info.name.rsplit("/", 1)[-1] == DATABASE:
                    source = tar.extractfile(info)
                    assert source is not None
                    with target.open("wb") as out:
                        shutil.copyfileobj(source, out, 1024 * 1024)
                    # Its mode and time as in the container (readable by us, whatever it was there).
                    os.chmod(target, (info.mode & 0o777) | 0o600)
                    os.utime(target, (info.mtime, info.mtime))
                    return True
    except tarfile.TarError:
        return False
    return False


def _database_ok(path: Path) -> bool:
    """Whether the copied database opens and passes SQLite's own check (a copy taken while
    Grafana was writing can be torn). Read-only and immutable: nothing is written beside it."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)) as db:
            return db.execute("PRAGMA quick_check").fetchone() == ("ok",)
    except sqlite3.Error:
        return False


@contextlib.contextmanager
def _consistent_database_copy(ctx: StepContext, attempts: int = 3) -> Iterator[Path | None]:
    """The database, copied once into a private temporary directory and checked; copied again (up
    to `attempts` times) when the copy is not consistent. None when no attempt gave one.

    The directory is removed afterwards, and swept by the next backup after a SIGKILL (its name
    carries the pid: see private_tempdir)."""
    with private_tempdir("stack-grafana-db-") as scratch:
        target = scratch / DATABASE

        def copied() -> bool:
            with ctx.runtime.copy_out("grafana", f"{state_path('grafana')}/{DATABASE}") as stream:
                found = _extract_database(stream, target)
            if found and _database_ok(target):
                return True
            target.unlink(missing_ok=True)
            return False

        yield target if poll_until(copied, interval=1, attempts=attempts) else None


class GrafanaStep(Step):
    component = "grafana"

    def backup(self, ctx: StepContext, writer: ArchiveWriter) -> None:
        ctx.on_phase("API export")
        api = stack_client(ctx.runtime, ctx.settings, ctx.paths)
        for name, document in export(api).items():
            writer.add_bytes(f"{API}/{name}", json.dumps(document, indent=1, sort_keys=True).encode())
        ctx.on_phase("database")
        with _consistent_database_copy(ctx) as copied:
            if copied is None:
                ctx.notes.append(
                    "grafana: its database changed during every copy attempt and was left out; "
                    "the API export is in the archive (restore it with --only grafana)"
                )
                return
            writer.add_file(f"{DATA}/{DATABASE}", copied)

    def restore_mode(self, selected: set[str], spool: SectionSpool) -> str:
        if selected == {self.component} or DATA not in spool.sections:
            return "online"
        return "offline"

    def restore_offline(self, ctx: StepContext, spool: SectionSpool) -> None:
        stream = spool.open(DATA, ctx.on_bytes)
        if stream is None:
            return
        ctx.on_phase("database in")
        with stream:
            ctx.runtime.copy_in(self.component, state_path(self.component), stream)

    def after_restore(self, ctx: StepContext, mode: str) -> None:
        if mode != "offline":
            return
        # The database brought back its own admin password hash. When the archive held no
        # secrets and the generated password differs, set Grafana's to the stored one again.
        api = stack_client(ctx.runtime, ctx.settings, ctx.paths)
        status, _ = api.request("GET", "/api/user", ok=(200, 401), what="check the admin login")
        if status == 200:
            return
        password = SecretStore.for_paths(ctx.paths).get(GRAFANA_ADMIN_PASSWORD) or ""
        ctx.on_phase("admin password")
        # The password goes in argv inside the container, never into a message or a log line.
        result = ctx.runtime.exec(
            self.component, ["grafana", "cli", "admin", "reset-admin-password", password], timeout=120
        )
        status, _ = api.request("GET", "/api/user", ok=(200, 401), what="check the admin login")
        if result.ok and status == 200:
            ctx.notes.append("grafana: the restored database had another admin password; reset to the stored one")
            return
        ctx.notes.append(
            "grafana: the restored database keeps the admin password it had at the backup and it could not "
            "be reset to the stored one: use an archive made with --include-secrets, or run "
            "`grafana cli admin reset-admin-password` in Grafana's container"
        )

    def restore_online(self, ctx: StepContext, spool: SectionSpool) -> None:
        raw = spool.read_members(API)
        try:
            documents = {name: parse_json(body) for name, body in raw.items()}
        except ValueError as exc:
            raise BadArchive(f"{API}: a document is not valid JSON ({exc})") from None
        ctx.on_phase("API import")
        report = import_all(stack_client(ctx.runtime, ctx.settings, ctx.paths), documents)
        ctx.notes.append(report.summary())
        ctx.notes.extend(report.notes)
