"""Prometheus rules rendered from stack.yaml: the alert rule packs and the SLO rules."""
