"""LogQL and TraceQL syntax, checked with the Lezer grammars of Grafana's query editors.

Loki's and Tempo's own parsers are AGPL Go code that this project does not use; the grammars
(@grafana/lezer-logql, @grafana/lezer-traceql, Apache-2.0) run under Node.js from
`scripts/querycheck/` of a source checkout, once `npm ci` installed them (`make test` does).
Where they are not installed the check says so and is skipped, never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from stack.errors import StackError
from stack.resources import repo_root
from stack.tools import run, which

QUERYCHECK = repo_root() / "scripts" / "querycheck"


def unavailable(querycheck: Path = QUERYCHECK) -> str | None:
    """Why the parsers cannot run here, or None when they can."""
    if which("node") is None:
        return "node is not on PATH (Node.js 20 or newer)"
    if not (querycheck / "check.mjs").is_file():
        return "the query parsers ship with a source checkout only (scripts/querycheck)"
    if not (querycheck / "node_modules" / "@grafana" / "lezer-logql").is_dir():
        return f"the query parsers are not installed (npm ci --prefix {querycheck})"
    return None


def syntax_errors(items: Sequence[tuple[str, str]], querycheck: Path = QUERYCHECK) -> list[str | None]:
    """For each (language, query), with language `logql` or `traceql`: None, or the first syntax
    error (`syntax error at 12: ...`). Raises StackError when the parsers cannot run."""
    problem = unavailable(querycheck)
    if problem:
        raise StackError(problem)
    node = which("node")
    assert node is not None
    payload = json.dumps([{"language": language, "query": query} for language, query in items])
    result = run([node, str(querycheck / "check.mjs")], input=payload, timeout=60)
    if not result.ok:
        last = result.output.splitlines()[-1] if result.output else f"exit code {result.returncode}"
        raise StackError(f"the query parser failed: {last}")
    return [item["error"] for item in json.loads(result.stdout)]
