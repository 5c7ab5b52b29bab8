from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from stack.components.grafana import bundled_packs
from stack.errors import SettingsError
from stack.project import SETTINGS_CHECKS
from stack.settings import COMPONENT_NAMES, Settings, load_settings, parse_settings
from stack.units import go_duration, parse_duration, parse_size
from stack.yamlio import deep_merge, dumps, loads
from tests.support import DATA, REPO


def test_no_file_means_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "missing.yaml")
    assert settings == Settings()
    assert settings.bind_address == "127.0.0.1"
    assert settings.enabled() == list(COMPONENT_NAMES)


def test_defaults_are_pinned_and_fit_in_3_gib() -> None:
    settings = Settings()
    total = 0
    for name in COMPONENT_NAMES:
        comp = settings.component(name)
        assert ":" in comp.image and not comp.image.endswith(":latest")
        total += parse_size(comp.memory)
    assert total <= 3 * 1024**3
    assert settings.component("prometheus").retention == "15d"
    assert settings.component("loki").retention == "7d"
    assert settings.component("tempo").retention == "72h"
    # Prometheus' admin API shares its web port: never published by default.
    assert settings.component("prometheus").port is None


def _leaves(model: BaseModel, prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{prefix}{info.alias or name}"
        if isinstance(value, BaseModel):
            found.update(_leaves(value, key + "."))
        else:
            found[key] = value
    return found


def test_full_fixture_changes_every_setting() -> None:
    full = _leaves(load_settings(DATA / "stack-full.yaml"))
    default = _leaves(Settings())
    unchanged = sorted(key for key in default if full[key] == default[key] and not key.endswith(".enabled"))
    assert unchanged == []


def test_starter_file_is_valid_and_equals_the_defaults() -> None:
    starter = load_settings(REPO / "stack" / "starter.yaml", checks=SETTINGS_CHECKS)
    # The starter lists every bundled pack, which is what the default (None) means.
    assert starter.dashboards.packs == bundled_packs()
    assert starter.model_copy(update={"dashboards": Settings().dashboards}) == Settings()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15d", 15 * 86400), ("72h", 72 * 3600), ("1h30m", 5400), ("500ms", 0.5), ("2w", 14 * 86400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["15x", "", "d", "1.5h", "h1", "1m1h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_go_duration_has_no_days() -> None:
    assert go_duration(3 * 86400) == "72h"
    assert go_duration(5400) == "1h30m"


@pytest.mark.parametrize(("text", "size"), [("512M", 512 * 1024**2), ("1G", 1024**3), ("1.5GiB", 1536 * 1024**2)])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_error_names_line_and_key_path() -> None:
    text = "project: x\ncomponents:\n  tempo:\n    retention: 0h\n"
    loaded = loads(text)
    with pytest.raises(SettingsError) as info:
        parse_settings(loaded.data, loaded=loaded, source=Path("s.yaml"))
    assert info.value.one_line() == (
        "s.yaml:4: components.tempo.retention: '0h' must be longer than zero "
        "(hint: use a positive duration such as 15d, 72h or 30m)"
    )


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text("project: a\nproject: b\n")
    with pytest.raises(SettingsError, match=r"stack.yaml:2: malformed YAML: duplicate key 'project'"):
        load_settings(path)


def test_deep_merge_replaces_lists_and_deletes_on_null() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 4}
    assert deep_merge(base, {"a": {"c": [3]}, "d": None}) == {"a": {"b": 1, "c": [3]}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 4}


def test_dumps_is_stable() -> None:
    data = {"b": 1, "a": {"text": "x\ny\n"}}
    assert dumps(data) == dumps(data)
    assert dumps(data).startswith("b: 1\na:\n  text: |")
