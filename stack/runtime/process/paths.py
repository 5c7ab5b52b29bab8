"""Where a local component's files are: its container paths carried over to this machine.

A config at `/etc/prometheus/x.yml` lives at `<root>/prometheus/rendered/etc/prometheus/x.yml`; the
`data` volume mounted at `/prometheus` is `<root>/prometheus/data`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from stack.components import REGISTRY
from stack.components.base import RenderContext, Topology
from stack.errors import StackError
from stack.paths import Paths
from stack.settings import Settings

# Regenerated at every start; a name no component uses for its state.
RENDERED_DIR = "rendered"


def resolve(base: Path | None, value: str) -> Path:
    """`value` (`~` expanded) against `base` when it is relative, made absolute."""
    path = Path(value).expanduser()
    return path if path.is_absolute() or base is None else (base / path).absolute()


def process_root(settings: Settings, paths: Paths) -> Path:
    """`<process.data_dir or .stack-state/process>/<project>`, absolute: processes run in their own
    directories and get paths under it in their flags."""
    data_dir = settings.process.data_dir
    base = resolve(paths.base_dir, data_dir) if data_dir else paths.state_dir / "process"
    return (base / settings.project).absolute()


def bin_dir(settings: Settings, paths: Paths) -> Path | None:
    """process.bin_dir, absolute, when it is set."""
    given = settings.process.bin_dir
    return resolve(paths.base_dir, given).absolute() if given else None


def config_top(target: str) -> str:
    """The directory a config's path is carried over with: its first two levels (`/etc/prometheus`)."""
    return str(PurePosixPath(*PurePosixPath(target).parts[:3]))


@dataclass(frozen=True)
class PathMap:
    """Container paths of one component -> paths on this machine (longest prefix first)."""

    prefixes: tuple[tuple[str, Path], ...]

    @classmethod
    def of(cls, prefixes: list[tuple[str, Path]]) -> PathMap:
        return cls(tuple(sorted(set(prefixes), key=lambda item: -len(item[0]))))

    def local(self, container_path: str) -> Path | None:
        for prefix, local in self.prefixes:
            if container_path == prefix:
                return local
            if container_path.startswith(prefix.rstrip("/") + "/"):
                return local / container_path[len(prefix.rstrip("/")) + 1 :]
        return None

    def value(self, text: str) -> str:
        """A value that may be a container path, or `--flag=PATH`."""
        found = self.local(text)
        if found is not None:
            return str(found)
        flag, equals, rest = text.partition("=")
        if equals and flag.startswith("-"):
            found = self.local(rest)
            if found is not None:
                return f"{flag}={found}"
        return text

    def arguments(self, service: str, argv: list[str]) -> list[str]:
        """A command's arguments with container paths made local; any other absolute path refused."""
        arguments = [self.value(arg) for arg in argv]
        for given, mapped in zip(argv, arguments, strict=True):
            # In a container an absolute path can only reach the container; here it would reach the
            # whole machine (`rm -rf /x`): only the component's own paths are allowed.
            path = given.partition("=")[2] if given.startswith("-") else given
            if given == mapped and path.startswith("/") and path != "/dev/null":
                raise StackError(f"{service}: {path} is not part of its state or configs", hint="exec refuses it")
        return arguments


def component_paths(settings: Settings, root: Path, service: str, topology: Topology) -> PathMap:
    """The state directories and config directories of a running (or stopped) component."""
    if service not in REGISTRY:
        raise StackError(f"unknown component {service!r}")
    component = REGISTRY[service]
    home = root / service
    prefixes: list[tuple[str, Path]] = [(path, home / key) for key, path in component.state.items()]
    ctx = RenderContext(settings=settings, topology=topology)
    with contextlib.suppress(Exception):
        for config in component.configs(ctx):
            top = config_top(config.target)
            prefixes.append((top, home / RENDERED_DIR / top.lstrip("/")))
    return PathMap.of(prefixes)
