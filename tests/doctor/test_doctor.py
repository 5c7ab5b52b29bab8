"""`stack doctor` finds each problem on crafted settings and stacks; the defaults have no high finding."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from stack.doctor import Report, Severity, check_stack, diagnose, load_for_doctor
from stack.doctor.live_checks import parse_df
from stack.paths import Paths
from stack.runtime.base import HttpReply, ServiceState
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore
from stack.settings import Settings, parse_settings
from stack.tools import ToolResult
from tests.conftest import invoke
from tests.support import DATA
from tests.support.realbin import prometheus

TLS = DATA / "tls"


def _ids(report: Report, severity: Severity | None = None) -> set[str]:
    return {f.id for f in report.findings if severity is None or f.severity is severity}


def test_defaults_have_no_high_finding(paths: Paths) -> None:
    report = diagnose(paths)
    assert report.high == []
    # What the defaults do get: medium reminders, each with a fix.
    assert _ids(report) == {"alerts-no-receiver", "no-recent-backup"}
    assert all(f.fix for f in report.findings)


def test_server_profile_defaults_have_no_high_finding(paths: Paths) -> None:
    paths.settings_file.write_text("profile: server\nserver:\n  hostname: grafana.example.com\n")
    assert diagnose(paths).high == []


INSECURE = """\
bind_address: 0.0.0.0
server:
  allow_plain_http: true
components:
  grafana:
    image: grafana/grafana:latest
  loki:
    image: grafana/loki:3.6.0
  prometheus:
    port: 9090
"""


def test_crafted_insecure_settings_find_each_issue(paths: Paths) -> None:
    paths.settings_file.write_text(INSECURE)
    SecretStore.for_paths(paths).put(GRAFANA_ADMIN_PASSWORD, "admin")
    backups = paths.backups_dir
    backups.mkdir()
    old = backups / "observability-20250101T000000Z.tar.gz"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 30 * 86400,) * 2)
    report = diagnose(paths, backup_days=7)
    high = _ids(report, Severity.HIGH)
    assert high == {"plain-http", "api-exposed", "weak-admin-password"}
    assert {f.component for f in report.findings if f.id == "api-exposed"} == {
        "prometheus",
        "loki",
        "tempo",
        "alertmanager",
    }
    assert _ids(report, Severity.MEDIUM) == {
        "image-not-pinned",
        "otlp-exposed",
        "no-recent-backup",
        "alerts-no-receiver",
    }
    assert _ids(report, Severity.LOW) == {"pin-behind"}
    pinned = next(f for f in report.findings if f.id == "image-not-pinned")
    assert pinned.detail.endswith("stack.yaml:6: 'grafana/grafana:latest' uses 'latest'; pin a version")
    backup = next(f for f in report.findings if f.id == "no-recent-backup")
    assert backup.title == f"the newest backup is 30 days old ({old.name})"
    assert "plain-http" in {f.id for f in report.findings}
    assert "allowed by server.allow_plain_http" in next(f.title for f in report.findings if f.id == "plain-http")


def test_admin_api_on_loopback_and_alertmanager_off(paths: Paths) -> None:
    paths.settings_file.write_text("components:\n  prometheus: {port: 9090}\n  alertmanager: {enabled: false}\n")
    report = diagnose(paths)
    assert _ids(report, Severity.MEDIUM) >= {"admin-api-published", "alerts-no-receiver"}
    assert report.high == []


def test_secret_readable_by_others(paths: Paths) -> None:
    store = SecretStore.for_paths(paths)
    store.put(GRAFANA_ADMIN_PASSWORD, "x" * 40)
    store.path(GRAFANA_ADMIN_PASSWORD).chmod(0o644)
    finding = next(f for f in diagnose(paths).findings if f.id == "secret-readable")
    assert finding.severity is Severity.HIGH
    assert finding.fix == f"run: chmod 600 {store.path(GRAFANA_ADMIN_PASSWORD)}"


def test_tls_files_missing_readable_or_expiring(paths: Paths, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "3", "-subj", "/CN=g.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    key.chmod(0o644)
    base = "profile: server\nserver:\n  hostname: g.test\n  tls: {mode: files, cert_file: %s, key_file: %s}\n"
    paths.settings_file.write_text(base % (cert, key))
    report = diagnose(paths)
    assert {"tls-key-readable", "tls-cert-expiring"} <= _ids(report)
    expiring = next(f for f in report.findings if f.id == "tls-cert-expiring")
    assert expiring.severity is Severity.HIGH and "expires in 3 days" in expiring.title
    paths.settings_file.write_text(base % (tmp_path / "gone.pem", key))
    assert "tls-file-missing" in _ids(diagnose(paths))
    paths.settings_file.write_text(base % (TLS / "cert.pem", TLS / "key.pem"))
    (TLS / "key.pem").chmod(0o600)
    assert not {"tls-file-missing", "tls-key-readable", "tls-cert-expiring"} & _ids(diagnose(paths))


def test_unpinned_image_is_a_finding_not_an_error(paths: Paths) -> None:
    paths.settings_file.write_text("components:\n  tempo:\n    image: grafana/tempo\n")
    settings, findings = load_for_doctor(paths)
    assert settings.component("tempo").image == Settings().component("tempo").image
    assert [(f.id, f.component) for f in findings] == [("image-not-pinned", "tempo")]


# --- the running stack, through the Runtime interface ----------------------------------------


class _FakeGrafana(http.server.BaseHTTPRequestHandler):
    """Grafana's documented answers for /api/org and /api/user: 401 without valid basic auth."""

    anonymous = False
    accounts: dict[str, str] = {}

    def do_GET(self) -> None:
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if self.accounts.get(name) == password:
                user = name
        if user is None and not self.anonymous:
            self._send(401, {"message": "Unauthorized"})
        elif self.path == "/api/org":
            self._send(200, {"id": 1, "name": "Main Org."})
        elif self.path == "/api/user":
            self._send(200, {"login": user or "anonymous"})
        else:
            self._send(404, {"message": "Not found"})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _fake_grafana(*, anonymous: bool, accounts: dict[str, str]) -> Iterator[str]:
    handler = type("Grafana", (_FakeGrafana,), {"anonymous": anonymous, "accounts": accounts})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


