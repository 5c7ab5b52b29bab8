"""Alertmanager's routing and receivers from stack.yaml `alerting:`, with secrets kept out of every file.

Severity routes: critical -> `page`, warning -> `ticket`, anything else (or no receiver) -> `default`,
which notifies nobody. A critical alert silences the warning of the same alertname and service.
Every secret (`{env: NAME}` or `{file: PATH}`) becomes a compose secret mounted at
/run/secrets/<name>; the config names only that path (`*_file` fields).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stack.settings import AlertingSettings, ReceiverSettings, SecretRef, Settings
from stack.versions import parse_version

DEFAULT_RECEIVER = "default"


@dataclass(frozen=True)
class ReceiverSecret:
    """One secret a receiver needs: where it comes from, and the compose secret that carries it."""

    name: str
    ref: SecretRef
    # The settings key that names it, e.g. alerting.receivers.team.slack.api_url (for messages).
    setting: str = ""

    @property
    def target(self) -> str:
        return f"/run/secrets/{self.name}"

    def compose_source(self) -> dict[str, str]:
        # Compose reads the variable from the environment `stack` runs `docker compose` in, or the file.
        if self.ref.env is not None:
            return {"environment": self.ref.env}
        assert self.ref.file is not None
        return {"file": self.ref.file}

    def where(self) -> str:
        return f"environment variable {self.ref.env}" if self.ref.env else f"file {self.ref.file}"


def _secret_name(receiver: str, field: str) -> str:
    return f"alertmanager-{receiver}-{field}".replace("_", "-")


def receiver_secrets(alerting: AlertingSettings) -> list[ReceiverSecret]:
    """Every secret the receivers need, in a stable order."""
    found: list[ReceiverSecret] = []
    for name, receiver in alerting.receivers.items():
        for integration, field in (
            ("webhook", "url"),
            ("webhook", "bearer_token"),
            ("slack", "api_url"),
            ("email", "auth_password"),
            ("pagerduty", "routing_key"),
        ):
            config = getattr(receiver, integration)
            value = getattr(config, field, None) if config is not None else None
            if isinstance(value, SecretRef):
                found.append(
                    ReceiverSecret(
                        _secret_name(name, f"{integration}-{field}"),
                        value,
                        f"alerting.receivers.{name}.{integration}.{field}",
                    )
                )
    return found


def missing_secrets(settings: Settings, environ: dict[str, str] | None = None) -> list[str]:
    """The secrets that cannot be read now (unset variables, missing files), described for a user."""
    environ = dict(os.environ) if environ is None else environ
    missing = []
    for secret in receiver_secrets(settings.alerting):
        if secret.ref.env is not None and not environ.get(secret.ref.env):
            missing.append(f"{secret.setting}: {secret.where()} is not set")
        if secret.ref.file is not None and not Path(secret.ref.file).is_file():
            missing.append(f"{secret.setting}: {secret.where()} does not exist")
    return missing


def _receiver(name: str, receiver: ReceiverSettings) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name}
    if receiver.webhook is not None:
        hook = receiver.webhook
        config: dict[str, Any] = {"send_resolved": hook.send_resolved}
        if isinstance(hook.url, SecretRef):
            # url_file needs Alertmanager >= 0.26 (the pinned image is 0.35).
            config["url_file"] = f"/run/secrets/{_secret_name(name, 'webhook-url')}"
        else:
            config["url"] = hook.url
        if hook.bearer_token is not None:
            config["http_config"] = {
                "authorization": {"credentials_file": f"/run/secrets/{_secret_name(name, 'webhook-bearer-token')}"}
            }
        entry["webhook_configs"] = [config]
    if receiver.slack is not None:
        slack: dict[str, Any] = {
            "api_url_file": f"/run/secrets/{_secret_name(name, 'slack-api-url')}",
            "send_resolved": receiver.slack.send_resolved,
            "title": '{{ template "slack.default.title" . }}',
            "text": (
                "{{ range .Alerts }}*{{ .Labels.severity }}* {{ .Annotations.summary }}\n"
                "{{ .Annotations.description }}\nRunbook: {{ .Annotations.runbook_url }}\n{{ end }}"
            ),
        }
        if receiver.slack.channel:
            slack["channel"] = receiver.slack.channel
        entry["slack_configs"] = [slack]
    if receiver.email is not None:
        email = receiver.email
        mail: dict[str, Any] = {
            "to": email.to,
            "from": email.from_,
            "smarthost": email.smarthost,
            "require_tls": email.require_tls,
            "send_resolved": email.send_resolved,
        }
        if email.auth_username:
            mail["auth_username"] = email.auth_username
        if email.auth_password is not None:
            mail["auth_password_file"] = f"/run/secrets/{_secret_name(name, 'email-auth-password')}"
        entry["email_configs"] = [mail]
    if receiver.pagerduty is not None:
        entry["pagerduty_configs"] = [
            {
                "routing_key_file": f"/run/secrets/{_secret_name(name, 'pagerduty-routing-key')}",
                "send_resolved": receiver.pagerduty.send_resolved,
                "description": '{{ template "pagerduty.default.description" . }}',
            }
        ]
    return entry


def alertmanager_document(alerting: AlertingSettings, base: dict[str, Any]) -> dict[str, Any]:
    """Alertmanager's config: `base` (the bundled file) with routes, receivers and inhibitions."""
    config = dict(base)
    route = dict(config.get("route", {}))
    route.update(
        {
            "receiver": DEFAULT_RECEIVER,
            "group_by": list(alerting.group_by),
            "group_wait": alerting.group_wait,
            "group_interval": alerting.group_interval,
            "repeat_interval": alerting.repeat_interval,
        }
    )
    routes = []
    for severity, receiver in (("critical", alerting.page), ("warning", alerting.ticket)):
        if receiver is not None:
            routes.append({"receiver": receiver, "matchers": [f'severity="{severity}"']})
    if routes:
        route["routes"] = routes
    else:
        route.pop("routes", None)
    config["route"] = route
    config["receivers"] = [{"name": DEFAULT_RECEIVER}] + [
        _receiver(name, receiver) for name, receiver in alerting.receivers.items()
    ]
    return config


# Fields newer than some amtool builds still in distributions (Debian 12 ships 0.25), by the
# Alertmanager version that introduced them. The pinned image (0.35) knows them all.
_NEWER_FIELDS = {"url_file": (0, 26)}


def amtool_version(text: str) -> tuple[int, int] | None:
    """(major, minor) from `amtool --version` output, or None."""
    words = text.replace(",", " ").split()
    for index, word in enumerate(words[:-1]):
        if word == "version":
            version = parse_version(words[index + 1])
            if version is not None and len(version.release) >= 2:
                return version.major, version.minor
    return None


def downgrade_for_amtool(config: dict[str, Any], version: tuple[int, int]) -> tuple[dict[str, Any], list[str]]:
    """A copy of `config` an older amtool can check: fields it predates are swapped for their
    classic form (`url_file` -> a placeholder `url`). Returns the copy and what was swapped."""
    swapped: list[str] = []
    receivers = []
    for receiver in config.get("receivers", []):
        receiver = dict(receiver)
        hooks = []
        for hook in receiver.get("webhook_configs", []):
            hook = dict(hook)
            if "url_file" in hook and version < _NEWER_FIELDS["url_file"]:
                hook.pop("url_file")
                hook["url"] = "http://url-file.invalid/"
                swapped.append(f"{receiver['name']}: webhook url_file")
            hooks.append(hook)
        if hooks:
            receiver["webhook_configs"] = hooks
        receivers.append(receiver)
    return {**config, "receivers": receivers}, swapped
