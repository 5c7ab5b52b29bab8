"""The server profile, the TLS proxy (Caddy) and the plain-HTTP rule of the settings."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from stack.errors import StackError
from stack.net.ports import free_port
from stack.paths import Paths
from stack.render import render_project
from stack.secrets import compose_environment
from stack.settings import COMPONENT_NAMES, Settings, load_settings, parse_settings
from stack.units import parse_size
from stack.validate import compose_schema_errors
from stack.yamlio import loads
from tests.conftest import invoke
from tests.support import DATA
from tests.support.realbin import binary
from tests.support.tls import TLS, https_get

SERVER = {"profile": "server", "server": {"hostname": "grafana.example.com"}}


def _error(text: str) -> str:
    loaded = loads(text)
    with pytest.raises(StackError) as caught:
        parse_settings(loaded.data, loaded=loaded, source=Path("stack.yaml"))
    return "Error: " + caught.value.one_line()


def test_server_profile_raises_limits_and_turns_the_proxy_on() -> None:
    local, server = Settings(), parse_settings(SERVER)
    assert "proxy" not in local.enabled() and local.enabled() == list(COMPONENT_NAMES)
    assert server.enabled() == [*COMPONENT_NAMES, "proxy"]
    for name in COMPONENT_NAMES:
        assert parse_size(server.component(name).memory) > parse_size(local.component(name).memory), name
    # What the user wrote still wins, under either spelling of the collector's name.
    mine = parse_settings({**SERVER, "components": {"prometheus": {"memory": "3G"}, "otel_collector": {}}})
    assert mine.component("prometheus").memory == "3G"
    assert mine.component("otel-collector").memory == "512M"
    off = parse_settings({**SERVER, "components": {"proxy": {"enabled": False}}})
    assert "proxy" not in off.enabled()


ERRORS = {
    "grafana on 0.0.0.0 without TLS": (
        "bind_address: 0.0.0.0\n",
        "Error: stack.yaml:1: bind_address: 0.0.0.0 publishes Grafana (port 3000) without TLS (hint: keep "
        "bind_address 127.0.0.1 and serve Grafana through the TLS proxy (profile: server, server.hostname), or set "
        "server.allow_plain_http: true if a TLS terminator of your own sits in front)",
    ),
    "server profile without hostname": (
        "project: x\nprofile: server\n",
        "Error: stack.yaml:2: profile: the TLS proxy needs server.hostname (the name users open Grafana at) "
        "(hint: set server.hostname: grafana.example.com)",
    ),
    "automatic certificate for an IP": (
        "profile: server\nserver:\n  hostname: 203.0.113.7\n",
        "Error: stack.yaml:2: server.tls.mode: automatic certificates need a DNS name, not the address "
        "203.0.113.7 (hint: use tls.mode: internal (Caddy's own CA) or files (your certificate), or a DNS name)",
    ),
    "files without a key": (
        "profile: server\nserver:\n  hostname: g.example.com\n  tls:\n    mode: files\n    cert_file: c.pem\n",
        "Error: stack.yaml:4: server.tls.key_file: tls.mode files needs tls.key_file "
        "(hint: give the path of the PEM file)",
    ),
    "bad hostname": (
        "server:\n  hostname: 'grafana example'\n",
        "Error: stack.yaml:2: server.hostname: 'grafana example' is not a host name (e.g. grafana.example.com) "
        "or an IP address (hint: use the public DNS name of the server)",
    ),
    "proxy without grafana": (
        "profile: server\nserver: {hostname: g.example.com}\ncomponents:\n  grafana: {enabled: false}\n",
        "Error: stack.yaml:1: profile: the TLS proxy fronts Grafana, which is disabled "
        "(hint: enable grafana or disable the proxy)",
    ),
    "typo in server": (
        "server:\n  hostnme: g.example.com\n",
        "Error: stack.yaml:2: server.hostnme: unknown key (hint: did you mean 'hostname'?)",
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_settings_errors(case: str) -> None:
    text, expected = ERRORS[case]
    assert _error(text) == expected


def test_plain_http_is_accepted_when_explicit_or_unpublished() -> None:
    assert parse_settings({"bind_address": "0.0.0.0", "server": {"allow_plain_http": True}})
    assert parse_settings({"bind_address": "0.0.0.0", "components": {"grafana": {"port": None}}})
    assert parse_settings({"bind_address": "127.0.0.2"})
    # The doctor reads insecure settings too, to report on them.
    assert parse_settings({"bind_address": "0.0.0.0"}, security=False).bind_address == "0.0.0.0"


def test_cli_refuses_insecure_settings_with_one_line(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text("bind_address: 0.0.0.0\n")
    result = invoke("render")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: stack.yaml:1: bind_address: 0.0.0.0 publishes Grafana (port 3000)")
    assert not (project_dir / ".stack").exists()


def _document(settings: Settings) -> dict[str, Any]:
    return yaml.safe_load(render_project(settings).text())


@pytest.mark.parametrize("mode", ["auto", "files", "internal"])
def test_rendered_proxy(mode: str) -> None:
    server: dict[str, Any] = {"hostname": "grafana.example.com", "tls": {"mode": mode, "email": "ops@example.com"}}
    if mode == "files":
        server["tls"] |= {"cert_file": str(TLS / "cert.pem"), "key_file": str(TLS / "key.pem")}
    settings = parse_settings({"profile": "server", "server": server})
    project = render_project(settings)
    document = yaml.safe_load(project.text())
    assert compose_schema_errors(document) == []
    services = document["services"]
    proxy = services["proxy"]
    assert proxy["ports"] == [
        {"target": 443, "published": "443", "host_ip": "0.0.0.0", "protocol": "tcp"},
        {"target": 80, "published": "80", "host_ip": "0.0.0.0", "protocol": "tcp"},
    ]
    # Everything else stays on the loopback address.
    for name in COMPONENT_NAMES:
        for port in services[name].get("ports", []):
            assert port["host_ip"] == "127.0.0.1", name
    assert proxy["volumes"] == ["proxy-data:/data", "proxy-config:/config"]
    assert proxy["depends_on"] == {"grafana": {"condition": "service_started"}}
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SERVER_ROOT_URL"] == "https://grafana.example.com/"
    assert grafana["GF_SECURITY_COOKIE_SECURE"] == "true"
    config = json.loads(project.configs["proxy"][0].content)
    assert config["admin"] == {"disabled": True}
    # Caddy's metrics: on the internal health listener only, never on the public server.
    health_routes = config["apps"]["http"]["servers"]["health"]["routes"]
    assert {"match": [{"path": ["/metrics"]}], "handle": [{"handler": "metrics"}]} in health_routes
    assert '"handler": "metrics"' not in json.dumps(config["apps"]["http"]["servers"]["grafana"])
    site = config["apps"]["http"]["servers"]["grafana"]
    assert site["metrics"] == {}  # the public server's requests are counted (caddy_http_*)
    assert site["routes"][0]["match"] == [{"host": ["grafana.example.com"]}]
    tls = config["apps"].get("tls", {})
    if mode == "files":
        assert document["secrets"]["proxy_tls_key"] == {"environment": "STACK_PROXY_TLS_KEY"}
        assert {s["source"] for s in proxy["secrets"]} == {"proxy_tls_cert", "proxy_tls_key"}
        assert site["automatic_https"] == {"skip_certificates": ["grafana.example.com"]}
        assert "PRIVATE KEY" not in project.text()
    else:
        assert "secrets" not in proxy
        issuer = tls["automation"]["policies"][0]["issuers"][0]
        assert issuer == (
            {"module": "internal"} if mode == "internal" else {"module": "acme", "email": "ops@example.com"}
        )


def test_no_bind_mount_anywhere_in_a_server_render() -> None:
    document = _document(load_settings(DATA / "stack-full.yaml"))
    for name, service in document["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            # Named volumes, or the Docker host's own system paths (host metrics, container logs):
            # both resolve on the server. Nothing from this machine's project directory.
            assert source in document["volumes"] or source in ("/", "/var/lib/docker/containers"), (name, volume)
    for config in document["configs"].values():
        assert set(config) == {"content"}
    for secret in document["secrets"].values():
        assert set(secret) == {"environment"}


def test_compose_environment_reads_the_tls_files(tmp_path: Path) -> None:
    paths = Paths(settings_file=DATA / "stack-full.yaml", render_dir=tmp_path / "render")
    secrets_home = Paths(settings_file=tmp_path / "stack.yaml", render_dir=tmp_path / "render")
    settings = load_settings(DATA / "stack-full.yaml")
    # Relative paths resolve beside stack.yaml.
    with pytest.raises(StackError, match=r"server.tls.cert_file cannot be read: No such file"):
        compose_environment(settings, secrets_home)
    env = compose_environment(
        parse_settings(
            {
                **SERVER,
                "server": {
                    "hostname": "grafana.test",
                    "tls": {"mode": "files", "cert_file": str(TLS / "cert.pem"), "key_file": str(TLS / "key.pem")},
                },
            }
        ),
        secrets_home,
    )
    assert env["STACK_PROXY_TLS_CERT"] == (TLS / "cert.pem").read_text()
    assert env["STACK_PROXY_TLS_KEY"] == (TLS / "key.pem").read_text()
    assert len(env["STACK_GRAFANA_ADMIN_PASSWORD"]) >= 32
    del paths
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    bad = parse_settings(
        {
            **SERVER,
            "server": {"hostname": "g.test", "tls": {"mode": "files", "cert_file": str(not_pem), "key_file": "k"}},
        }
    )
    with pytest.raises(StackError, match=r"not.pem: server.tls.cert_file is not a PEM file"):
        compose_environment(bad, secrets_home)


def _caddy_config(project_config: str, ports: dict[str, int], upstream: int) -> dict[str, Any]:
    """The rendered config, moved to free ports on 127.0.0.1 and pointed at a local upstream."""
    config = json.loads(project_config)
    http_app = config["apps"]["http"]
    http_app["http_port"], http_app["https_port"] = ports["http"], ports["https"]
    http_app["servers"]["grafana"]["listen"] = [f"127.0.0.1:{ports['https']}"]
    http_app["servers"]["health"]["listen"] = [f"127.0.0.1:{ports['health']}"]
    text = json.dumps(config).replace('"grafana:3000"', f'"127.0.0.1:{upstream}"')
    text = text.replace("/run/secrets/proxy_tls_cert", str(TLS / "cert.pem"))
    return json.loads(text.replace("/run/secrets/proxy_tls_key", str(TLS / "key.pem")))


class _Upstream(http.server.BaseHTTPRequestHandler):
    """Stands in for Grafana: records what reached it."""

    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        _Upstream.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        body = b'{"database":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _http_get(port: int, path: str, host: str) -> tuple[int, dict[str, str]]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    lines = data.partition(b"\r\n\r\n")[0].decode().split("\r\n")
    return int(lines[0].split()[1]), {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}


@contextlib.contextmanager
def _caddy(config: dict[str, Any], tmp_path: Path, health_port: int) -> Iterator[subprocess.Popen[bytes]]:
    exe = binary("caddy")
    path = tmp_path / "caddy.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    log = tmp_path / "caddy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [exe, "run", "--config", str(path)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"caddy exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                if _http_get(health_port, "/healthz", "localhost")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"caddy not ready: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize("mode", ["auto", "files", "internal"])
def test_real_caddy_accepts_the_rendered_config(mode: str, tmp_path: Path) -> None:
    server: dict[str, Any] = {"hostname": "grafana.test", "tls": {"mode": mode}}
    if mode == "files":
        server["tls"] |= {"cert_file": "c", "key_file": "k"}
    project = render_project(parse_settings({"profile": "server", "server": server}))
    ports = {"http": free_port(), "https": free_port(), "health": free_port()}
    config = _caddy_config(project.configs["proxy"][0].content, ports, free_port())
    path = tmp_path / "caddy.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run(
        [binary("caddy"), "validate", "--config", str(path)], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Valid configuration" in done.stdout + done.stderr


def test_real_caddy_serves_grafana_over_tls_and_hides_its_metrics(tmp_path: Path) -> None:
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    _Upstream.seen = []
    server = {"hostname": "grafana.test", "tls": {"mode": "files", "cert_file": "c", "key_file": "k"}}
    project = render_project(parse_settings({"profile": "server", "server": server}))
    ports = {"http": free_port(), "https": free_port(), "health": free_port()}
    config = _caddy_config(project.configs["proxy"][0].content, ports, upstream.server_address[1])
    try:
        with _caddy(config, tmp_path, ports["health"]):
            status, headers, body = https_get(ports["https"], "/api/health")
            assert (status, body) == (200, b'{"database":"ok"}')
            assert headers["strict-transport-security"] == "max-age=31536000"
            assert _Upstream.seen[-1]["x-forwarded-proto"] == "https"
            assert https_get(ports["https"], "/metrics")[0] == 404
            assert [seen["path"] for seen in _Upstream.seen] == ["/api/health"]
            # Caddy's own metrics, where Prometheus scrapes them: the internal health listener.
            scraped = requests.get(f"http://127.0.0.1:{ports['health']}/metrics", timeout=5)
            assert scraped.status_code == 200
            body = scraped.text
            served = {line.split("{")[0].split(" ")[0] for line in body.splitlines() if not line.startswith("#")}
            assert "caddy_http_requests_total" in served and "process_cpu_seconds_total" in served
            assert 'server="grafana"' in body
            status, headers = _http_get(ports["http"], "/login", "grafana.test")
            assert status in (301, 308)
            assert headers["location"].startswith("https://grafana.test")
    finally:
        upstream.shutdown()


def test_credentials_show_the_public_url_behind_the_proxy(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text("profile: server\nserver: {hostname: grafana.example.com}\n")
    result = invoke("credentials", "--json")
    assert json.loads(result.stdout)["url"] == "https://grafana.example.com/"


def test_validate_runs_caddy_on_the_proxy_config(project_dir: Path) -> None:
    binary("caddy")
    (project_dir / "stack.yaml").write_text("profile: server\nserver: {hostname: grafana.example.com}\n")
    result = invoke("validate", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["caddy validate"]["status"] == "passed", checks["caddy validate"]
    # With the proxy's scrape job in it.
    assert checks["promtool check config"]["status"] == "passed", checks["promtool check config"]
    (project_dir / "stack.yaml").write_text(
        "profile: server\nserver: {hostname: grafana.example.com}\n"
        "components:\n  proxy:\n    overrides:\n      apps: {http: {servers: {grafana: {listen: 443}}}}\n"
    )
    result = invoke("validate", "--json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["caddy validate"]["status"] == "failed"
    assert "listen" in checks["caddy validate"]["detail"]


def test_up_lists_the_public_grafana_url_first() -> None:
    from stack.lifecycle import endpoints
    from tests.support.urlruntime import UrlRuntime

    settings = parse_settings(SERVER)
    found = endpoints(settings, UrlRuntime({}))  # type: ignore[arg-type]
    assert found[0].name == "Grafana (TLS)" and found[0].url == "https://grafana.example.com/"
    assert endpoints(Settings(), UrlRuntime({})) == []  # type: ignore[arg-type]
