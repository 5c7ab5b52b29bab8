from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack.components.base import (
    Component,
    ConfigFile,
    EndpointSpec,
    PortSpec,
    Probe,
    ReadyAnswer,
    RenderContext,
    SecretMount,
    bundled_config,
)
from stack.components.process import Address, BinarySpec, LocalProcess
from stack.net.address import http_url, shown_host
from stack.resources import bundled
from stack.secrets import GRAFANA_ADMIN_PASSWORD, GRAFANA_PASSWORD_ENV

if TYPE_CHECKING:
    from stack.settings import Problem, Settings

# The datasources the stack provisions (provisioning/datasources/datasources.yaml): uid -> the
# component behind it. Each uid is also the datasource's plugin type, so the stack's datasource of
# a type (what a dashboard's {"type": t} reference or `${DS_...}` input wants) has uid t.
DATASOURCE_COMPONENTS = {
    "prometheus": "prometheus",
    "loki": "loki",
    "tempo": "tempo",
    "alertmanager": "alertmanager",
}
PROVISIONING_DIR = "/etc/grafana/provisioning"
# The compose secret Grafana reads its admin password from (/run/secrets/<it>).
ADMIN_PASSWORD_SECRET = "grafana_admin_password"


def bundled_packs() -> list[str]:
    """Names of the bundled dashboard packs (provisioning/dashboards/<pack>/, each a Grafana folder)."""
    root = bundled("provisioning") / "dashboards"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def unknown_pack_hint(name: str) -> str:
    """A did-you-mean for a pack name that is not bundled."""
    packs = bundled_packs()
    close = difflib.get_close_matches(name, packs, n=1, cutoff=0.5)
    return f"did you mean '{close[0]}'?" if close else f"bundled packs: {', '.join(packs)}"


def unknown_dashboard_pack(settings: Settings) -> Problem | None:
    """The first name under `dashboards.packs` that is not a bundled pack (a SettingsCheck, run by
    stack.project when settings load: settings cannot read the bundled tree's layout)."""
    known = bundled_packs()
    for index, name in enumerate(settings.dashboards.packs or ()):
        if name not in known:
            return ("dashboards", "packs", index), f"{name!r} is not a dashboard pack", unknown_pack_hint(name)
    return None


def admin_password_secret() -> SecretMount:
    """The admin password as a compose secret: its value comes from the environment of the compose
    child when compose runs (stack.secrets.compose_environment), never from a rendered file."""
    return SecretMount(ADMIN_PASSWORD_SECRET, {"environment": GRAFANA_PASSWORD_ENV})


def _points_at(item: Any, gone: set[str]) -> bool:
    return isinstance(item, dict) and item.get("datasourceUid") in gone


def prune_references(value: Any, gone: set[str]) -> Any:
    """Drop every mapping (and list item) that points at a datasource uid in `gone`; a list
    emptied that way goes too, so no setting is left pointing at nothing."""
    if isinstance(value, dict):
        pruned = {}
        for key, item in value.items():
            if _points_at(item, gone):
                continue
            kept = prune_references(item, gone)
            if isinstance(item, list) and item and not kept:
                continue
            pruned[key] = kept
        return pruned
    if isinstance(value, list):
        return [prune_references(item, gone) for item in value if not _points_at(item, gone)]
    return value


def alertmanagers_choice(ctx: RenderContext) -> str:
    """Grafana's "send alerts to" admin setting (`alertmanagersChoice` of its ngalert admin API) that
    matches `alerting.grafana_alerts`."""
    if not ctx.enabled("alertmanager"):
        return "internal"
    return {"alertmanager": "external", "grafana": "internal", "both": "all"}[ctx.settings.alerting.grafana_alerts]


def datasources(ctx: RenderContext) -> list[dict[str, Any]]:
    """The provisioned datasources of the enabled components, with URLs for `ctx`'s topology."""
    document = bundled_config("datasources/datasources.yaml", tree="provisioning")
    gone = {uid for uid, component in DATASOURCE_COMPONENTS.items() if not ctx.enabled(component)}
    kept = []
    for source in document["datasources"]:
        if source["uid"] in gone:
            continue
        component = DATASOURCE_COMPONENTS[source["uid"]]
        source["url"] = ctx.url(component, "http")
        if component == "alertmanager":
            source["jsonData"]["handleGrafanaManagedAlerts"] = ctx.settings.alerting.grafana_alerts != "grafana"
        kept.append(prune_references(source, gone))
    return kept


