"""Idempotent provisioning: folders first, then datasources (upsert by uid), then dashboards (upsert
by uid into their folder). Every object is read and compared before anything is written, so an
unchanged stack costs only reads."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from stack.components.base import RenderContext
from stack.components.grafana import alertmanagers_choice
from stack.components.grafana import datasources as rendered_datasources
from stack.grafana.client import Auth, Counter, GrafanaClient, GrafanaError, RuntimeTransport, Transport, UrlTransport
from stack.grafana.dashboards import Dashboard, Folder, load_dashboards, selected_dashboards
from stack.grafana.token import ensure_token
from stack.paths import Paths
from stack.runtime.base import Runtime
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore
from stack.settings import Settings, parse_settings

# Fields Grafana adds or bumps on every save: never a reason to write.
_VOLATILE_DASHBOARD_KEYS = ("id", "version")
# Keys of the file-provisioning format that the HTTP API does not take.
_FILE_ONLY_DATASOURCE_KEYS = ("editable", "orgId", "version", "secureJsonData")


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged, "skipped": self.skipped}


@dataclass
class ProvisionResult:
    grafana: str
    version: str = ""
    folders: Counts = field(default_factory=Counts)
    datasources: Counts = field(default_factory=Counts)
    dashboards: Counts = field(default_factory=Counts)
    # Grafana's "send alerts to" setting (one item, when the stack manages it).
    alerting: Counts = field(default_factory=Counts)
    requests: int = 0
    writes: int = 0
    notes: list[str] = field(default_factory=list)

    def totals(self) -> Counts:
        total = Counts()
        for part in (self.folders, self.datasources, self.dashboards, self.alerting):
            total.created += part.created
            total.updated += part.updated
            total.unchanged += part.unchanged
            total.skipped += part.skipped
        return total

    def summary(self) -> str:
        total = self.totals()
        text = (
            f"{total.created} created, {total.updated} updated, {total.unchanged} unchanged"
            f" ({self.folders_line()}; {self.requests} requests, {self.writes} writes)"
        )
        return text + (f", {total.skipped} skipped" if total.skipped else "")

    def folders_line(self) -> str:
        def count(part: Counts) -> int:
            return part.created + part.updated + part.unchanged + part.skipped

        line = (
            f"{count(self.folders)} folders, {count(self.datasources)} datasources, {count(self.dashboards)} dashboards"
        )
        return line + (", alert delivery" if count(self.alerting) else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "grafana": self.grafana,
            "version": self.version,
            "folders": self.folders.as_dict(),
            "datasources": self.datasources.as_dict(),
            "dashboards": self.dashboards.as_dict(),
            "alerting": self.alerting.as_dict(),
            "requests": self.requests,
            "writes": self.writes,
            "notes": self.notes,
        }


# --- comparing ---------------------------------------------------------------------------------------


def contains(existing: Any, desired: Any) -> bool:
    """Whether `existing` (what Grafana stores) already holds everything in `desired`: keys Grafana
    adds on its own (defaults, ids) are no reason to write, and a `null` it drops is no difference."""
    if isinstance(desired, dict):
        return isinstance(existing, dict) and all(
            contains(existing[key], value) if key in existing else value is None for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(existing, list)
            and len(existing) == len(desired)
            and all(contains(e, d) for e, d in zip(existing, desired, strict=True))
        )
    if isinstance(desired, bool) or isinstance(existing, bool):
        return existing is desired
    return bool(existing == desired)


def unescape(value: Any) -> Any:
    """File provisioning's `$$` (a literal `$`) as the API wants it: `$`."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, dict):
        return {key: unescape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unescape(item) for item in value]
    return value


def api_datasource(source: dict[str, Any]) -> dict[str, Any]:
    """A datasource of the provisioning file as the HTTP API takes it."""
    return {key: unescape(value) for key, value in source.items() if key not in _FILE_ONLY_DATASOURCE_KEYS}


# --- the three steps ---------------------------------------------------------------------------------


@dataclass
class Existing:
    """What Grafana holds for each uid we are about to push (None: nothing), read in parallel."""

    folders: dict[str, Any]
    datasources: dict[str, Any]
    dashboards: dict[str, Any]


READERS = 8


