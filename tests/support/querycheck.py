"""LogQL and TraceQL syntax checks for the tests (stack/querysyntax.py says which parsers, and why)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest

from stack import querysyntax


def syntax_errors(items: Sequence[tuple[str, str]]) -> list[str | None]:
    """For each (language, query), None or the parser's first syntax error; skip (fail in CI) when the
    parsers are not installed (`make test` installs them with `npm ci`)."""
    problem = querysyntax.unavailable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return querysyntax.syntax_errors(items)
