"""The one rule from a bind address to a URL (stack/net/address.py), and the places that print or render one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stack.net.address import shown_host, url_host
from tests.conftest import invoke


@pytest.mark.parametrize(
    ("bind", "connect", "shown"),
    [
        ("127.0.0.1", "127.0.0.1", "localhost"),
        ("0.0.0.0", "127.0.0.1", "localhost"),
        ("::", "[::1]", "localhost"),
        ("::1", "[::1]", "localhost"),
        ("10.0.0.5", "10.0.0.5", "10.0.0.5"),
        ("fd00::5", "[fd00::5]", "[fd00::5]"),
        ("[fd00::5]", "[fd00::5]", "[fd00::5]"),
    ],
)
def test_a_bind_address_becomes_one_url_host(bind: str, connect: str, shown: str) -> None:
    assert url_host(bind) == connect
    assert shown_host(bind) == shown


@pytest.mark.parametrize(("bind", "url"), [("::", "http://localhost:3000/"), ("fd00::5", "http://[fd00::5]:3000/")])
def test_credentials_print_a_url_that_parses_for_an_ipv6_bind_address(project_dir: Path, bind: str, url: str) -> None:
    # It printed `http://:::3000/` for `::` before the rule was shared.
    (project_dir / "stack.yaml").write_text(f'bind_address: "{bind}"\nserver:\n  allow_plain_http: true\n')
    result = invoke("credentials", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["url"] == url


@pytest.mark.parametrize(
    ("bind", "root"),
    [
        ("127.0.0.1", "http://localhost:3000/"),
        ("::", "http://localhost:3000/"),
        ("::1", "http://localhost:3000/"),
        ("10.0.0.5", "http://10.0.0.5:3000/"),
        ("fd00::5", "http://[fd00::5]:3000/"),
    ],
)
def test_grafana_is_told_a_root_url_that_parses(bind: str, root: str) -> None:
    # Grafana's environment had its own copy of the rule: `::` became `http://:::3000/` there too.
    from urllib.parse import urlsplit

    from stack.render import render_project
    from stack.settings import parse_settings

    settings = parse_settings({"bind_address": bind, "server": {"allow_plain_http": True}})
    environment = render_project(settings).compose["services"]["grafana"]["environment"]
    assert environment["GF_SERVER_ROOT_URL"] == root
    assert urlsplit(root).port == 3000
