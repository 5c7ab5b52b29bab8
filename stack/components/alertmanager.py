from __future__ import annotations

from stack.components.base import (
    Component,
    ConfigFile,
    EndpointSpec,
    PortSpec,
    Probe,
    RenderContext,
    Requirement,
    SecretMount,
    bundled_config,
)
from stack.components.process import Address, BinarySpec, LocalProcess
from stack.settings import SecretRef, Settings


class Alertmanager(Component):
    name = "alertmanager"
    title = "Alertmanager"
    binary = BinarySpec(
        # Debian's package names the binary prometheus-alertmanager.
        (("alertmanager", ()), ("prometheus-alertmanager", ())),
        "--version",
        "`apt-get install prometheus-alertmanager`, or download it from https://prometheus.io/download/",
    )
    has_shell = True
    ports = (PortSpec("http", 9093, "port"),)
    readiness = Probe("http", "/-/ready")
    endpoints = (EndpointSpec("http", "Alertmanager", 20),)
    metrics = Probe("http", "/metrics")
    state = {"data": "/alertmanager"}

    def adapt_process(self, process: LocalProcess, address: Address) -> None:
        process.argv.append(f"--web.listen-address={address('http')}")

    def configs(self, ctx: RenderContext) -> list[ConfigFile]:
        # Imported when rendering only: `stack status` reads the registry and renders nothing.
        from stack.alerting import alertmanager_document

        config = alertmanager_document(ctx.settings.alerting, bundled_config("alertmanager.yml"))
        return [
            ConfigFile("alertmanager-config", "/etc/alertmanager/alertmanager.yml", self.with_overrides(ctx, config))
        ]

    def secrets(self, ctx: RenderContext) -> list[SecretMount]:
        from stack.alerting import receiver_secrets

        return [SecretMount(secret.name, secret.compose_source()) for secret in receiver_secrets(ctx.settings.alerting)]

    def requirements(self, settings: Settings) -> list[Requirement]:
        # A webhook URL kept as a secret is rendered as `url_file` (never inline: rule 4), which
        # Alertmanager reads from 0.26 on; Debian 12's 0.25 refuses the whole config at start.
        return [
            Requirement(
                "webhook url_file (a webhook URL given as a secret)", "0.26.0", f"alerting.receivers.{name}.webhook.url"
            )
            for name, receiver in settings.alerting.receivers.items()
            if receiver.webhook is not None and isinstance(receiver.webhook.url, SecretRef)
        ]
