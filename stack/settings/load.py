"""Reading stack.yaml: parse, validate, check, and raise SettingsError as one line naming file and key."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stack.errors import SettingsError
from stack.paths import settings_file_problem
from stack.settings.checks import Problem, SettingsCheck, consistency
from stack.settings.errors import describe, dotted, where
from stack.settings.models import Settings
from stack.yamlio import LoadedYaml, YamlLimitError, YamlSyntaxError, load_file


def parse_settings(
    data: Any,
    *,
    loaded: LoadedYaml | None = None,
    source: Path | None = None,
    security: bool = True,
    checks: Sequence[SettingsCheck] = (),
) -> Settings:
    """Validate a settings mapping; raise SettingsError naming the file, line and key path.

    `security=False` lets insecure but well-formed settings through, for `stack doctor` to report on.
    `checks` run last, in order: the names that only higher layers know (stack.project.SETTINGS_CHECKS).
    """
    loaded = loaded or LoadedYaml(data=data)
    where_file = str(source) if source else "stack.yaml"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SettingsError(f"{where_file}: expected a mapping of settings at the top level")
    try:
        base_dir = source.parent if source else None
        settings = Settings.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        path, message, hint = describe(exc.errors()[0], loaded)
        raise SettingsError(f"{where(source, loaded, path)}: {dotted(path)}: {message}", hint=hint) from None
    problem: Problem | None = consistency(settings, loaded, security=security)
    for check in checks:
        problem = problem or check(settings)
    if problem:
        path, message, hint = problem
        raise SettingsError(f"{where(source, loaded, path)}: {dotted(path)}: {message}", hint=hint)
    return settings


def read_settings_file(path: Path) -> LoadedYaml:
    """Parse the settings file at `path`; SettingsError (one line, file and line) when it cannot be."""
    try:
        return load_file(path)
    except YamlLimitError as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise SettingsError(
            f"{where}: refused: {exc.problem}",
            hint="a settings file is a small regular YAML file; see docs/hostile-input.md",
        ) from None
    except YamlSyntaxError as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise SettingsError(
            f"{where}: malformed YAML: {exc.problem}", hint="check the indentation and quoting"
        ) from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: cannot be read: not UTF-8 text") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def load_settings(path: Path | None, *, security: bool = True, checks: Sequence[SettingsCheck] = ()) -> Settings:
    """Settings from `path`, or the defaults when `path` is None or does not exist.

    A name taken by something other than a regular file is an error (see settings_file_problem).
    """
    if path is None:
        return Settings()
    problem = settings_file_problem(path)
    if problem:
        raise SettingsError(f"{path}: {problem}", hint="point -c (or STACK_CONFIG) at a regular YAML file")
    if not path.exists():
        return Settings()
    loaded = read_settings_file(path)
    return parse_settings(loaded.data, loaded=loaded, source=path, security=security, checks=checks)