def read_existing(
    client: GrafanaClient, folders: list[Folder], sources: list[dict[str, Any]], dashboards: list[Dashboard]
) -> Existing:
    """Every read up front and in parallel: a re-provision is nothing but reads, and through a remote
    engine each one costs a round trip."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="grafana-read") as pool:
        found_folders = {f.uid: pool.submit(client.folder, f.uid) for f in folders}
        found_sources = {s["uid"]: pool.submit(client.datasource, s["uid"]) for s in sources}
        found_dashboards = {d.uid: pool.submit(client.dashboard, d.uid) for d in dashboards}
        return Existing(
            folders={uid: future.result() for uid, future in found_folders.items()},
            datasources={uid: future.result() for uid, future in found_sources.items()},
            dashboards={uid: future.result() for uid, future in found_dashboards.items()},
        )


def _folders(client: GrafanaClient, folders: list[Folder], counts: Counts, found: dict[str, Any]) -> None:
    for folder in folders:
        existing = found.get(folder.uid)
        if existing is None:
            status, data = client.request(
                "POST",
                "/api/folders",
                {"uid": folder.uid, "title": folder.title},
                ok=(200, 409),
                what=f"create folder {folder.title!r}",
            )
            if status == 409:
                message = data.get("message", "") if isinstance(data, dict) else ""
                if "same name" not in message:
                    # Since Grafana 11.3 titles need not be unique: the uid itself is taken.
                    raise GrafanaError(
                        f"Grafana at {client.where} refused folder uid {folder.uid!r} (409: {message})",
                        hint="a folder or dashboard this token cannot read may hold that uid; check its permissions",
                    )
                raise GrafanaError(
                    f"Grafana at {client.where} has another folder named {folder.title!r} (409: {message})",
                    hint=f"rename or delete that folder, or give pack folder uid {folder.uid!r} another title",
                )
            counts.created += 1
        elif existing.get("title") != folder.title:
            _update_folder(client, folder, existing)
            counts.updated += 1
        else:
            counts.unchanged += 1


def _update_folder(client: GrafanaClient, folder: Folder, existing: dict[str, Any]) -> None:
    for _attempt in range(2):
        status, _data = client.request(
            "PUT",
            f"/api/folders/{folder.uid}",
            {"title": folder.title, "version": existing.get("version")},
            ok=(200, 412),
            what=f"rename folder {folder.uid!r}",
        )
        if status == 200:
            return
        # Changed by someone else meanwhile: read it again and retry once with its new version.
        existing = client.folder(folder.uid) or existing
    raise GrafanaError(f"folder {folder.uid!r} keeps changing in Grafana at {client.where}", hint="try again")


def _datasources(
    client: GrafanaClient, sources: list[dict[str, Any]], result: ProvisionResult, found: dict[str, Any]
) -> None:
    counts = result.datasources
    for source in sources:
        desired = api_datasource(source)
        uid = desired["uid"]
        existing = found.get(uid)
        if existing is None:
            status, data = client.request(
                "POST", "/api/datasources", desired, ok=(200, 409), what=f"create datasource {uid!r}"
            )
            if status == 409:
                message = data.get("message", "") if isinstance(data, dict) else ""
                raise GrafanaError(
                    f"Grafana at {client.where} already has a datasource named {desired['name']!r} "
                    f"with another uid (409: {message})",
                    hint=f"delete or rename it in Grafana so that uid {uid!r} can be created",
                )
            counts.created += 1
        elif contains(existing, desired):
            counts.unchanged += 1
        elif existing.get("readOnly"):
            # Provisioned from file (the baseline): Grafana refuses API edits; the file wins at its next start.
            counts.skipped += 1
            result.notes.append(
                f"datasource {uid!r} is provisioned from file and differs: it changes when Grafana restarts"
            )
        else:
            body = {**existing, **desired}
            body.pop("readOnly", None)
            client.request("PUT", f"/api/datasources/uid/{uid}", body, what=f"update datasource {uid!r}")
            counts.updated += 1


ADMIN_CONFIG = "/api/v1/ngalert/admin_config"
# What Grafana does when its admin configuration was never set.
_DEFAULT_CHOICE = "all"


def _alert_delivery(client: GrafanaClient, choice: str, counts: Counts) -> None:
    """Set where Grafana sends the alerts of its own rules (`internal`, `external` or `all`
    Alertmanagers). After the datasources: `external` needs an Alertmanager datasource that
    handles Grafana-managed alerts, or Grafana answers 400."""
    data = client.get_or_none(ADMIN_CONFIG, what="read where Grafana sends its alerts")
    current = (data.get("alertmanagersChoice") if isinstance(data, dict) else None) or _DEFAULT_CHOICE
    if current == choice:
        counts.unchanged += 1
        return
    status, reply = client.request(
        "POST",
        ADMIN_CONFIG,
        {"alertmanagersChoice": choice},
        ok=(200, 201, 202, 400),
        what="set where Grafana sends its alerts",
    )
    if status == 400:
        message = reply.get("message", "") if isinstance(reply, dict) else ""
        raise GrafanaError(
            f"Grafana at {client.where} refused to send its alerts to {choice} Alertmanagers (400: {message})",
            hint="check that the Alertmanager datasource has handleGrafanaManagedAlerts on, or set "
            "alerting.grafana_alerts: grafana in stack.yaml",
        )
    counts.updated += 1


def _strip(model: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in model.items() if key not in _VOLATILE_DASHBOARD_KEYS}


def fingerprint(model: dict[str, Any]) -> str:
    """A short digest of a dashboard model as pushed (keys sorted, volatile fields out)."""
    canonical = json.dumps(_strip(model), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def save_message(model: dict[str, Any]) -> str:
    """The version message of a save: it carries the fingerprint of what was saved."""
    return f"stack provision {fingerprint(model)}"


def _pushed_and_untouched(client: GrafanaClient, uid: str, stored: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Whether the stored dashboard is what provisioning last saved, unchanged since, when its JSON
    cannot say so: Grafana 13 may store a dashboard as schema v2, and the legacy API then returns a
    lossy v1 copy that never equals what was sent. The latest version's message carries the
    fingerprint of what was saved; a save by anyone else since makes a newer version."""
    data = client.get_or_none(f"/api/dashboards/uid/{quote(uid)}/versions?limit=1", what=f"read versions of {uid!r}")
    # Grafana 11+: {"versions": [...], "continueToken": ...}; earlier: a list.
    versions = data.get("versions") if isinstance(data, dict) else data
    if not isinstance(versions, list) or not versions or not isinstance(versions[0], dict):
        return False
    latest = versions[0]
    return latest.get("version") == stored.get("version") and latest.get("message") == save_message(desired)


