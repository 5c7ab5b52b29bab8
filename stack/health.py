"""Readiness: every enabled component probed in parallel until it answers its readiness endpoint,
and, when one does not, a diagnosis (container state, last log lines, a hint for the usual causes).

Runtime-agnostic: it talks to a `Runtime` and never knows whether that is Docker or processes.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from stack.components import REGISTRY
from stack.runtime.base import ReportsHealth, Runtime, ServiceState, StartupFailure

if TYPE_CHECKING:
    from rich.table import Table

WAITING = "waiting"
READY = "ready"
FAILED = "failed"
TIMED_OUT = "timed out"

DEFAULT_TIMEOUT = 180.0
LOG_LINES = 30
# A container in one of these states will not become ready by waiting longer.
_DEAD_STATES = ("exited", "dead", "restarting", "missing", "failed", "rejected")
_STRIKES = 2


@dataclass(frozen=True)
class Probe:
    """One readiness request and what it found."""

    ready: bool
    detail: str
    version: str | None = None


@dataclass(frozen=True)
class Readiness:
    component: str
    phase: str = WAITING
    seconds: float = 0.0
    detail: str = ""
    attempts: int = 0
    version: str | None = None

    @property
    def title(self) -> str:
        return REGISTRY[self.component].title

    @property
    def ready(self) -> bool:
        return self.phase == READY


@dataclass(frozen=True)
class ReadinessReport:
    results: list[Readiness]
    states: dict[str, ServiceState] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(result.ready for result in self.results)

    @property
    def failed(self) -> list[Readiness]:
        return [result for result in self.results if not result.ready]


def probe(runtime: Runtime, component: str, *, timeout: float = 2.0) -> Probe:
    """Ask `component`'s readiness endpoint once; never raises for a component that is not up.

    A port published on this machine is asked directly. Otherwise the engine's own healthcheck
    verdict decides (the compose file defines one per image with a shell): a request run inside
    someone else's image depends on the tools that image ships, so it is only the last resort."""
    spec = REGISTRY[component].readiness
    if isinstance(runtime, ReportsHealth) and runtime.base_url(component, spec.port) is None:
        verdict = runtime.container_health(component)
        if verdict is not None:
            if verdict.status == "healthy":
                return Probe(True, "ok")
            said = f": {_short(verdict.output)}" if verdict.output else ""
            return Probe(False, f"healthcheck {verdict.status}{said}")
    try:
        reply = runtime.http(component, spec.port, spec.path, timeout=timeout)
    except TimeoutError:
        return Probe(False, f"no answer within {timeout:.1f} s")
    except ConnectionError as exc:
        return Probe(False, _short(str(exc)) or "connection refused")
    except OSError as exc:
        return Probe(False, _short(str(exc)))
    if reply.status != 200:
        body = _short(reply.text())
        return Probe(False, f"HTTP {reply.status}" + (f": {body}" if body else ""))
    # Some components answer 200 before they are usable: each reads its own answer.
    answer = REGISTRY[component].ready_answer(reply.body)
    return Probe(answer.ready, answer.detail, answer.version)


