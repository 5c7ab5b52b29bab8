"""LogQL and TraceQL syntax checks with Grafana's own Lezer grammars (scripts/querycheck/).

Loki's and Tempo's parsers are Go code under the AGPL, which this project does not use, and neither
program can run here. The grammars Grafana's query editors parse with (@grafana/lezer-logql,
@grafana/lezer-traceql, Apache-2.0, from npm) are the closest real parsers: `make test` installs
them with `npm ci`. The gap: a grammar accepts some queries Loki would refuse at run time (an
unknown template function, a label that is not there); those are checked by the tests' label rules.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence

import pytest

from tests.conftest import REPO

QUERYCHECK = REPO / "scripts" / "querycheck"


def _ready() -> str:
    """The node binary, once the parsers are installed; skip (fail in CI) otherwise."""
    node = shutil.which("node")
    problem = None
    if not node:
        problem = "node is not on PATH (Node.js 20 or newer)"
    elif not (QUERYCHECK / "node_modules" / "@grafana" / "lezer-logql").is_dir():
        problem = f"the query parsers are not installed: run `npm ci --prefix {QUERYCHECK}` (make test does)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    assert node
    return node


def syntax_errors(items: Sequence[tuple[str, str]]) -> list[str | None]:
    """For each (language, query), None or the parser's first syntax error."""
    node = _ready()
    payload = json.dumps([{"language": language, "query": query} for language, query in items])
    result = subprocess.run(
        [node, str(QUERYCHECK / "check.mjs")],
        input=payload,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [item["error"] for item in json.loads(result.stdout)]
