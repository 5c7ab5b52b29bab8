"""stack.yaml: the user's settings, validated, with a sane default for every key.

Names that docs and scripts rely on: `project`, `bind_address`, `runtime`, and
`components.<name>.enabled` with the compose service names as component names.

The package: `fields` (constrained values), `components` (one model per component), `signals`
(rules, SLOs, alerting), `models` (`Settings`), `errors` (a validation error as one line),
`checks` (across keys), `load` (the file to `Settings`). Import from here.
"""

from stack.settings.checks import PLAIN_HTTP_HINT, Problem, SettingsCheck, plain_http_exposure
from stack.settings.components import (
    COMPONENT_NAMES,
    OPTIONAL_COMPONENT_NAMES,
    SERVER_PROFILE_DEFAULTS,
    AlertmanagerSettings,
    CollectorSettings,
    Components,
    ComponentSettings,
    FrontendSettings,
    GrafanaSettings,
    LokiSettings,
    PrometheusSettings,
    ProxySettings,
    TempoSettings,
)
from stack.settings.fields import (
    MAX_ADMIN_USER_LENGTH,
    MAX_GO_DURATION_SECONDS,
    MAX_IMAGE_NAME_LENGTH,
    MAX_MEMORY_BYTES,
    MAX_PROJECT_LENGTH,
    _image,
    is_loopback,
)
from stack.settings.load import load_settings, parse_settings, read_settings_file
from stack.settings.models import (
    DashboardSettings,
    ProcessSettings,
    ScrapeTarget,
    ServerSettings,
    Settings,
    SwarmSettings,
    TlsSettings,
)
from stack.settings.signals import (
    LOKI_RULE_PACKS,
    RULE_PACKS,
    AlertingSettings,
    EmailReceiver,
    PagerDutyReceiver,
    ReceiverSettings,
    RulePackSettings,
    RulesSettings,
    SecretRef,
    SlackReceiver,
    SliSettings,
    SloSettings,
    WebhookReceiver,
)

__all__ = [
    "COMPONENT_NAMES",
    "LOKI_RULE_PACKS",
    "MAX_ADMIN_USER_LENGTH",
    "MAX_GO_DURATION_SECONDS",
    "MAX_IMAGE_NAME_LENGTH",
    "MAX_MEMORY_BYTES",
    "MAX_PROJECT_LENGTH",
    "OPTIONAL_COMPONENT_NAMES",
    "PLAIN_HTTP_HINT",
    "RULE_PACKS",
    "SERVER_PROFILE_DEFAULTS",
    "AlertingSettings",
    "AlertmanagerSettings",
    "CollectorSettings",
    "ComponentSettings",
    "Components",
    "DashboardSettings",
    "EmailReceiver",
    "FrontendSettings",
    "GrafanaSettings",
    "LokiSettings",
    "PagerDutyReceiver",
    "Problem",
    "ProcessSettings",
    "PrometheusSettings",
    "ProxySettings",
    "ReceiverSettings",
    "RulePackSettings",
    "RulesSettings",
    "ScrapeTarget",
    "SecretRef",
    "ServerSettings",
    "Settings",
    "SettingsCheck",
    "SlackReceiver",
    "SliSettings",
    "SloSettings",
    "SwarmSettings",
    "TempoSettings",
    "TlsSettings",
    "WebhookReceiver",
    "_image",
    "is_loopback",
    "load_settings",
    "parse_settings",
    "plain_http_exposure",
    "read_settings_file",
]
