"""The pinned image tags against docs/releases.md, the list of tags checked as published (and when).

A pin that moves without the table moving with it fails here, so the table stays the honest source
of "this tag exists" that a test alone cannot be.
"""

from __future__ import annotations

import re
from datetime import date

import yaml

from stack.project import STARTER
from stack.resources import repo_root
from stack.settings import COMPONENT_NAMES, OPTIONAL_COMPONENT_NAMES, Settings

RELEASES = repo_root() / "docs" / "releases.md"
# The Collector's row comes with its own pin work (issue 14); until then its pin is not checked here.
NOT_YET_LISTED = {"otel-collector"}


def _rows() -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    header: list[str] = []
    for line in RELEASES.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", " "}:
            continue
        cells = [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        if cells[0] == "component":
            header = cells
            continue
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def test_every_pinned_tag_is_a_checked_published_one() -> None:
    rows = _rows()
    settings = Settings()
    for name in (*COMPONENT_NAMES, *OPTIONAL_COMPONENT_NAMES):
        image, _, tag = settings.component(name).image.rpartition(":")
        row = rows.get(name)
        if row is None:
            assert name in NOT_YET_LISTED, f"docs/releases.md has no row for {name}"
            continue
        assert row["image"] == image, name
        assert row["pinned tag"] == tag, f"{name} pins {tag}, docs/releases.md lists {row['pinned tag']}"
        assert row["published"].startswith("yes"), name
        assert row["source"], name


def test_the_starter_file_pins_what_the_code_pins() -> None:
    starter = yaml.safe_load(STARTER.read_text(encoding="utf-8"))
    settings = Settings()
    for name, component in (starter.get("components") or {}).items():
        if isinstance(component, dict) and "image" in component:
            assert component["image"] == settings.component(name).image, name


def test_the_table_says_when_it_was_checked() -> None:
    found = re.search(r"Checked on \*\*(\d{4}-\d{2}-\d{2})\*\*", RELEASES.read_text(encoding="utf-8"))
    assert found, "docs/releases.md must give the date the tags were checked"
    assert date.fromisoformat(found.group(1)) <= date.today()


def test_the_pins_the_review_moved() -> None:
    settings = Settings()
    assert settings.component("tempo").image == "grafana/tempo:2.10.8"
    assert settings.component("alertmanager").image == "prom/alertmanager:v0.35.1"
    assert settings.component("loki").image == "grafana/loki:3.7.8"
