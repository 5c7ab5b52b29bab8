"""Settings of the signals the stack watches: alert rule packs, SLOs and where alerts go."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, Strict, ValidationInfo, field_validator, model_validator

from stack.settings.fields import Duration, StrictModel
from stack.yamlio import YamlLimitError, YamlSyntaxError, load_file


class RulePackSettings(StrictModel):
    enabled: bool = True
    # Names are checked against the pack's own list (stack/rules/packs.py) after validation.
    thresholds: dict[str, Annotated[float, Strict(), Field(ge=0)]] = Field(default_factory=dict)


# A rule file of thousands of generated rules is still far below these.
RULE_FILE_MAX_BYTES = 16 * 1024**2
RULE_FILE_MAX_NODES = 2_000_000


class RulesSettings(StrictModel):
    """Alert rule packs (configs/prometheus/rules/<pack>.yml), each on by default."""

    stack: RulePackSettings = Field(default_factory=RulePackSettings)
    http: RulePackSettings = Field(default_factory=RulePackSettings)
    queues: RulePackSettings = Field(default_factory=RulePackSettings)
    llm: RulePackSettings = Field(default_factory=RulePackSettings)
    workflows: RulePackSettings = Field(default_factory=RulePackSettings)
    realtime: RulePackSettings = Field(default_factory=RulePackSettings)
    security: RulePackSettings = Field(default_factory=RulePackSettings)
    # LogQL alerts (configs/loki/rules/errors.yml) that Loki's ruler evaluates: new exception types,
    # error log spikes, panics.
    errors: RulePackSettings = Field(default_factory=RulePackSettings)
    # Prefix of every alert's runbook_url (`<prefix><AlertName>.md`): point it at your wiki or repository.
    runbook_base_url: str = "docs/runbooks/"
    # Your own Prometheus rule files (relative to stack.yaml), inlined into the render like the packs.
    files: list[str] = Field(default_factory=list)
    # Your own LogQL rule files (same format, LogQL in `expr`) for Loki's ruler, inlined the same way.
    loki_files: list[str] = Field(default_factory=list)

    @field_validator("files", "loki_files")
    @classmethod
    def _rule_files(cls, value: list[str], info: ValidationInfo) -> list[str]:
        base = Path((info.context or {}).get("base_dir") or Path.cwd())
        found = []
        for name in value:
            path = (base / Path(name).expanduser()).resolve()
            if not path.is_file():
                raise ValueError(f"rule file {str(path)!r} does not exist")
            try:
                # Bounded like stack.yaml (alias bombs, depth), with room for a large generated file.
                document = load_file(path, max_bytes=RULE_FILE_MAX_BYTES, max_nodes=RULE_FILE_MAX_NODES).data
            except YamlLimitError as exc:
                raise ValueError(f"rule file {str(path)!r} is refused: {exc.problem}") from None
            except (YamlSyntaxError, UnicodeDecodeError, OSError) as exc:
                raise ValueError(f"rule file {str(path)!r} is not valid YAML ({exc.__class__.__name__})") from None
            if not isinstance(document, dict) or not isinstance(document.get("groups"), list):
                kind = "Loki" if info.field_name == "loki_files" else "Prometheus"
                raise ValueError(f"rule file {str(path)!r} is not a {kind} rule file (no `groups:` list)")
            found.append(str(path))
        if len({Path(path).name for path in found}) != len(found):
            raise ValueError("two rule files have the same file name")
        return found

    def packs(self) -> dict[str, RulePackSettings]:
        """The Prometheus packs."""
        return {name: getattr(self, name) for name in RULE_PACKS}

    def loki_packs(self) -> dict[str, RulePackSettings]:
        """The packs Loki's ruler evaluates."""
        return {name: getattr(self, name) for name in LOKI_RULE_PACKS}


RULE_PACKS = ("stack", "http", "queues", "llm", "workflows", "realtime", "security")
LOKI_RULE_PACKS = ("errors",)

_WINDOW_PLACEHOLDER = "$window"
_MATCHER = r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*'
_MATCHERS = re.compile(rf"^(?:{_MATCHER}(?:,{_MATCHER})*,?\s*)?$")


def _label_matchers(value: str) -> str:
    if not _MATCHERS.match(value):
        raise ValueError(f'{value!r} is not a list of label matchers such as job="api", route=~"/checkout.*"')
    return value.strip().rstrip(",")


