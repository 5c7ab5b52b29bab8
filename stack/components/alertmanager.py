from __future__ import annotations

from stack.alerting import alertmanager_document, receiver_secrets
from stack.components.base import (
    Component,
    ConfigFile,
    PortSpec,
    Probe,
    RenderContext,
    SecretMount,
    bundled_config,
)


class Alertmanager(Component):
    name = "alertmanager"
    title = "Alertmanager"
    has_shell = True
    ports = (PortSpec("http", 9093, "port"),)
    readiness = Probe("http", "/-/ready")
    metrics = Probe("http", "/metrics")
    state = {"data": "/alertmanager"}

    def configs(self, ctx: RenderContext) -> list[ConfigFile]:
        config = alertmanager_document(ctx.settings.alerting, bundled_config("alertmanager.yml"))
        return [
            ConfigFile("alertmanager-config", "/etc/alertmanager/alertmanager.yml", self.with_overrides(ctx, config))
        ]

    def secrets(self, ctx: RenderContext) -> list[SecretMount]:
        return [SecretMount(secret.name, secret.compose_source()) for secret in receiver_secrets(ctx.settings.alerting)]
