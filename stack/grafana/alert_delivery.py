"""Where Grafana sends the alerts of its own rules: its ngalert admin setting `alertmanagersChoice`."""

from __future__ import annotations

from stack.grafana.client import GrafanaClient, GrafanaError
from stack.grafana.result import Counts

ADMIN_CONFIG = "/api/v1/ngalert/admin_config"
# What Grafana does when its admin configuration was never set.
_DEFAULT_CHOICE = "all"


def push_alert_delivery(client: GrafanaClient, choice: str, counts: Counts) -> None:
    """Set where Grafana sends the alerts of its own rules (`internal`, `external` or `all`
    Alertmanagers). After the datasources: `external` needs an Alertmanager datasource that
    handles Grafana-managed alerts, or Grafana answers 400."""
    data = client.get_or_none(ADMIN_CONFIG, what="read where Grafana sends its alerts")
    current = (data.get("alertmanagersChoice") if isinstance(data, dict) else None) or _DEFAULT_CHOICE
    if current == choice:
        counts.unchanged += 1
        return
    status, reply = client.request(
        "POST",
        ADMIN_CONFIG,
        {"alertmanagersChoice": choice},
        ok=(200, 201, 202, 400),
        what="set where Grafana sends its alerts",
    )
    if status == 400:
        message = reply.get("message", "") if isinstance(reply, dict) else ""
        raise GrafanaError(
            f"Grafana at {client.where} refused to send its alerts to {choice} Alertmanagers (400: {message})",
            hint="check that the Alertmanager datasource has handleGrafanaManagedAlerts on, or set "
            "alerting.grafana_alerts: grafana in stack.yaml",
        )
    counts.updated += 1
