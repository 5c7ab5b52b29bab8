"""The components' binaries for the process runtime: where they are, what version, how to get them."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from stack.components import REGISTRY
from stack.components.process import BinarySpec
from stack.errors import RuntimeUnavailable
from stack.fileio import atomic_write
from stack.imageref import ImageRef
from stack.settings import Settings
from stack.tools import run
from stack.versions import version_in


def spec(component: str) -> BinarySpec:
    """How `component` runs as a local process: its binary's names, version flag, how to get it."""
    return REGISTRY[component].binary


def binary_names(component: str) -> set[str]:
    return {name for name, _ in spec(component).names} if component in REGISTRY else set()


@dataclass(frozen=True)
class Binary:
    component: str
    path: str
    prefix_args: tuple[str, ...]
    version: str | None
    pinned: str | None

    @property
    def version_differs(self) -> bool:
        return self.version is not None and self.pinned is not None and self.version != self.pinned

    def warning(self) -> str | None:
        if self.version is None:
            return f"{self.component}: could not read the version of {self.path}"
        if self.version_differs:
            consequence = (
                f"its config and flags are rendered for {self.version}"
                if spec(self.component).renders_for_version
                else "the rendered config may use features it lacks"
            )
            return (
                f"{self.component}: {self.path} is version {self.version}, stack.yaml pins {self.pinned}; {consequence}"
            )
        return None


def pinned_version(image: str) -> str | None:
    """`prom/prometheus:v3.14.0` -> `3.14.0` (None for a digest or a tag that is no version)."""
    return ImageRef.parse(image).release


@cache
def _read_version(path: str, flag: str, stamp: str) -> str | None:
    return version_in(run([path, flag], timeout=15).output)


def read_version(path: str, flag: str, known: dict[str, Any] | None = None) -> str | None:
    """The x.y.z version a binary prints for `flag`.

    Kept while the file is unchanged: in this process, and in `known` (a mapping the caller may
    persist) so that later commands do not run every binary again.
    """
    try:
        info = os.stat(path)
    except OSError:
        return None
    stamp = f"{info.st_mtime_ns}:{info.st_size}"
    if known is not None:
        remembered = known.get(path)
        if isinstance(remembered, dict) and remembered.get("stamp") == stamp:
            return remembered.get("version")
    version = _read_version(path, flag, stamp)
    if known is not None:
        known[path] = {"stamp": stamp, "version": version}
    return version


def _executable(candidate: Path) -> bool:
    return candidate.is_file() and os.access(candidate, os.X_OK)


def find(component: str, bin_dir: Path | None) -> tuple[str, tuple[str, ...]] | None:
    """The binary of `component`: in `bin_dir` first, then on PATH, under each of its usual names.

    The Collector's own build (`make collector`, in the cache) comes before PATH: it holds exactly
    the components the rendered config uses.
    """
    found = spec(component)
    names = found.names
    if bin_dir is not None:
        for name, prefix in names:
            if _executable(bin_dir / name):
                return str((bin_dir / name).resolve()), prefix
    if found.own_build:
        from stack.collector_build import built_binary

        built = built_binary()
        if built is not None:
            return str(built), ()
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        for name, prefix in names:
            candidate = Path(directory or ".") / name
            if _executable(candidate):
                return str(candidate), prefix
    return None


def locate(
    settings: Settings, components: Iterable[str], bin_dir: Path | None, known: dict[str, Any] | None = None
) -> tuple[dict[str, Binary], list[str]]:
    """The binaries of `components` that are here, and the components whose binary is not."""
    found: dict[str, Binary] = {}
    missing: list[str] = []
    for component in components:
        located = find(component, bin_dir)
        if located is None:
            missing.append(component)
            continue
        path, prefix = located
        found[component] = Binary(
            component,
            path,
            prefix,
            read_version(path, spec(component).version_flag, known),
            pinned_version(settings.component(component).image),
        )
    return found, missing


def _where(bin_dir: Path | None) -> str:
    return f"{bin_dir} or PATH" if bin_dir else "PATH"


def skipped_line(component: str, bin_dir: Path | None) -> str:
    """Why `component` is left out, and how to get it: one line."""
    names = " or ".join(name for name, _ in spec(component).names)
    return f"skipping {component}: no {names} in {_where(bin_dir)}; {spec(component).get_it}"


def missing_binaries(missing: list[str], bin_dir: Path | None) -> RuntimeUnavailable:
    where = f"{bin_dir} or PATH" if bin_dir else "PATH (set process.bin_dir in stack.yaml to add a directory)"
    parts = []
    for component in missing:
        names = " or ".join(name for name, _ in spec(component).names)
        parts.append(f"{component} ({names}): {spec(component).get_it}")
    disable = ", ".join(f"components.{component}.enabled: false" for component in missing)
    return RuntimeUnavailable(
        f"process runtime: binaries not found in {where}: " + "; ".join(parts),
        hint=f"install them, or disable those components in stack.yaml ({disable})",
    )


class ProjectBinaries:
    """The binaries of one project's components, their versions remembered in `<root>/binaries.json`
    and their version warnings said once (`<root>/warnings-shown.json`), not at every `up`."""

    def __init__(self, settings: Settings, bin_dir: Path | None, root: Path) -> None:
        self.settings, self.bin_dir, self.root = settings, bin_dir, root
        # The warnings of the last lookup not shown before, and all of them.
        self.warnings: list[str] = []
        self._all_warnings: list[str] = []

    def find(self, components: list[str], *, strict: bool = True) -> dict[str, Binary]:
        """The binaries of `components`; RuntimeUnavailable naming all the missing ones when `strict`."""
        if not Path("/proc/self/stat").exists():
            raise RuntimeUnavailable("the process runtime needs Linux (/proc)", hint="use --runtime docker")
        cache = self.root / "binaries.json"
        known: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            known = json.loads(cache.read_text(encoding="utf-8"))
        before = json.dumps(known, sort_keys=True)
        found, missing = locate(self.settings, components, self.bin_dir, known)
        if self.root.is_dir() and json.dumps(known, sort_keys=True) != before:
            with contextlib.suppress(OSError):
                atomic_write(cache, json.dumps(known, indent=1, sort_keys=True) + "\n", mode=0o600)
        self._all_warnings = [warning for binary in found.values() if (warning := binary.warning())]
        # Said once: a version difference shown by one `up` is not repeated by the next ones.
        shown = self._shown_warnings()
        self.warnings = [warning for warning in self._all_warnings if warning not in shown]
        if missing and strict:
            raise missing_binaries(missing, self.bin_dir)
        return found

    def missing(self, components: list[str]) -> list[str]:
        """The components whose binary is not in process.bin_dir or on PATH."""
        return locate(self.settings, components, self.bin_dir)[1]

    def _shown_warnings(self) -> set[str]:
        with contextlib.suppress(OSError, ValueError):
            shown = json.loads((self.root / "warnings-shown.json").read_text(encoding="utf-8"))
            if isinstance(shown, list):
                return {str(item) for item in shown}
        return set()

    def remember_warnings(self) -> None:
        """Record the warnings the last lookup found as shown (after an `up` that showed them)."""
        if not self._all_warnings or set(self._all_warnings) <= self._shown_warnings():
            return
        with contextlib.suppress(OSError):
            atomic_write(self.root / "warnings-shown.json", json.dumps(sorted(self._all_warnings)) + "\n", mode=0o600)
