"""The one polling helper."""

from __future__ import annotations

import time

import pytest

from stack.polling import poll_until


def test_true_at_once_is_one_call() -> None:
    calls = []
    assert poll_until(lambda: calls.append(1) or True, 5) is True
    assert calls == [1]


def test_polls_until_true() -> None:
    answers = iter([False, False, True])
    assert poll_until(lambda: next(answers), 5, interval=0.01) is True


def test_gives_up_after_the_timeout_with_the_last_answer() -> None:
    start = time.monotonic()
    assert poll_until(lambda: False, 0.2, interval=0.02) is False
    assert 0.2 <= time.monotonic() - start < 2


def test_gives_up_after_the_attempts() -> None:
    calls = []
    assert poll_until(lambda: calls.append(1) or False, interval=0.01, attempts=3) is False
    assert len(calls) == 3


def test_an_exception_is_raised_at_once() -> None:
    calls = []

    def broken() -> bool:
        calls.append(1)
        raise OSError("no such file")

    with pytest.raises(OSError, match="no such file"):
        poll_until(broken, 5, interval=0.01)
    assert calls == [1]
