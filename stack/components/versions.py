"""Whether the version of a component that will run can read what the settings render for it."""

from __future__ import annotations

from collections.abc import Mapping

from packaging.version import InvalidVersion, Version

from stack.components import REGISTRY
from stack.settings import Settings

VERSION_HINT = "use a newer binary (process.bin_dir) or image, or the plain form of the setting"


def unmet_requirements(settings: Settings, versions: Mapping[str, str | None], *, source: str) -> list[str]:
    """One message per setting the component's `versions[name]` is too old for.

    `source` says where the versions come from ("image tag", "binary"); an unknown version is not
    judged (the runtime warns about it elsewhere).
    """
    problems: list[str] = []
    for name in settings.enabled():
        version = versions.get(name)
        if version is None:
            continue
        try:
            running = Version(version)
        except InvalidVersion:
            continue
        for need in REGISTRY[name].requirements(settings):
            if running < Version(need.minimum):
                problems.append(
                    f"{need.setting}: needs {name} >= {need.minimum} for {need.feature}; the {source} is {version}"
                )
    return problems
