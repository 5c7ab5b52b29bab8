"""Grafana through its HTTP API: a small client, the service-account token, idempotent provisioning."""