class SliSettings(StrictModel):
    """How an SLO measures good and bad events."""

    kind: Literal["availability", "latency", "ratio"]
    # availability / latency: label matchers added to every selector, e.g. job="api", http_route="/checkout".
    selector: Annotated[str, AfterValidator(_label_matchers)] = ""
    # Which metric names the ready-made kinds read: classic Prometheus clients or OpenTelemetry.
    convention: Literal["classic", "otel"] = "classic"
    metric: Annotated[str, Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")] | None = None
    status_label: Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")] | None = None
    threshold: Annotated[float, Strict(), Field(gt=0)] | None = None
    # ratio: PromQL with `$window` where the range goes, e.g. sum(rate(x_total{code=~"5.."}[$window])).
    errors: str | None = None
    good: str | None = None
    total: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> SliSettings:
        if self.kind == "latency" and self.threshold is None:
            raise ValueError("a latency SLI needs `threshold` (seconds), e.g. threshold: 0.5")
        if self.kind != "latency" and self.threshold is not None:
            raise ValueError("`threshold` applies to latency SLIs only")
        if self.kind == "ratio":
            if self.total is None or (self.errors is None) == (self.good is None):
                raise ValueError("a ratio SLI needs `total` and exactly one of `errors` or `good`")
            for query in (self.errors, self.good, self.total):
                if query is not None and _WINDOW_PLACEHOLDER not in query:
                    raise ValueError(f"{query!r} has no {_WINDOW_PLACEHOLDER} where the range goes, e.g. [$window]")
        elif any(q is not None for q in (self.errors, self.good, self.total)):
            raise ValueError("`errors`, `good` and `total` apply to ratio SLIs only")
        return self


class SloSettings(StrictModel):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    objective: Annotated[float, Strict(), Field(gt=0, lt=100)]
    window: Duration = "30d"
    service: str | None = None
    description: str = ""
    sli: SliSettings


class SecretRef(StrictModel):
    """A secret named by where it lives, never by its value: `{env: NAME}` or `{file: PATH}`."""

    env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    # Relative paths are taken from the directory of stack.yaml and stored absolute.
    file: str | None = None

    @field_validator("file")
    @classmethod
    def _absolute(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        base = Path((info.context or {}).get("base_dir") or Path.cwd())
        path = (base / Path(value).expanduser()).resolve()
        if not path.is_file():
            raise ValueError(f"secret file {str(path)!r} does not exist")
        return str(path)

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret is {env: VARIABLE} or {file: PATH}, exactly one of them")
        return self


def _secret_ref(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(
            "secrets are never written in stack.yaml: use {env: VARIABLE} or {file: PATH} (a file readable only by you)"
        )
    return value


Secret = Annotated[SecretRef, BeforeValidator(_secret_ref)]


class WebhookReceiver(StrictModel):
    # A plain URL, or a secret when the URL itself carries a token (needs Alertmanager >= 0.26).
    url: str | SecretRef
    bearer_token: Secret | None = None
    send_resolved: bool = True


class SlackReceiver(StrictModel):
    api_url: Secret
    channel: str | None = None
    send_resolved: bool = True


class EmailReceiver(StrictModel):
    to: str
    from_: str = Field(alias="from")
    smarthost: Annotated[str, Field(pattern=r"^[^\s:]+:\d+$")]
    auth_username: str | None = None
    auth_password: Secret | None = None
    require_tls: bool = True
    send_resolved: bool = True


class PagerDutyReceiver(StrictModel):
    routing_key: Secret
    send_resolved: bool = True


class ReceiverSettings(StrictModel):
    webhook: WebhookReceiver | None = None
    slack: SlackReceiver | None = None
    email: EmailReceiver | None = None
    pagerduty: PagerDutyReceiver | None = None

    @model_validator(mode="after")
    def _something(self) -> ReceiverSettings:
        if not any((self.webhook, self.slack, self.email, self.pagerduty)):
            raise ValueError("a receiver needs at least one of webhook, slack, email, pagerduty")
        return self


class AlertingSettings(StrictModel):
    receivers: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")], ReceiverSettings] = Field(
        default_factory=dict
    )
    # Critical alerts go to `page`, warnings to `ticket`; unset means nobody is notified.
    page: str | None = None
    ticket: str | None = None
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "service"])
    # Where Grafana sends the alerts of rules made in its own UI: `alertmanager`, the stack's (the
    # same receivers, routes, silences and inhibitions as the Prometheus alerts; Grafana's built-in
    # Alertmanager has no receiver set up and would drop them), `grafana` (its built-in one only),
    # or `both`. Without the alertmanager component, `grafana` is what happens.
    grafana_alerts: Literal["alertmanager", "grafana", "both"] = "alertmanager"
    group_wait: Duration = "30s"
    group_interval: Duration = "5m"
    repeat_interval: Duration = "4h"
