"""Caddy in front of Grafana: the one component meant to be reached from outside the server.

Rendered as Caddy's native JSON config (not a Caddyfile) so that `overrides:` deep-merge into it
like every other component's config.
"""

from __future__ import annotations

import json
from typing import Any

from stack.components.base import Component, ConfigFile, PortSpec, Probe, RenderContext, SecretMount
from stack.components.process import Address, BinarySpec, LocalProcess
from stack.settings import Settings
from stack.yamlio import deep_merge

CONFIG_PATH = "/etc/caddy/caddy.json"
TLS_CERT_SECRET = "proxy_tls_cert"
TLS_KEY_SECRET = "proxy_tls_key"
TLS_CERT_ENV = "STACK_PROXY_TLS_CERT"
TLS_KEY_ENV = "STACK_PROXY_TLS_KEY"
HEALTH_PORT = 8081
# Caddy's own metrics, served on the internal health listener only (the admin API, Caddy's other
# /metrics, stays disabled): Prometheus reaches it over the compose network, the world never does.
METRICS_PATH = "/metrics"
# Grafana answers /metrics without authentication: never through the public proxy.
BLOCKED_PATHS = ["/metrics", "/metrics/*"]
SECURITY_HEADERS = {
    "Strict-Transport-Security": ["max-age=31536000"],
    "X-Content-Type-Options": ["nosniff"],
    "Referrer-Policy": ["strict-origin-when-cross-origin"],
}


def public_url(settings: Settings) -> str | None:
    """The URL users open Grafana at through the proxy, or None when the proxy is off."""
    proxy = settings.component("proxy")
    if not proxy.enabled or settings.server.hostname is None or proxy.port is None:
        return None
    host = settings.server.hostname
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    suffix = "" if proxy.port == 443 else f":{proxy.port}"
    return f"https://{host}{suffix}/"


def caddy_config(ctx: RenderContext) -> dict[str, Any]:
    """Caddy's JSON config: HTTPS for server.hostname proxied to Grafana; an internal listener for
    readiness and Caddy's own metrics."""
    settings = ctx.settings
    server = settings.server
    hostname = server.hostname or "localhost"
    site_routes: list[dict[str, Any]] = [
        {
            "match": [{"path": BLOCKED_PATHS}],
            "handle": [{"handler": "static_response", "status_code": 404}],
            "terminal": True,
        },
        {
            "handle": [
                {"handler": "headers", "response": {"set": SECURITY_HEADERS, "deferred": True}},
                {"handler": "reverse_proxy", "upstreams": [{"dial": ctx.address("grafana", "http")}]},
            ]
        },
    ]
    https_server: dict[str, Any] = {
        "listen": [":443"],
        # Request counts and latencies of this server (caddy_http_*), served at METRICS_PATH below.
        "metrics": {},
        "routes": [
            {
                "match": [{"host": [hostname]}],
                "handle": [{"handler": "subroute", "routes": site_routes}],
                "terminal": True,
            }
        ],
    }
    tls_app: dict[str, Any] = {}
    tls = server.tls
    if tls.mode == "files":
        tls_app["certificates"] = {
            "load_files": [{"certificate": f"/run/secrets/{TLS_CERT_SECRET}", "key": f"/run/secrets/{TLS_KEY_SECRET}"}]
        }
        # Redirects stay automatic; the certificate is the user's, never requested from a CA.
        https_server["automatic_https"] = {"skip_certificates": [hostname]}
    elif tls.mode == "internal":
        tls_app["automation"] = {"policies": [{"subjects": [hostname], "issuers": [{"module": "internal"}]}]}
    elif tls.email:
        tls_app["automation"] = {
            "policies": [{"subjects": [hostname], "issuers": [{"module": "acme", "email": tls.email}]}]
        }
    proxy = settings.components.proxy
    if proxy.http_port is None:
        https_server.setdefault("automatic_https", {})["disable_redirects"] = True
    apps: dict[str, Any] = {
        "http": {
            "http_port": 80,
            "https_port": 443,
            "servers": {
                "grafana": https_server,
                "health": {
                    "listen": [f":{HEALTH_PORT}"],
                    "routes": [
                        {
                            "match": [{"path": ["/healthz"]}],
                            "handle": [{"handler": "static_response", "status_code": 200, "body": "OK"}],
                        },
                        {
                            "match": [{"path": [METRICS_PATH]}],
                            "handle": [{"handler": "metrics"}],
                        },
                    ],
                    "automatic_https": {"disable": True},
                },
            },
        }
    }
    if tls_app:
        apps["tls"] = tls_app
    # Caddy's local CA (tls.mode internal) would otherwise add its root to the trust store of the
    # machine it runs on (a process-runtime host: a sudo prompt, or a silent change as root).
    apps["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
    # No admin endpoint: nothing can reconfigure the proxy at run time.
    return {"admin": {"disabled": True}, "apps": apps}


class Proxy(Component):
    name = "proxy"
    title = "TLS proxy (Caddy)"
    swarm_refusal = (
        "the TLS proxy does not run on Swarm yet",
        "set components.proxy.enabled: false and terminate TLS in front of the swarm, or use runtime: docker",
    )
    binary = BinarySpec(
        (("caddy", ()),),
        "version",
        "download caddy from https://caddyserver.com/download (binding ports below 1024 needs "
        "`setcap cap_net_bind_service=+ep` on it, or other ports)",
    )
    has_shell = True
    ports = (PortSpec("https", 443, "port"), PortSpec("http", 80, "http_port"), PortSpec("health", HEALTH_PORT))
    readiness = Probe("health", "/healthz")

    def public_urls(self, settings: Settings) -> list[tuple[str, str]]:
        # Behind the TLS proxy (profile: server), the address users open first.
        url = public_url(settings)
        return [("Grafana (TLS)", url)] if url else []

    metrics = Probe("health", METRICS_PATH)
    state = {"data": "/data", "config": "/config"}

    def host_ip(self, settings: Settings) -> str:
        return settings.server.listen_address

    def adapt_process(self, process: LocalProcess, address: Address) -> None:
        # The image points Caddy's storage (certificates, ACME account) at /data and /config.
        process.env.update({"XDG_DATA_HOME": str(process.cwd / "data"), "XDG_CONFIG_HOME": str(process.cwd / "config")})
        ports = {name: int(number) for name, _, number in process.listen}
        for path, content in list(process.files.items()):
            if path.suffix != ".json":
                continue
            config = json.loads(content)
            http = config.get("apps", {}).get("http", {})
            # Redirects and certificates name the ports the world uses: the published ones.
            if "https" in ports:
                http["https_port"] = ports["https"]
            if "http" in ports:
                http["http_port"] = ports["http"]
            process.files[path] = json.dumps(config, indent=2, sort_keys=True) + "\n"

    def configs(self, ctx: RenderContext) -> list[ConfigFile]:
        config = deep_merge(caddy_config(ctx), self.settings(ctx).overrides)
        return [ConfigFile("proxy-config", CONFIG_PATH, json.dumps(config, indent=2, sort_keys=True) + "\n")]

    def secrets(self, ctx: RenderContext) -> list[SecretMount]:
        if ctx.settings.server.tls.mode != "files":
            return []
        # From the environment of `docker compose` (stack.secrets.compose_environment): a `file:` secret
        # would be a bind mount resolved on the server, where the user's files are not.
        return [
            SecretMount(TLS_CERT_SECRET, {"environment": TLS_CERT_ENV}),
            SecretMount(TLS_KEY_SECRET, {"environment": TLS_KEY_ENV}),
        ]
