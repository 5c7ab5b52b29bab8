"""Idempotent provisioning: folders first, then datasources (upsert by uid), then dashboards (upsert
by uid into their folder). Every object is read and compared before anything is written, so an
unchanged stack costs only reads. Each kind of object has its module (push_folders,
push_datasources, push_dashboards, alert_delivery); this one reads, orders the writes, and says
what the stack pushes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stack.components.base import RenderContext
from stack.components.grafana import alertmanagers_choice
from stack.components.grafana import datasources as rendered_datasources
from stack.grafana.alert_delivery import push_alert_delivery
from stack.grafana.client import Auth, Counter, GrafanaClient, GrafanaError, RuntimeTransport, Transport, UrlTransport
from stack.grafana.dashboards import Dashboard, Folder, load_dashboards, selected_dashboards
from stack.grafana.push_dashboards import push_dashboards
from stack.grafana.push_datasources import push_datasources
from stack.grafana.push_folders import push_folders
from stack.grafana.result import ProvisionResult
from stack.grafana.token import ensure_token
from stack.paths import Paths
from stack.runtime.abilities import HasTopology
from stack.runtime.base import Runtime
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore
from stack.settings import Settings, parse_settings


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
    push_folders(client, list(folders.values()), result.folders, found.folders)
    push_datasources(client, datasources, result, found.datasources)
    if alertmanagers_choice is not None:
        push_alert_delivery(client, alertmanagers_choice, result.alerting)
    push_dashboards(client, dashboards, result.dashboards, found.dashboards)
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
    ctx = (
        RenderContext(settings=settings, topology=runtime.topology)
        if isinstance(runtime, HasTopology)
        else RenderContext(settings)
    )
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
