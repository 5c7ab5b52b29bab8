"""The log lines of several services, interleaved as they come (Swarm has no `compose logs` for a
whole stack: each service's `docker service logs` runs in a thread of its own)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping

from stack.errors import StackError


def interleaved(streams: Mapping[str, Callable[[], Iterator[str]]]) -> Iterator[str]:
    """Every line of every stream, in the order they arrive; a stream that fails ends with one line
    saying why (`name | (error)`), and the others go on."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump(name: str, stream: Callable[[], Iterator[str]]) -> None:
        try:
            for line in stream():
                lines.put(line)
        except StackError as exc:
            lines.put(f"{name} | ({exc.message})")
        finally:
            lines.put(None)

    for name, stream in streams.items():
        threading.Thread(target=pump, args=(name, stream), daemon=True, name=f"logs-{name}").start()
    ended = 0
    while ended < len(streams):
        line = lines.get()
        if line is None:
            ended += 1
        else:
            yield line
