"""The one version parser and the one image-reference parser."""

from __future__ import annotations

import pytest
from packaging.version import Version

from stack.imageref import ImageRef
from stack.versions import MIN_COMPOSE, at_least, parse_version, version_in


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2.40.3", "2.40.3"),
        ("v2.23.1", "2.23.1"),
        ("2.40.3-desktop.1", "2.40.3"),
        ("28.5.2+dfsg1\n", "28.5.2+dfsg1"),
        ("20.10.24+dfsg1", "20.10.24+dfsg1"),
        ("12.1.0-pre", "12.1.0rc0"),
        ("0.25.0", "0.25.0"),
    ],
)
def test_versions_as_programs_print_them(text: str, expected: str) -> None:
    assert parse_version(text) == Version(expected)


@pytest.mark.parametrize("text", ["", None, "unknown", "dev"])
def test_no_version_is_none(text: str | None) -> None:
    assert parse_version(text) is None
    assert not at_least(text, MIN_COMPOSE)


def test_minimums_compare_as_versions_not_strings() -> None:
    assert at_least("2.23.1", MIN_COMPOSE)
    assert at_least("2.100.0", MIN_COMPOSE)
    assert not at_least("2.23.0", MIN_COMPOSE)
    assert not at_least("v2.9.9-desktop.1", MIN_COMPOSE)
    assert str(MIN_COMPOSE) == "2.23.1"


@pytest.mark.parametrize(
    ("text", "repository", "tag", "digest"),
    [
        ("prom/prometheus:v3.1.0", "prom/prometheus", "v3.1.0", None),
        ("caddy", "caddy", None, None),
        ("localhost:5000/prom/prometheus", "localhost:5000/prom/prometheus", None, None),
        ("localhost:5000/prom/prometheus:v3.1.0", "localhost:5000/prom/prometheus", "v3.1.0", None),
        ("grafana/grafana@sha256:abc", "grafana/grafana", None, "sha256:abc"),
        ("grafana/grafana:12.1.0@sha256:abc", "grafana/grafana", "12.1.0", "sha256:abc"),
    ],
)
def test_image_references_split(text: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = ImageRef.parse(text)
    assert (ref.repository, ref.tag, ref.digest) == (repository, tag, digest)
    assert str(ref) == text
    assert ref.tagged == text.partition("@")[0]


def test_image_reference_short_form_and_version() -> None:
    assert ImageRef.parse("docker.io/library/caddy:2.8").short == "caddy:2.8"
    assert ImageRef.parse("docker.io/grafana/grafana:12.1.0").short == "grafana/grafana:12.1.0"
    assert ImageRef.parse("quay.io/prometheus/prometheus:v3.1.0").short == "quay.io/prometheus/prometheus:v3.1.0"
    assert ImageRef.parse("prom/prometheus:v3.1.0").version == Version("3.1.0")
    assert ImageRef.parse("prom/prometheus:v3.1.0").version > ImageRef.parse("prom/prometheus:v3.0.2").version
    assert ImageRef.parse("caddy:2-alpine").version is None
    assert ImageRef.parse("caddy:latest").version is None


def test_image_pins() -> None:
    assert ImageRef.parse("caddy:2.8.4").pin_problem() is None
    assert ImageRef.parse("grafana/grafana@sha256:abc").pin_problem() is None
    assert ImageRef.parse("caddy").pin_problem() == "has no tag; pin a version"
    assert ImageRef.parse("localhost:5000/caddy").pin_problem() == "has no tag; pin a version"
    assert ImageRef.parse("caddy:latest").pin_problem() == "uses 'latest'; pin a version"


@pytest.mark.parametrize(
    ("image", "release"),
    [
        ("prom/prometheus:v3.14.0", "3.14.0"),
        ("otel/opentelemetry-collector-contrib:0.160.0", "0.160.0"),
        ("caddy:2.8.4-alpine", "2.8.4"),
        ("grafana/grafana:12.1.0-pre", "12.1.0"),
        ("x:3.1.0-rc1", "3.1.0"),
        ("x:1.2.3.4", "1.2.3"),
        ("bitnami/x:3.14.0-debian-12-r3", "3.14.0"),
        ("localhost:5000/prom/prometheus:v3.1.0@sha256:ab", "3.1.0"),
        ("caddy:2.8", None),
        ("caddy:2-alpine", None),
        ("caddy:latest", None),
        ("caddy", None),
        ("grafana/grafana@sha256:abc", None),
    ],
)
def test_the_release_an_image_tag_pins(image: str, release: str | None) -> None:
    """What the process runtime compares a binary with, and what configs are rendered for."""
    assert ImageRef.parse(image).release == release


@pytest.mark.parametrize(
    ("output", "found"),
    [
        ("prometheus, version 2.42.0+ds (branch: debian/sid)", "2.42.0"),
        ("caddy v2.6.2 h1:abc", "2.6.2"),
        ("otelcol-contrib version 0.160.0", "0.160.0"),
        ("version 1.2", None),
        ("build abc1.2.3", None),
        ("", None),
    ],
)
def test_the_version_a_program_prints(output: str, found: str | None) -> None:
    assert version_in(output) == found