def _dashboards(client: GrafanaClient, dashboards: list[Dashboard], counts: Counts, found: dict[str, Any]) -> None:
    for dashboard in dashboards:
        desired = _strip(dashboard.model)
        existing = found.get(dashboard.uid)
        if existing is not None:
            stored = existing.get("dashboard", {})
            folder_uid = (existing.get("meta") or {}).get("folderUid") or ""
            if folder_uid == dashboard.folder.uid and (
                contains(_strip(stored), desired) or _pushed_and_untouched(client, dashboard.uid, stored, desired)
            ):
                counts.unchanged += 1
                continue
        _save_dashboard(client, dashboard, desired, existing)
        if existing is None:
            counts.created += 1
        else:
            counts.updated += 1


def _save_dashboard(
    client: GrafanaClient, dashboard: Dashboard, desired: dict[str, Any], existing: dict[str, Any] | None
) -> None:
    for _attempt in range(2):
        stored = (existing or {}).get("dashboard", {})
        body = {
            "dashboard": {**desired, "id": stored.get("id"), "version": stored.get("version", 0)},
            "folderUid": dashboard.folder.uid,
            "overwrite": False,
            "message": save_message(desired),
        }
        status, data = client.request(
            "POST", "/api/dashboards/db", body, ok=(200, 412), what=f"save dashboard {dashboard.title!r}"
        )
        if status == 200:
            return
        reason = data.get("status") if isinstance(data, dict) else None
        if reason == "version-mismatch":
            # Saved by someone else since we read it: read it again, retry once.
            existing = client.dashboard(dashboard.uid)
            continue
        if reason == "name-exists":
            raise GrafanaError(
                f"{dashboard.source}: Grafana at {client.where} already has another dashboard titled "
                f"{dashboard.title!r} in folder {dashboard.folder.title!r}",
                hint="rename one of them (titles must be unique within a folder)",
            )
        message = data.get("message", "") if isinstance(data, dict) else ""
        raise GrafanaError(
            f"{dashboard.source}: Grafana at {client.where} refused dashboard {dashboard.uid!r} "
            f"(412 {reason}: {message})"
        )
    raise GrafanaError(f"dashboard {dashboard.uid!r} keeps changing in Grafana at {client.where}", hint="try again")


def provision(
    client: GrafanaClient,
    *,
    datasources: list[dict[str, Any]],
    dashboards: list[Dashboard],
    credentials_checked: bool = False,
    alertmanagers_choice: str | None = None,
) -> ProvisionResult:
    """Push folders, datasources and dashboards, and where Grafana sends its alerts (when
    `alertmanagers_choice` is given); write only what differs."""
    before_requests, before_writes = client.counter.requests, client.counter.writes
    result = ProvisionResult(grafana=client.where)
    result.version = client.check_version()
    if not credentials_checked:
        # Before anything else, so that bad credentials fail the same way whatever there is to push.
        client.request("GET", "/api/org", what="read the current organization")
    folders: dict[str, Folder] = {}
    for dashboard in dashboards:
        folders.setdefault(dashboard.folder.uid, dashboard.folder)
    found = read_existing(client, list(folders.values()), datasources, dashboards)
    # Writes in order: a dashboard needs its folder, and datasources before the dashboards using them.
    _folders(client, list(folders.values()), result.folders, found.folders)
    _datasources(client, datasources, result, found.datasources)
    if alertmanagers_choice is not None:
        _alert_delivery(client, alertmanagers_choice, result.alerting)
    _dashboards(client, dashboards, result.dashboards, found.dashboards)
    result.requests = client.counter.requests - before_requests
    result.writes = client.counter.writes - before_writes
    return result


