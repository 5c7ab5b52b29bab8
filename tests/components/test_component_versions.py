"""`validate` catches what `up` would fail on when the version that will run is older than a field
the settings render needs: Debian's Alertmanager 0.25 (real binary) and a webhook URL kept as a secret."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.net.ports import free_port
from tests.conftest import invoke
from tests.runtime.process.test_process_runtime import _settings_text, processes_under
from tests.support.realbin import binary

HOOK_SECRET = {"receivers": {"hook": {"webhook": {"url": {"file": "hook-url.txt"}}}}, "page": "hook"}


def _write(project: Path, alerting: dict[str, Any], **components: dict[str, Any]) -> None:
    (project / "hook-url.txt").write_text("http://127.0.0.1:9/hook?token=s3cret\n")
    (project / "hook-url.txt").chmod(0o600)
    data = yaml.safe_load(_settings_text(free_port(), {"alerting": alerting}))
    for name, block in components.items():
        data["components"][name] = {**data["components"][name], **block}
    (project / "stack.yaml").write_text(yaml.safe_dump(data))


def _versions_check(result_stdout: str) -> dict[str, str]:
    return next(check for check in json.loads(result_stdout) if check["name"].startswith("versions"))


def test_process_runtime_with_alertmanager_0_25_refuses_url_file(project_dir: Path) -> None:
    found = binary("prometheus-alertmanager", "alertmanager")
    if "version 0.25." not in subprocess.run([found, "--version"], capture_output=True, text=True).stdout:
        pytest.skip(f"{found} is not Debian 12's Alertmanager 0.25")
    _write(project_dir, HOOK_SECRET)
    result = invoke("validate", "--runtime", "process", "--json")
    check = _versions_check(result.stdout)
    assert result.exit_code == 1
    assert check["status"] == "failed"
    assert check["detail"].startswith(
        "alerting.receivers.hook.webhook.url: needs alertmanager >= 0.26.0 for webhook url_file"
    )
    assert "the binary is 0.25" in check["detail"]
    # `up` refuses the same before anything starts, in one line, exit 2.
    result = invoke("up")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith("Error: stack.yaml: alerting.receivers.hook.webhook.url: needs")
    assert "s3cret" not in result.output
    assert processes_under(project_dir) == []


def test_a_plain_webhook_url_passes_on_alertmanager_0_25(project_dir: Path) -> None:
    binary("prometheus-alertmanager", "alertmanager")
    _write(project_dir, {"receivers": {"hook": {"webhook": {"url": "http://127.0.0.1:9/hook"}}}, "page": "hook"})
    result = invoke("validate", "--runtime", "process", "--json")
    assert _versions_check(result.stdout)["status"] == "passed"


def test_an_image_pinned_before_url_file_fails_validate_on_docker(project_dir: Path) -> None:
    _write(project_dir, HOOK_SECRET, alertmanager={"image": "prom/alertmanager:v0.25.0"})
    result = invoke("validate", "--runtime", "docker", "--json")
    check = _versions_check(result.stdout)
    assert result.exit_code == 1
    assert check == {
        "name": "versions (docker)",
        "status": "failed",
        "detail": "alerting.receivers.hook.webhook.url: needs alertmanager >= 0.26.0 for webhook url_file "
        "(a webhook URL given as a secret); the image tag is 0.25.0 (hint: use a newer binary "
        "(process.bin_dir) or image, or the plain form of the setting)",
    }


def test_the_pinned_images_read_every_setting(project_dir: Path) -> None:
    _write(project_dir, HOOK_SECRET)
    result = invoke("validate", "--runtime", "docker", "--json")
    assert _versions_check(result.stdout)["status"] == "passed"
