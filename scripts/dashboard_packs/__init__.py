"""The bundled dashboard packs, as Python that `scripts/build_dashboards.py` turns into JSON."""

from __future__ import annotations

from dashboard_packs import (
    errors,
    explore,
    llm,
    queues,
    realtime,
    security,
    service_overview,
    slos,
    stack_health,
    workflows,
)
from dashboard_packs.model import Pack

PACKS: list[Pack] = [
    stack_health.PACK,
    service_overview.PACK,
    slos.PACK,
    queues.PACK,
    realtime.PACK,
    llm.PACK,
    workflows.PACK,
    security.PACK,
    explore.PACK,
    errors.PACK,
]