def _short(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def wait_until_ready(
    runtime: Runtime,
    components: list[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    on_update: Callable[[list[Readiness]], None] | None = None,
    probe_timeout: float = 2.0,
    state_every: float = 1.0,
) -> ReadinessReport:
    """Probe every component in parallel until all are ready, one fails, or `timeout` passes.

    A component whose container exits (or restarts, or vanishes) is failed at once rather than
    waited for. `on_update` receives the current rows whenever one changes.
    """
    import tenacity  # here: `stack status` probes once and never waits

    start = time.monotonic()
    rows = {name: Readiness(name) for name in components}
    lock = threading.Lock()
    cancels = {name: threading.Event() for name in components}
    states: dict[str, ServiceState] = {}
    strikes: dict[str, int] = {}

    def publish(name: str, **changes: Any) -> None:
        with lock:
            if rows[name].phase != WAITING:
                return
            rows[name] = replace(rows[name], seconds=time.monotonic() - start, **changes)
            snapshot = [rows[n] for n in components]
        if on_update:
            on_update(snapshot)

    def wait_one(name: str) -> None:
        def attempt() -> Probe:
            remaining = max(0.2, timeout - (time.monotonic() - start))
            found = probe(runtime, name, timeout=min(probe_timeout, remaining))
            with lock:
                if rows[name].phase == WAITING:
                    rows[name] = replace(
                        rows[name],
                        attempts=rows[name].attempts + 1,
                        detail=found.detail,
                        seconds=time.monotonic() - start,
                    )
                snapshot = [rows[n] for n in components]
            if on_update and not found.ready:
                on_update(snapshot)
            return found

        left = max(0.0, timeout - (time.monotonic() - start))
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_delay(left) | tenacity.stop_when_event_set(cancels[name]),
            wait=tenacity.wait_exponential(multiplier=0.1, max=1.0),
            retry=tenacity.retry_if_result(lambda found: not found.ready),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else Probe(False, "not tried"),
        )
        found: Probe = retrying(attempt)
        if found.ready:
            publish(name, phase=READY, detail="ready", version=found.version)
        elif not cancels[name].is_set():
            publish(name, phase=TIMED_OUT, detail=f"not ready after {timeout:g} s (last probe: {found.detail})")

    if on_update:
        on_update([rows[n] for n in components])
    with ThreadPoolExecutor(max_workers=max(1, len(components)), thread_name_prefix="ready") as pool:
        futures = [pool.submit(wait_one, name) for name in components]
        while not all(future.done() for future in futures):
            # Returns as soon as the last probe succeeds, rather than after a whole interval.
            wait(futures, timeout=min(state_every, 0.25) if time.monotonic() - start < 1 else state_every)
            if all(future.done() for future in futures):
                break
            _fail_dead(runtime, rows, cancels, states, strikes, publish, lock)
        for future in futures:
            future.result()
    return ReadinessReport([rows[n] for n in components], states)


def _fail_dead(
    runtime: Runtime,
    rows: dict[str, Readiness],
    cancels: dict[str, threading.Event],
    states: dict[str, ServiceState],
    strikes: dict[str, int],
    publish: Callable[..., None],
    lock: threading.Lock,
) -> None:
    try:
        current = {state.name: state for state in runtime.ps()}
    except Exception:  # the engine hiccuping must not end the wait; the probes decide
        return
    states.update(current)
    for name, cancel in cancels.items():
        state = current.get(name)
        with lock:
            waiting = rows[name].phase == WAITING
        dead = waiting and state is not None and state.state in _DEAD_STATES
        strikes[name] = strikes.get(name, 0) + 1 if dead else 0
        # Seen dead twice in a row: a restart policy brings a container back once in a while, and
        # a single restart during start-up is not yet a failure.
        if dead and strikes[name] >= _STRIKES:
            publish(name, phase=FAILED, detail=describe_state(state))
            cancel.set()


def describe_state(state: ServiceState | None, runtime_name: str = "docker") -> str:
    """`exited with code 1`, `OOM-killed`, `restarting (last exit code 2)`..."""
    if state is None or state.state == "missing":
        if runtime_name == "process":
            return "not running (never started, or stopped by `stack down`)"
        return "no container (never created, or removed)"
    if state.error:
        return f"{state.state}: {state.error}"
    if state.oom_killed:
        return f"OOM-killed (out of memory; exit code {state.exit_code})"
    if state.state == "exited":
        return f"exited with code {state.exit_code}"
    if state.state == "restarting":
        return "restarting (it keeps exiting" + (f", last exit code {state.exit_code})" if state.exit_code else ")")
    if state.state == "running" and state.health:
        return f"running ({state.health})"
    return state.state


# --- diagnosis -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    component: str
    state: str
    reason: str
    log_lines: list[str]
    hints: list[str]


_HINTS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"address already in use|port is already allocated|bind: address", re.I),
        "a port is already in use: stop what uses it, or choose another port in stack.yaml",
    ),
    (
        re.compile(r"permission denied|operation not permitted|read-only file system", re.I),
        "permission denied on its data: the volume is owned by another user (an old volume, or a restore): "
        "fix the owner, or `stack down --volumes` to start afresh",
    ),
    (
        re.compile(
            r"error loading config|failed to (?:parse|load|read|unmarshal) config|invalid configuration|"
            r"field \S+ not found|yaml: unmarshal|yaml: line \d+|error parsing|cannot unmarshal|"
            r"unknown (?:field|key)|config(?:uration)? (?:file )?(?:is )?invalid|mapping values are not allowed",
            re.I,
        ),
        "its config was rejected: run `stack validate`, and check this component's `overrides` in stack.yaml",
    ),
    (
        re.compile(r"out of memory|oom|cannot allocate memory", re.I),
        "it ran out of memory: raise components.<name>.memory in stack.yaml",
    ),
    (
        re.compile(r"no such host|connection refused|i/o timeout|dial tcp", re.I),
        "it cannot reach another component yet: check that component's state with `stack status`",
    ),
    (
        re.compile(r"database is locked|database disk image is malformed", re.I),
        "its database is locked or damaged: another instance may use the same volume",
    ),
]


