from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from stack.paths import Paths
from stack.project import render_to_disk
from stack.render import render_project
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore
from stack.settings import COMPONENT_NAMES, Settings, load_settings, parse_settings
from stack.validate import compose_schema_errors
from tests.conftest import SHARED_SCHEMA
from tests.support import DATA, REPO


def _document(settings: Settings) -> dict[str, Any]:
    return yaml.safe_load(render_project(settings).text())


def _shared_schema_errors(document: dict[str, Any]) -> list[str]:
    import jsonschema

    schema = json.loads(SHARED_SCHEMA.read_text())
    return [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(document)]


SETTINGS_CASES = {
    "defaults": Settings(),
    "every setting changed": load_settings(DATA / "stack-full.yaml"),
    "tempo and loki disabled": parse_settings(
        {"components": {"tempo": {"enabled": False}, "loki": {"enabled": False}}}
    ),
    "only prometheus": parse_settings(
        {"components": {n: {"enabled": False} for n in COMPONENT_NAMES if n != "prometheus"}}
    ),
}


@pytest.mark.parametrize("case", list(SETTINGS_CASES))
def test_rendered_compose_matches_the_compose_schema(case: str) -> None:
    document = _document(SETTINGS_CASES[case])
    assert compose_schema_errors(document) == []
    if SHARED_SCHEMA.exists():
        assert _shared_schema_errors(document) == []


def test_bundled_schema_is_the_shared_one() -> None:
    if not SHARED_SCHEMA.exists():
        pytest.skip("../shared/schemas is not beside this checkout")
    bundled = REPO / "stack" / "schemas" / "compose-spec.json"
    assert json.loads(bundled.read_text()) == json.loads(SHARED_SCHEMA.read_text())


def test_default_project_shape() -> None:
    document = _document(Settings())
    services = document["services"]
    assert list(services) == list(COMPONENT_NAMES)
    for name, service in services.items():
        assert service["restart"] == "unless-stopped"
        assert service["deploy"]["resources"]["limits"]["memory"].endswith("M")
        assert ":" in service["image"] and not service["image"].endswith(":latest")
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", name
        # Every config is inline content: the file alone is enough on a remote engine.
        for config in service.get("configs", []):
            assert "content" in document["configs"][config["source"]]
        # State lives in named volumes; the only bind mounts are read-only inputs (Docker's logs).
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in document["volumes"] or (source.startswith("/") and volume.endswith(":ro")), volume
    assert "ports" not in services["prometheus"], "the admin API must never be published"
    # Healthchecks only where the image has a shell.
    assert {n for n, s in services.items() if "healthcheck" in s} == {"prometheus", "grafana", "alertmanager"}
    assert services["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert (
        services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    )
    assert document["secrets"] == {"grafana_admin_password": {"environment": "STACK_GRAFANA_ADMIN_PASSWORD"}}
    assert "--cluster.listen-address=" in services["alertmanager"]["command"]
    # The pinned Prometheus (3.x, from 3.8 on) reads its retention from the config file, not a flag.
    assert not any(flag.startswith("--storage.tsdb.retention") for flag in services["prometheus"]["command"])
    prometheus = yaml.safe_load(render_project(Settings()).configs["prometheus"][0].content)
    assert prometheus["storage"]["tsdb"]["retention"]["time"] == "15d"


def test_disabled_components_vanish_with_everything_pointing_at_them() -> None:
    settings = SETTINGS_CASES["tempo and loki disabled"]
    project = render_project(settings)
    text = project.text()
    assert set(project.compose["services"]) == {"otel-collector", "prometheus", "grafana", "alertmanager"}
    collector = yaml.safe_load(project.configs["otel-collector"][0].content)
    assert set(collector["service"]["pipelines"]) == {"metrics"}
    assert "otlp_grpc/tempo" not in collector["exporters"]
    prometheus = yaml.safe_load(project.configs["prometheus"][0].content)
    assert {job["job_name"] for job in prometheus["scrape_configs"]} == {
        "otel-collector",
        "prometheus",
        "grafana",
        "alertmanager",
        "file_sd",
    }
    datasources = yaml.safe_load(project.configs["grafana"][0].content)["datasources"]
    assert [d["uid"] for d in datasources] == ["prometheus", "alertmanager"]
    assert "exemplarTraceIdDestinations" not in datasources[0]["jsonData"]
    for word in ("tempo:", "loki:", "tempo-data", "loki-data"):
        assert word not in text, word


def test_settings_reach_the_configs() -> None:
    project = render_project(SETTINGS_CASES["every setting changed"])
    services = project.compose["services"]
    assert services["grafana"]["ports"] == [
        {"target": 3000, "published": "13000", "host_ip": "0.0.0.0", "protocol": "tcp"}
    ]
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_USER"] == "ops"
    assert services["prometheus"]["deploy"]["resources"]["limits"]["memory"] == "1536M"
    assert services["otel-collector"]["environment"]["GOMEMLIMIT"] == "240MiB"
    prometheus = yaml.safe_load(project.configs["prometheus"][0].content)
    assert prometheus["global"]["evaluation_interval"] == "30s"  # override
    api = prometheus["scrape_configs"][-1]
    assert api == {
        "job_name": "api",
        "metrics_path": "/internal/metrics",
        "scheme": "https",
        "scrape_interval": "10s",
        "static_configs": [{"targets": ["api:8000", "api-2:8000"], "labels": {"team": "backend"}}],
    }
    loki = yaml.safe_load(project.configs["loki"][0].content)
    assert loki["limits_config"]["retention_period"] == "336h"
    assert loki["limits_config"]["ingestion_rate_mb"] == 16
    tempo = yaml.safe_load(project.configs["tempo"][0].content)
    assert tempo["compactor"]["compaction"]["block_retention"] == "168h"
    collector = yaml.safe_load(project.configs["otel-collector"][0].content)
    assert collector["processors"]["probabilistic_sampler"] == {"sampling_percentage": 25.0}
    assert collector["exporters"]["otlp_grpc/tempo"]["sending_queue"]["batch"]["flush_timeout"] == "5s"


def test_dollar_signs_are_escaped_for_compose() -> None:
    text = render_project(Settings()).text()
    document = yaml.safe_load(text)
    content = document["configs"]["grafana-datasources"]["content"]
    # Grafana's own escape ($$) doubled again for Compose interpolation.
    assert "$$$${__value.raw}" in content
    assert "{{ $$labels.job }}" in document["configs"]["prometheus-rules-stack"]["content"]


def test_rendering_twice_gives_identical_bytes(paths: Paths) -> None:
    first = render_to_disk(paths).compose_file.read_bytes()
    second = render_to_disk(paths).compose_file.read_bytes()
    assert first == second


def test_generated_password_is_kept_0600_and_never_in_the_render_dir(paths: Paths) -> None:
    render_to_disk(paths)
    store = SecretStore.for_paths(paths)
    password = store.get(GRAFANA_ADMIN_PASSWORD)
    assert password and len(password) >= 32
    assert store.path(GRAFANA_ADMIN_PASSWORD).stat().st_mode & 0o777 == 0o600
    assert paths.secrets_dir.stat().st_mode & 0o777 == 0o700
    for path in paths.render_dir.rglob("*"):
        if path.is_file():
            assert password not in path.read_text(), path
    # Generated once: a second render keeps it.
    render_to_disk(paths)
    assert store.get(GRAFANA_ADMIN_PASSWORD) == password