class StandInRuntime:
    """Routes the Runtime calls the doctor makes to real local servers (Prometheus, fake Grafana)."""

    name = "stand-in"

    def __init__(self, urls: dict[str, str], states: list[ServiceState], df: str) -> None:
        self.urls, self.states, self.df = urls, states, df

    def check(self) -> None:
        pass

    def ps(self) -> list[ServiceState]:
        return self.states

    def http(
        self, service: str, port: str, path: str, *, headers: Mapping[str, str] | None = None, **_: Any
    ) -> HttpReply:
        if service not in self.urls:
            raise ConnectionError(f"{service} does not answer")
        reply = requests.get(self.urls[service] + path, headers=dict(headers or {}), timeout=5)
        return HttpReply(reply.status_code, reply.content, dict(reply.headers))

    def exec(self, service: str, argv: list[str], *, timeout: float = 60) -> ToolResult:
        return ToolResult(tuple(argv), 0, self.df, "")


DF_FULL = (
    "Filesystem     1024-blocks      Used Available Capacity Mounted on\n"
    "/dev/sda1 1000000 930000 70000 93% /prometheus\n"
)


@pytest.fixture
def real_prometheus(tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n  - job_name: prometheus\n    static_configs: [{targets: ['127.0.0.1:PORT']}]\n"
    )
    # The scrape target is Prometheus itself: fix the port once it is known.
    with prometheus(config, tmp_path / "data") as server:
        config.write_text(config.read_text().replace("PORT", str(server.port)))
        requests.post(server.url + "/-/reload", timeout=5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            query = {"query": "process_resident_memory_bytes"}
            result = requests.get(server.url + "/api/v1/query", params=query, timeout=5).json()["data"]["result"]
            if result:
                break
            time.sleep(0.2)
        yield server.url


def test_running_stack_findings(paths: Paths, real_prometheus: str) -> None:
    settings = parse_settings({"components": {"prometheus": {"memory": "16M"}, "grafana": {"admin_user": "ops"}}})
    states = [
        ServiceState("prometheus", "running", image="docker.io/prom/prometheus:v3.14.0"),
        ServiceState("grafana", "running", image="grafana/grafana:13.1.6"),
        ServiceState("loki", "running", image="grafana/loki:latest"),
        ServiceState("tempo", "exited", exit_code=137, oom_killed=True, image="grafana/tempo:2.10.8"),
    ]
    SecretStore.for_paths(paths).put(GRAFANA_ADMIN_PASSWORD, "a-long-generated-password-0123456789")
    with _fake_grafana(anonymous=True, accounts={"admin": "admin"}) as grafana:
        runtime = StandInRuntime({"prometheus": real_prometheus, "grafana": grafana}, states, DF_FULL)
        report = check_stack(settings, paths, runtime, Report())  # type: ignore[arg-type]
    by_id = {f.id: f for f in report.findings}
    assert {"anonymous-access", "default-admin-password", "oom-killed", "volume-near-full"} <= _ids(
        report, Severity.HIGH
    )
    assert by_id["memory-near-limit"].component == "prometheus"
    assert by_id["memory-near-limit"].severity is Severity.HIGH  # a real Prometheus needs far more than 16M
    assert by_id["version-behind"].title == "grafana runs grafana/grafana:13.1.6, settings pin grafana/grafana:13.2.0"
    assert by_id["image-not-pinned"].component == "loki"
    # Prometheus has no Alertmanager configured: alerts would go nowhere.
    assert by_id["alerts-no-receiver"].severity is Severity.MEDIUM
    assert "93% full" in by_id["volume-near-full"].title
    assert report.skipped == {}
    assert "prometheus" not in {f.component for f in report.findings if f.id.startswith("version")}


def test_running_stack_healthy_grafana(paths: Paths) -> None:
    password = "a-long-generated-password-0123456789"
    SecretStore.for_paths(paths).put(GRAFANA_ADMIN_PASSWORD, password)
    settings = Settings()
    with _fake_grafana(anonymous=False, accounts={"admin": password}) as grafana:
        runtime = StandInRuntime({"grafana": grafana}, [ServiceState("grafana", "running")], "")
        report = check_stack(settings, paths, runtime, Report())  # type: ignore[arg-type]
    assert report.findings == []
    # Prometheus does not answer here: its checks are listed as skipped, not passed.
    assert set(report.skipped) == {"memory", "alertmanager live"}
    with _fake_grafana(anonymous=False, accounts={"admin": "something-else-entirely-long"}) as grafana:
        runtime = StandInRuntime({"grafana": grafana}, [], "")
        report = check_stack(settings, paths, runtime, Report())  # type: ignore[arg-type]
    assert _ids(report) == {"admin-password-mismatch"}


def test_parse_df() -> None:
    assert parse_df(DF_FULL) == (930000, 1000000)
    assert parse_df("garbage") is None


# --- the command -----------------------------------------------------------------------------


def test_cli_exit_codes_and_json(project_dir: Path) -> None:
    result = invoke("doctor", "--settings-only")
    assert result.exit_code == 0, result.output
    assert "0 high, 2 medium, 0 low." in result.stdout
    (project_dir / "stack.yaml").write_text(INSECURE)
    result = invoke("doctor", "--settings-only", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["counts"]["high"] == 5
    assert document["findings"][0]["severity"] == "high"
    assert set(document["findings"][0]) == {"id", "severity", "title", "fix", "component", "detail"}
    result = invoke("doctor", "--settings-only", "--skip", "plain-http", "--skip", "api-exposed")
    assert result.exit_code == 0
    assert "HIGH" not in result.stdout


def test_cli_without_a_reachable_stack_checks_the_settings(project_dir: Path) -> None:
    result = invoke("doctor")
    assert result.exit_code == 0, result.output
    assert "Skipped running stack:" in result.stdout


def test_cli_settings_errors_stay_errors(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text("components:\n  grafana: {prot: 1}\n")
    result = invoke("doctor")
    assert result.exit_code == 2
    assert result.stderr == "Error: stack.yaml:2: components.grafana.prot: unknown key (hint: did you mean 'port'?)\n"


def test_expiry_is_read_from_the_certificate() -> None:
    from stack.doctor.certs import certificate_expiry

    expiry = certificate_expiry(TLS / "cert.pem")
    assert expiry is not None and expiry > datetime.now(UTC)
    # The same date openssl reads, down to the second.
    enddate = (
        subprocess.run(
            ["openssl", "x509", "-enddate", "-noout", "-in", str(TLS / "cert.pem")],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .removeprefix("notAfter=")
    )
    assert expiry == datetime.strptime(enddate, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)


def test_expiry_of_a_served_certificate_read_from_its_der_bytes() -> None:
    import ssl

    from stack.doctor.certs import certificate_expiry, not_after

    der = ssl.PEM_cert_to_DER_cert((TLS / "cert.pem").read_text())
    assert not_after(None, der) == certificate_expiry(TLS / "cert.pem")
    assert not_after(None, b"not a certificate") is None


def test_expiry_of_an_unreadable_file_is_unknown(tmp_path: Path) -> None:
    from stack.doctor.certs import certificate_expiry

    (tmp_path / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    assert certificate_expiry(tmp_path / "cert.pem") is None
    assert certificate_expiry(tmp_path / "missing.pem") is None


def test_alert_receivers_and_their_secrets(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STACK_TEST_DOCTOR_TOKEN", raising=False)
    paths.settings_file.write_text(
        "alerting:\n  receivers:\n    hook:\n      webhook:\n        url: http://hooks.internal:5001/alerts\n"
        "        bearer_token: {env: STACK_TEST_DOCTOR_TOKEN}\n  page: hook\n  ticket: hook\n"
    )
    report = diagnose(paths)
    assert "alerts-no-receiver" not in _ids(report)
    missing = next(f for f in report.findings if f.id == "alert-secret-missing")
    assert "STACK_TEST_DOCTOR_TOKEN is not set" in missing.title
    monkeypatch.setenv("STACK_TEST_DOCTOR_TOKEN", "t")
    assert "alert-secret-missing" not in _ids(diagnose(paths))


def test_ports_answering_from_outside_the_server(paths: Paths) -> None:
    from tests.support.httpservers import http_server

    with http_server(lambda m, p, b: (200, b"ready")) as url:
        port = int(url.rsplit(":", 1)[1])
        paths.settings_file.write_text(f"components:\n  loki: {{port: {port}}}\n  grafana: {{port: null}}\n")
        report = diagnose(paths, outside_host="127.0.0.1")
    found = [f for f in report.findings if f.id == "reachable-from-outside"]
    loki = next(f for f in found if f.component == "loki")
    assert loki.severity is Severity.HIGH
    assert loki.title == f"127.0.0.1:{port} answers from this machine: Loki, which has no authentication"
    assert "reachable from here (127.0.0.1)" in report.checked


def test_public_tls_as_a_browser_sees_it(paths: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stack.net.ports import free_port
    from stack.render import render_project
    from tests.settings.test_server_profile import _caddy, _caddy_config

    ports = {"http": free_port(), "https": free_port(), "health": free_port()}
    (TLS / "key.pem").chmod(0o600)
    paths.settings_file.write_text(
        "profile: server\n"
        "server:\n  hostname: grafana.test\n  listen_address: 127.0.0.1\n"
        f"  tls: {{mode: files, cert_file: {TLS / 'cert.pem'}, key_file: {TLS / 'key.pem'}}}\n"
        f"components:\n  proxy: {{port: {ports['https']}, http_port: {ports['http']}}}\n"
    )
    settings, _ = load_for_doctor(paths)
    config = _caddy_config(render_project(settings).configs["proxy"][0].content, ports, free_port())
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with _caddy(config, tmp_path, ports["health"]):
        untrusted = next(f for f in diagnose(paths, outside_host="127.0.0.1").findings if f.id == "tls-untrusted")
        assert untrusted.severity is Severity.HIGH
        assert untrusted.title.startswith(
            f"browsers reject the certificate of grafana.test at 127.0.0.1:{ports['https']}"
        )
        # Trusted (as if issued by a public CA): nothing to report, the certificate is valid for a century.
        monkeypatch.setenv("SSL_CERT_FILE", str(TLS / "cert.pem"))
        ids = _ids(diagnose(paths, outside_host="127.0.0.1"))
        assert not ids & {"tls-untrusted", "tls-cert-expiring", "proxy-unreachable"}
    gone = next(f for f in diagnose(paths, outside_host="127.0.0.1").findings if f.id == "proxy-unreachable")
    assert gone.severity is Severity.MEDIUM
