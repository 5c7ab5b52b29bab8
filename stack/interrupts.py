"""Ctrl-C and SIGTERM that cannot cut a critical section in half.

Outside a critical section, SIGINT and SIGTERM both raise `Interrupted` (a KeyboardInterrupt, so the
CLI reports it as it does Ctrl-C, exit 130). Inside one (`with guard.critical():`) the signal is
only recorded, announced through `on_deferred`, and raised when the section ends: a restore that
has stopped a component always copies its state back and starts it again first.

Programs run by `stack.tools.run` inside a critical section get a process group of their own, so a
terminal's Ctrl-C (sent to the whole foreground group) does not kill `docker compose start` either.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state = threading.local()


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; `signal_name` says which."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def in_critical_section() -> bool:
    """True while the current thread is inside a `critical()` block (children then get their own group)."""
    return getattr(_state, "depth", 0) > 0


class InterruptGuard:
    """Install SIGINT/SIGTERM handlers for the `with` block (main thread only; elsewhere a no-op)."""

    def __init__(self, on_deferred: Callable[[str], None] | None = None) -> None:
        self.on_deferred = on_deferred or (lambda _name: None)
        self.pending: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if in_critical_section():
            first = self.pending is None
            self.pending = self.pending or name
            if first:
                self.on_deferred(name)
            return
        raise Interrupted(name)

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """A section that runs to its end; a signal received meanwhile is raised right after it."""
        _state.depth = getattr(_state, "depth", 0) + 1
        try:
            yield
        finally:
            _state.depth -= 1
        if self.pending and not in_critical_section():
            name, self.pending = self.pending, None
            raise Interrupted(name)

    def check(self) -> None:
        """Raise a signal deferred so far (for loops that reach a safe point)."""
        if self.pending and not in_critical_section():
            name, self.pending = self.pending, None
            raise Interrupted(name)
