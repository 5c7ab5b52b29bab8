"""Grafana through its HTTP API, and every dashboard the stack ships.

- dashboards, dashboard_queries: the dashboard packs and users' dashboard files, loaded and checked;
  the queries inside a dashboard model (tests and benchmarks run them on the real backends).
- client, token: a small HTTP client and the service-account token `stack` keeps.
- provision: idempotent provisioning, one module per kind of object it writes (push_folders,
  push_datasources, push_dashboards, alert_delivery), `compare` and `result` shared by them.
- binding: the packs bound to another Grafana's own datasources (`stack provision --grafana-url`).
"""
