"""How backup and restore report progress: callbacks the CLI turns into a progress display."""

from __future__ import annotations


class Events:
    """No-op by default; the CLI overrides what it shows."""

    def component_started(self, component: str) -> None:
        pass

    def phase(self, component: str, text: str) -> None:
        pass

    def transferred(self, size: int) -> None:
        pass

    def component_done(self, component: str, size: int, seconds: float) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        """Something the user must see now, not in the summary (e.g. a signal being deferred)."""
