from __future__ import annotations

from pathlib import Path

import requests

from tests.support.realbin import alertmanager, prometheus


def test_real_prometheus_and_alertmanager_start(tmp_path: Path) -> None:
    prom_config = tmp_path / "prometheus.yml"
    prom_config.write_text("global: {scrape_interval: 15s}\n")
    am_config = tmp_path / "alertmanager.yml"
    am_config.write_text("route: {receiver: default}\nreceivers: [{name: default}]\n")
    with prometheus(prom_config, tmp_path / "prom") as prom, alertmanager(am_config, tmp_path / "am") as am:
        assert requests.get(f"{prom.url}/api/v1/status/buildinfo", timeout=5).json()["status"] == "success"
        assert requests.get(f"{am.url}/api/v2/status", timeout=5).status_code == 200
