"""Which components a backup or restore covers (`--only`), checked against the settings."""

from __future__ import annotations

from collections.abc import Iterable

from stack.backup.registry import SECRETS, STEPS
from stack.errors import SettingsError
from stack.settings import Settings


def parse_only(value: str | None, *, allow_secrets: bool = False) -> list[str] | None:
    """`--only prometheus,grafana` as a list (None: everything); unknown names are a usage error."""
    if value is None:
        return None
    known = [*STEPS, SECRETS] if allow_secrets else list(STEPS)
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise SettingsError("--only: no component given", hint=f"choose from: {', '.join(known)}")
    for name in names:
        if name not in known:
            raise SettingsError(f"--only: unknown component {name!r}", hint=f"choose from: {', '.join(known)}")
    return list(dict.fromkeys(names))


def enabled_with_state(settings: Settings, only: Iterable[str] | None) -> list[str]:
    """The enabled components that keep state, limited to `only`; a disabled one named in `only` is an error."""
    chosen = [name for name in STEPS if settings.component(name).enabled]
    if only is None:
        return chosen
    wanted = [name for name in only if name != SECRETS]
    for name in wanted:
        if name not in chosen:
            raise SettingsError(
                f"--only: {name} is disabled in stack.yaml", hint=f"enabled: {', '.join(chosen) or 'none'}"
            )
    return [name for name in chosen if name in wanted]
