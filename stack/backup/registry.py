"""Which components have state worth backing up, and the step that handles each (one row each)."""

from __future__ import annotations

from stack.backup.alertmanager import AlertmanagerStep
from stack.backup.filestate import FlushAndCopyStep
from stack.backup.grafana import GrafanaStep
from stack.backup.prometheus import PrometheusStep
from stack.backup.steps import Step

# The Collector keeps no state: it has no row.
STEPS: dict[str, Step] = {
    step.component: step
    for step in (
        PrometheusStep(),
        FlushAndCopyStep("loki"),
        FlushAndCopyStep("tempo"),
        GrafanaStep(),
        AlertmanagerStep(),
    )
}
SECRETS = "secrets"
# Top-level names an archive may hold (besides manifest.json).
ARCHIVE_ROOTS = frozenset({*STEPS, SECRETS})
