"""IPv6 bind addresses end to end on the process runtime, with Debian's real Prometheus and
Alertmanager: `::1`, `::` and a global address of this machine. Each becomes ready (the probes
reach the address the component listens on), Prometheus finds its Alertmanager, and `status`
prints the URL with its brackets."""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from pathlib import Path

import psutil
import pytest
import yaml

from stack.net.ports import free_port
from tests.conftest import invoke
from tests.runtime.process.test_process_runtime import _settings_text, open_runtime, processes_under
from tests.support.realbin import binary


def _global_ipv6() -> str | None:
    """A global-scope IPv6 address of this machine (none on many CI hosts: that case is skipped)."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            text = address.address.split("%")[0]
            if address.family == socket.AF_INET6:
                parsed = ipaddress.IPv6Address(text)
                if not (parsed.is_loopback or parsed.is_link_local or parsed.is_multicast):
                    return text
    return None


@pytest.mark.parametrize("bind", ["::1", "::", "global"])
def test_ipv6_bind_address_on_the_process_runtime(project_dir: Path, bind: str) -> None:
    binary("prometheus")
    binary("prometheus-alertmanager", "alertmanager")
    if bind == "global":
        found = _global_ipv6()
        if found is None:
            pytest.skip("this machine has no global IPv6 address")
        bind = found
    port = free_port()
    data = yaml.safe_load(_settings_text(port, {"bind_address": bind}))
    (project_dir / "stack.yaml").write_text(yaml.safe_dump(data))
    try:
        up = invoke("up", "--timeout", "60")
        assert up.exit_code == 0, up.output
        status = invoke("status", "--json")
        assert status.exit_code == 0, status.output
        urls = {row["name"]: row["url"] for row in json.loads(status.stdout)["components"]}
        shown = "localhost" if bind in ("::1", "::") else f"[{bind}]"
        assert urls["alertmanager"] == f"http://{shown}:{port}"
        # The table keeps the brackets (rich markup took `[fd00::2]` for a tag and printed `http://:9093`).
        table = invoke("status")
        assert f"http://{shown}:{port}" in table.stdout
        # Prometheus reaches its Alertmanager on the address it listens on: it is discovered there,
        # and scraped there successfully (127.0.0.1 does not reach a port bound to [::1] only).
        runtime = open_runtime(project_dir)
        reached = "[::1]" if bind in ("::1", "::") else f"[{bind}]"
        deadline = time.monotonic() + 30
        while True:
            reply = runtime.http("prometheus", "http", "/api/v1/alertmanagers")
            active = [a["url"] for a in json.loads(reply.body)["data"]["activeAlertmanagers"]]
            targets = json.loads(runtime.http("prometheus", "http", "/api/v1/targets").body)["data"]["activeTargets"]
            health = {t["labels"]["job"]: t["health"] for t in targets}
            if (active and health.get("alertmanager") == "up") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert active == [f"http://{reached}:{port}/api/v2/alerts"], reply.text()
        assert health.get("alertmanager") == "up", targets
    finally:
        invoke("down", "--volumes", "--yes", "--timeout", "5")
    assert processes_under(project_dir) == []
