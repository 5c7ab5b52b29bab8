"""JSON that others wrote, read with its nesting bounded (stack.fileio.parse_json)."""

from __future__ import annotations

import pytest

from stack.fileio import MAX_JSON_DEPTH, JsonTooDeep, parse_json


def test_json_as_deep_as_the_bound_is_read() -> None:
    deep = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json(deep) is not None
    assert parse_json('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 500_000])
def test_deeper_json_is_a_value_error_not_a_crash(depth: int) -> None:
    # Objects and arrays alike; the decoder's own RecursionError (from about 1000 levels) included.
    text = '{"k": ' * depth + "1" + "}" * depth
    with pytest.raises(JsonTooDeep, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        parse_json(text)
    with pytest.raises(ValueError):
        parse_json(text.encode())
