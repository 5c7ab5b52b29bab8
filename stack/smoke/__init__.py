"""`stack smoke`: one trace, one log and one metric sent as an app sends them, and each found again.

Sent with the OpenTelemetry SDK over OTLP/HTTP to the Collector:
- a trace of three spans;
- a log record inside it (so it carries the trace id);
- a histogram data point recorded inside it (so its exemplar points at the trace).

Then every backend is polled, through the runtime (published port, tunnel or in-network request),
until it answers or the timeout passes: Tempo for the trace by id, Loki for the log by trace id,
Prometheus for the metric and for the exemplar's trace id, Grafana for each datasource's health.
Each check reports the time from the send to the first answer that had the data.

Parts: `sender` (the app side, on the OpenTelemetry SDK), `probes` (one per backend, and the polling),
`report` (what comes back), `check` (all of it, in parallel).
"""

from stack.smoke.check import smoke
from stack.smoke.report import Result, SmokeCheck, SmokeError, SmokeReport
from stack.smoke.sender import METRIC, SERVICE_NAME, Sent, send

__all__ = ["METRIC", "SERVICE_NAME", "Result", "Sent", "SmokeCheck", "SmokeError", "SmokeReport", "send", "smoke"]