# --- what the stack pushes -------------------------------------------------------------------------


def stack_dashboards(paths: Paths, settings: Settings, extra_dirs: list[Path] | None = None) -> list[Dashboard]:
    """The dashboards to push: the packs and directories stack.yaml selects (`dashboards:`), plus
    `extra_dirs` given on the command line."""
    return selected_dashboards(settings, paths.base_dir, extra_dirs)


def stack_datasources(settings: Settings, runtime: Runtime | None = None) -> list[dict[str, Any]]:
    """The datasources of the enabled components, with URLs as Grafana sees them in this runtime."""
    topology = getattr(runtime, "topology", None)
    ctx = RenderContext(settings=settings, topology=topology) if topology is not None else RenderContext(settings)
    return rendered_datasources(ctx)


def external_datasources(urls: dict[str, str]) -> list[dict[str, Any]]:
    """The bundled datasources for a Grafana elsewhere: only those given a URL (uid -> URL), and
    references to the others removed."""
    from stack.components.grafana import DATASOURCE_COMPONENTS

    disabled = {component: {"enabled": False} for uid, component in DATASOURCE_COMPONENTS.items() if uid not in urls}
    # Someone else's Grafana keeps sending its own alerts where it did: the Alertmanager datasource
    # is added for viewing and silencing, not to take over their alert delivery.
    settings = parse_settings({"components": disabled, "alerting": {"grafana_alerts": "grafana"}})
    sources = rendered_datasources(RenderContext(settings))
    for source in sources:
        source["url"] = urls[source["uid"]]
    return sources


def admin_auth(paths: Paths, settings: Settings) -> Auth:
    store = SecretStore.for_paths(paths)
    password = store.get(GRAFANA_ADMIN_PASSWORD)
    if password is None:
        raise GrafanaError(
            f"no Grafana admin password in {store.path(GRAFANA_ADMIN_PASSWORD)}",
            hint="run `stack up` (it generates one) or `stack credentials`",
        )
    user = settings.components.grafana.admin_user
    return Auth(
        user=user,
        password=password,
        source=f"the admin credentials ({user}, password in {store.path(GRAFANA_ADMIN_PASSWORD)}); "
        "the password only applies when Grafana's database is created",
    )


def stack_transport(runtime: Runtime) -> Transport:
    base = runtime.base_url("grafana", "http")
    return UrlTransport(base) if base else RuntimeTransport(runtime)


def provision_stack(
    paths: Paths, settings: Settings, runtime: Runtime, *, extra_dirs: list[Path] | None = None
) -> ProvisionResult:
    """Provision the stack's own Grafana (what `stack up` and `stack provision` run)."""
    transport = stack_transport(runtime)
    counter = Counter()
    store = SecretStore.for_paths(paths)
    bootstrap = GrafanaClient(transport, admin_auth(paths, settings), counter=counter)
    token = ensure_token(transport, store, bootstrap.auth, bootstrap)
    client = GrafanaClient(
        transport, Auth(token=token, source=f"the token in {store.path('grafana-provisioning-token')}"), counter=counter
    )
    before_requests, before_writes = counter.requests, counter.writes
    result = provision(
        client,
        datasources=stack_datasources(settings, runtime),
        dashboards=stack_dashboards(paths, settings, extra_dirs),
        credentials_checked=True,
        alertmanagers_choice=alertmanagers_choice(RenderContext(settings)),
    )
    # The token check counts too: it is part of what a re-provision costs.
    result.requests += before_requests
    result.writes += before_writes
    return result


def provision_external(
    url: str, auth: Auth, *, datasource_urls: dict[str, str], dashboards: list[Dashboard] | None = None
) -> ProvisionResult:
    """Provision any Grafana, local or hosted (`stack provision --grafana-url`): the datasources
    given a URL are pushed; for the other types the packs use that Grafana's own datasources."""
    from stack.grafana.binding import plan_external

    client = GrafanaClient(UrlTransport(url), auth)
    plan = plan_external(client, load_dashboards() if dashboards is None else dashboards, set(datasource_urls))
    result = provision(client, datasources=external_datasources(datasource_urls), dashboards=plan.dashboards)
    # The lookup of the existing datasources is part of what this costs.
    result.requests = client.counter.requests
    result.writes = client.counter.writes
    result.notes[:0] = plan.notes
    return result
