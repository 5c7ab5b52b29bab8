"""The TLS proxy on the real test engine (tests/support/engine.py): Debian's Caddy in an image laid out as the
official one (tests/support/images.py `caddy_image`), in front of Grafana's STAND-IN (no Grafana binary
here), beside the real Prometheus and Alertmanager; Loki, Tempo and the Collector are disabled.

What only the Docker path can show: the certificate and key reach Caddy as compose secrets from
`docker compose`'s environment, the image's own healthcheck says it is ready, and the published port
serves Grafana over HTTPS with the user's certificate. The proxy listens on 127.0.0.1 here
(server.listen_address), as the tests reach containers only there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stack.net.ports import free_port
from tests.support.engine import Engine
from tests.support.enginestack import prometheus_and_alertmanager, running_stack
from tests.support.images import caddy_image, grafana_standin_image
from tests.support.tls import HOSTNAME, TLS, https_get

pytestmark = pytest.mark.docker


def test_up_with_the_tls_proxy_serves_the_grafana_standin_over_https(engine: Engine, tmp_path: Path) -> None:
    https = free_port()
    components = prometheus_and_alertmanager(engine, alertmanager_port=free_port())
    components["grafana"] = {"image": grafana_standin_image(engine), "port": free_port()}
    components["proxy"] = {"image": caddy_image(engine), "port": https, "http_port": None}
    with running_stack(engine, tmp_path, components, kind="proxy") as stack:
        settings = stack.settings_file.read_text()
        stack.settings_file.write_text(
            "profile: server\n"
            "server:\n"
            f"  hostname: {HOSTNAME}\n"
            "  listen_address: 127.0.0.1\n"
            f"  tls: {{mode: files, cert_file: {TLS / 'cert.pem'}, key_file: {TLS / 'key.pem'}}}\n" + settings
        )
        up = stack.stack("up", "--timeout", "120")
        assert up.exit_code == 0, up.output
        assert f"https://{HOSTNAME}:{https}/" in up.output
        proxy = stack.containers()["proxy"]["State"]
        assert proxy["Health"]["Status"] == "healthy", proxy
        status, headers, _ = https_get(https, "/api/health")
        assert status == 200
        assert headers["strict-transport-security"] == "max-age=31536000"
        # Grafana answers /metrics without authentication: never through the public proxy.
        assert https_get(https, "/metrics")[0] == 404