def file_references(env: dict[str, str]) -> dict[str, str]:
    """`GF_<KEY>__FILE=/path` (the Docker image's run.sh reads the file into `GF_<KEY>`) as the
    Grafana binary understands it: `GF_<KEY>=$__file{/path}`, which Grafana expands after applying
    the environment. The secret stays in its 0600 file, never in the environment or an argv."""
    changed = {}
    for key, value in env.items():
        if key.startswith("GF_") and key.endswith("__FILE"):
            changed[key.removesuffix("__FILE")] = f"$__file{{{Path(value).absolute()}}}"
        else:
            changed[key] = value
    return changed


# Where distribution packages put Grafana's home (conf/defaults.ini, public/).
PACKAGED_HOME = Path("/usr/share/grafana")


class Grafana(Component):
    name = "grafana"
    title = "Grafana"
    binary = BinarySpec(
        (("grafana", ("server",)), ("grafana-server", ())),
        "--version",
        "install Grafana from https://grafana.com/grafana/download (the standalone Linux binaries)",
    )
    has_shell = True
    has_curl = True
    ports = (PortSpec("http", 3000, "port"),)
    readiness = Probe("http", "/api/health")
    metrics = Probe("http", "/metrics")
    state = {"data": "/var/lib/grafana"}
    endpoints = (EndpointSpec("http", "Grafana", 0),)
    provisioned = True
    admin_password = GRAFANA_ADMIN_PASSWORD

    def ready_answer(self, body: bytes) -> ReadyAnswer:
        # /api/health answers 200 before the database is usable on some versions; check the field.
        try:
            health: dict[str, Any] = json.loads(body)
        except ValueError:
            return ReadyAnswer(False, "answer is not JSON")
        if health.get("database") != "ok":
            return ReadyAnswer(False, f"database {health.get('database', 'unknown')}")
        return ReadyAnswer(True, "ok", health.get("version"))

    def secrets(self, ctx: RenderContext) -> list[SecretMount]:
        return [admin_password_secret()]

    def configs(self, ctx: RenderContext) -> list[ConfigFile]:
        document = {"apiVersion": 1, "datasources": datasources(ctx)}
        if not document["datasources"]:
            return []
        return [
            ConfigFile(
                "grafana-datasources",
                f"{PROVISIONING_DIR}/datasources/stack.yaml",
                self.with_overrides(ctx, document),
            )
        ]

    def stored_secrets(self) -> dict[str, str]:
        return {ADMIN_PASSWORD_SECRET: GRAFANA_ADMIN_PASSWORD}

    def environment(self, ctx: RenderContext) -> dict[str, str]:
        settings = ctx.settings.components.grafana
        env = {"GF_SECURITY_ADMIN_USER": settings.admin_user}
        from stack.components.proxy import public_url  # the registry imports this module

        url = public_url(ctx.settings)
        if url:
            # Behind the TLS proxy: links and redirects use the public name; cookies only over HTTPS.
            env["GF_SERVER_ROOT_URL"] = url
            env["GF_SECURITY_COOKIE_SECURE"] = "true"
        elif settings.port is not None:
            env["GF_SERVER_ROOT_URL"] = http_url(shown_host(ctx.settings.bind_address), settings.port, "/")
        return env

    def adapt_process(self, process: LocalProcess, address: Address) -> None:
        process.env = file_references(process.env)
        host, _, port = address("http").rpartition(":")
        data = process.cwd / "data"
        process.env.update(
            {
                "GF_SERVER_HTTP_ADDR": host,
                "GF_SERVER_HTTP_PORT": port,
                "GF_PATHS_DATA": str(data),
                "GF_PATHS_LOGS": str(process.cwd / "logs"),
                "GF_PATHS_PLUGINS": str(data / "plugins"),
            }
        )
        process.dirs.append(process.cwd / "logs")
        # Grafana finds its home beside a tarball's bin/; distribution packages put it elsewhere.
        exe = Path(process.argv[0])
        home_found = (exe.parent.parent / "conf" / "defaults.ini").exists()
        if not home_found and (PACKAGED_HOME / "conf" / "defaults.ini").exists():
            process.argv.append(f"--homepath={PACKAGED_HOME}")
