"""What the engine says about the project's containers (`docker compose ps`, `docker inspect`), read
into the runtime interface's `ServiceState` and `ContainerHealth`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from stack.runtime.base import ContainerHealth, ServiceState

# `docker compose ps` states of a container with no process in it.
STOPPED_STATES = frozenset({"exited", "created", "dead"})


def parse_compose_ps(stdout: str) -> list[dict[str, Any]]:
    """`docker compose ps --format json`: one JSON object per line (Compose >= 2.21) or one array (older)."""
    text = stdout.strip()
    if not text:
        return []
    if text.startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def parse_time(value: str | None) -> datetime | None:
    """A timestamp as the engine prints it (nanoseconds, `Z`); None for its zero time or garbage."""
    if not value or value.startswith("0001-01-01"):
        return None
    # Docker prints nanoseconds; Python takes microseconds.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(trimmed)
    except ValueError:
        return None


def health_since_start(state: Mapping[str, Any]) -> ContainerHealth | None:
    """The healthcheck verdict in `docker inspect`'s State, counting only checks run since the current
    start: the engine keeps the previous run's status across a restart until the first new check.
    None when the container has no healthcheck."""
    health = state.get("Health")
    if not health:
        return None
    started = parse_time(state.get("StartedAt"))
    checks = [
        entry
        for entry in health.get("Log") or []
        if started is None or ((when := parse_time(entry.get("Start"))) is not None and when >= started)
    ]
    if not checks:
        return ContainerHealth("starting")
    last = checks[-1]
    output = " ".join(str(last.get("Output") or "").split())
    if last.get("ExitCode") == 0:
        return ContainerHealth("healthy", output)
    # A failed check after a healthy one: the engine says healthy until `retries` fail in a row.
    return ContainerHealth("unhealthy" if health.get("Status") == "unhealthy" else "starting", output)


def service_states(
    ps_rows: list[dict[str, Any]], inspected: list[dict[str, Any]], services: list[str]
) -> list[ServiceState]:
    """Every service of `services`, with its container's state (or `missing`)."""
    by_id = {item.get("Id", ""): item for item in inspected}
    rows: dict[str, dict[str, Any]] = {row["Service"]: row for row in ps_rows if row.get("Service")}
    found: list[ServiceState] = []
    for name in [*services, *sorted(set(rows) - set(services))]:
        row = rows.get(name)
        if row is None:
            found.append(ServiceState(name=name, state="missing"))
            continue
        detail = next((item for key, item in by_id.items() if key and key.startswith(row.get("ID", "-"))), {})
        state = detail.get("State", {})
        since_start = health_since_start(state) if state else None
        health = since_start.status if since_start else row.get("Health") or None
        found.append(
            ServiceState(
                name=name,
                state=row.get("State") or state.get("Status") or "unknown",
                health=health or None,
                # The engine's own: compose ps says 0 for a restarting container that keeps exiting 3.
                exit_code=state["ExitCode"] if "ExitCode" in state else row.get("ExitCode"),
                oom_killed=bool(state.get("OOMKilled", False)),
                started_at=parse_time(state.get("StartedAt")),
                image=row.get("Image"),
            )
        )
    return found
