"""The steps every command shares: load the settings, render, write, with the secrets in place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stack.components.grafana import unknown_dashboard_pack
from stack.errors import OutputError, UsageError
from stack.fileio import atomic_write
from stack.net.address import http_url, shown_host
from stack.paths import Paths, settings_file_problem
from stack.rules.packs import unknown_threshold
from stack.secrets import GRAFANA_ADMIN_PASSWORD, SecretStore
from stack.settings import Settings, SettingsCheck, load_settings

if TYPE_CHECKING:
    from stack.render import RenderedProject

STARTER = Path(__file__).parent / "starter.yaml"

# The names in stack.yaml that only the bundled files know, checked by the modules that read them
# (settings sits below those). Every command loads settings through `load` or passes these.
SETTINGS_CHECKS: tuple[SettingsCheck, ...] = (unknown_threshold, unknown_dashboard_pack)


def load(paths: Paths) -> Settings:
    """The validated settings at `paths` (the defaults when there is no settings file)."""
    return load_settings(paths.settings_source(), checks=SETTINGS_CHECKS)


@dataclass(frozen=True)
class RenderResult:
    compose_file: Path
    services: list[str]
    secrets_dir: Path


def render_to_disk(paths: Paths, settings: Settings | None = None) -> RenderResult:
    """Render the project into `paths.render_dir`, generating the Grafana password the first time."""
    # Here rather than at the top: commands that only load the settings (`status`) render nothing.
    from stack.render import render_project, write_project

    settings = settings or load(paths)
    project: RenderedProject = render_project(settings)
    compose_file = write_project(project, paths.render_dir)
    if settings.component("grafana").enabled:
        SecretStore.for_paths(paths).ensure(GRAFANA_ADMIN_PASSWORD)
    return RenderResult(compose_file, list(project.compose["services"]), paths.secrets_dir)


@dataclass(frozen=True)
class Credentials:
    url: str | None
    user: str
    password: str
    stored_at: Path


def credentials(paths: Paths) -> Credentials:
    """Grafana's admin credentials, generating the password if it does not exist yet."""
    settings = load(paths)
    grafana = settings.component("grafana")
    if not grafana.enabled:
        # No password is generated (nor a URL shown) for a Grafana that does not run.
        raise UsageError(
            f"{paths.settings_file}: grafana is disabled, so it has no credentials",
            hint="enable components.grafana to use it",
        )
    store = SecretStore.for_paths(paths)
    password = store.ensure(GRAFANA_ADMIN_PASSWORD)
    url = http_url(shown_host(settings.bind_address), grafana.port, "/") if grafana.port else None
    from stack.components.proxy import public_url

    # Behind the TLS proxy, the URL users open is the public one.
    url = public_url(settings) or url
    user = settings.components.grafana.admin_user
    return Credentials(url, user, password, store.path(GRAFANA_ADMIN_PASSWORD))


def init_settings(paths: Paths, *, force: bool = False) -> Path:
    """Write the commented starter stack.yaml; refuse to overwrite one unless `force`."""
    target = paths.settings_file
    problem = settings_file_problem(target)
    if problem:
        raise UsageError(f"{target}: {problem}", hint="name a regular file with -c")
    if target.exists() and not force:
        raise UsageError(f"{target}: already exists", hint="use --force to overwrite it")
    # Through a symlink, replace the file it points at and keep the link (the user's dotfiles setup).
    written = Path(os.path.realpath(target)) if target.is_symlink() else target
    try:
        atomic_write(written, STARTER.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OutputError(f"{target}: cannot write: {exc.strerror}") from None
    return target