def hints_for(component: str, state: ServiceState | None, reason: str, log_lines: list[str]) -> list[str]:
    """Hints for the usual causes, from the container state and the log lines."""
    found: list[str] = []
    if state is not None and state.oom_killed:
        found.append(f"it was killed for lack of memory: raise components.{component}.memory in stack.yaml")
    if state is not None and state.exit_code == 137 and not state.oom_killed:
        found.append("it was killed (exit 137): by the memory limit or by a stop that timed out")
    text = "\n".join([*log_lines, reason])
    for pattern, hint in _HINTS:
        if pattern.search(text):
            hint = hint.replace("<name>", component)
            if hint not in found:
                found.append(hint)
    if not found:
        if reason.startswith("HTTP 503") or "not ready" in reason.lower():
            found.append("it is still starting: try a longer --timeout, and look at its log lines above")
        elif state is not None and state.running:
            found.append(
                "it runs but its readiness endpoint does not answer: "
                f"look at its log lines, or `stack logs {component}`"
            )
    return found


def diagnose(
    runtime: Runtime, readiness: Readiness, state: ServiceState | None = None, *, lines: int = LOG_LINES
) -> Diagnosis:
    """Why `readiness` failed: the container state, its last `lines` log lines, and hints."""
    if state is None:
        try:
            state = next((s for s in runtime.ps() if s.name == readiness.component), None)
        except Exception:  # a diagnosis must never hide the original failure
            state = None
    try:
        log_lines = list(runtime.logs(readiness.component, tail=lines))[-lines:]
    except Exception as exc:  # same: show what we can
        log_lines = [f"(its logs cannot be read: {_short(str(exc))})"]
    return Diagnosis(
        component=readiness.component,
        state=describe_state(state),
        reason=readiness.detail,
        log_lines=log_lines,
        hints=hints_for(readiness.component, state, readiness.detail, log_lines),
    )


# --- display ---------------------------------------------------------------------------------------

_COLOURS = {WAITING: "yellow", READY: "green", FAILED: "red", TIMED_OUT: "red"}


def readiness_table(rows: list[Readiness]) -> Table:
    """The live table `stack up` shows while waiting."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    table.add_column("component")
    table.add_column("state")
    table.add_column("time", justify="right")
    table.add_column("detail", overflow="fold")
    for row in rows:
        colour = _COLOURS.get(row.phase, "white")
        detail = "" if row.phase == READY else row.detail
        table.add_row(row.component, f"[{colour}]{row.phase}[/]", f"{row.seconds:.1f}s", escape(detail))
    return table


def startup_diagnosis(failure: StartupFailure) -> Diagnosis:
    """A component that exited while the runtime started it, reported as a container that exited:
    state, last log lines, hints."""
    state = ServiceState(failure.component, "exited", exit_code=failure.component_exit_code)
    hints = hints_for(failure.component, state, "", failure.tail)
    hints.append(f"full log: {failure.log}; the components this start launched were stopped again")
    return Diagnosis(failure.component, f"{describe_state(state)} during start-up", "", failure.tail, hints)
