"""Waiting for a condition to come true: one helper on tenacity instead of sleep loops."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenacity.stop import stop_base


def poll_until(
    predicate: Callable[[], bool], timeout: float | None = None, interval: float = 0.05, *, attempts: int | None = None
) -> bool:
    """Call `predicate` until it is true, `timeout` seconds have passed or it was called `attempts` times.

    Returns its last answer. An exception from `predicate` is raised at once, not retried.
    """
    # tenacity is imported here, not at the top: commands that never wait (status) do not load it.
    from tenacity import Retrying, retry_if_result, stop_after_attempt, stop_after_delay, stop_any, wait_fixed

    stops: list[stop_base] = [stop_after_delay(timeout)] if timeout is not None else []
    if attempts is not None:
        stops.append(stop_after_attempt(attempts))
    retrying = Retrying(
        stop=stop_any(*stops),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda done: not done),
        retry_error_callback=lambda state: bool(state.outcome and state.outcome.result()),
    )
    return bool(retrying(predicate))
