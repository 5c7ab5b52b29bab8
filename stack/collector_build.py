"""The stack's own `otelcol-contrib`, built from Go modules with the OpenTelemetry Collector Builder.

The builder manifest (scripts/collector/manifest.yaml) lists exactly the components the bundled
configs use. The binary is cached under `~/.cache/stack/otelcol-<hash of the manifest>/`, so a
changed manifest means a new build and an old binary is never mistaken for the current one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from stack.errors import StackError
from stack.tools import run, which

_PACKAGE = Path(__file__).resolve().parent
BINARY_NAME = "otelcol-contrib"
# The builder's own release goes with the core modules the manifest pins.
BUILDER = "go.opentelemetry.io/collector/cmd/builder"
# A cold build downloads and compiles a few hundred modules: minutes on two cores.
BUILD_TIMEOUT_S = 1800


class CollectorBuildError(StackError):
    """The builder (or Go) failed, or is not installed."""


@cache
def manifest_path() -> Path:
    """The manifest: inside the package for a wheel, under scripts/collector/ in a checkout."""
    for candidate in (
        _PACKAGE / "_bundled" / "collector" / "manifest.yaml",
        _PACKAGE.parent / "scripts" / "collector" / "manifest.yaml",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("the Collector builder manifest is missing from the installation")


def manifest_hash(path: Path | None = None) -> str:
    return hashlib.sha256((path or manifest_path()).read_bytes()).hexdigest()[:12]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stack"


def binary_path(manifest: Path | None = None) -> Path:
    """Where the build of this manifest lives (whether or not it has been built yet)."""
    return cache_root() / f"otelcol-{manifest_hash(manifest)}" / BINARY_NAME


def built_binary() -> Path | None:
    """The cached binary for the current manifest, when it has been built."""
    try:
        path = binary_path()
    except FileNotFoundError:
        return None
    return path if path.is_file() and os.access(path, os.X_OK) else None


def find_binary() -> str | None:
    """The Collector `stack validate` runs: the stack's own build first, else otelcol-contrib on PATH."""
    built = built_binary()
    return str(built) if built else which(BINARY_NAME)


def release(manifest: Path | None = None) -> str:
    """The Collector release the manifest pins (dist.version)."""
    document = yaml.safe_load((manifest or manifest_path()).read_text(encoding="utf-8"))
    return str(document["dist"]["version"])


# Where Go's own installer puts it; a non-login shell (CI, cron) may not have it on PATH.
_GO_INSTALL = Path("/usr/local/go/bin/go")


def go_binary() -> str | None:
    found = which("go")
    if found:
        return found
    return str(_GO_INSTALL) if _GO_INSTALL.is_file() and os.access(_GO_INSTALL, os.X_OK) else None


@dataclass(frozen=True)
class BuildResult:
    path: Path
    built: bool  # False: it was already in the cache
    seconds: float


def build(manifest: Path | None = None, *, force: bool = False) -> BuildResult:
    """Build `otelcol-contrib` from `manifest` into the cache, unless it is there already.

    The builder works in a temporary directory; the binary is moved into place in one rename, so an
    interrupted build leaves no half-written binary behind.
    """
    manifest = manifest or manifest_path()
    target = binary_path(manifest)
    if target.is_file() and not force:
        return BuildResult(target, built=False, seconds=0.0)
    go = go_binary()
    if go is None:
        raise CollectorBuildError(
            "cannot build the Collector: `go` is not on PATH",
            hint="install Go (1.26 or newer), or put an otelcol-contrib binary on PATH",
        )
    document = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="otelcol-build-", dir=target.parent) as tmp:
        work = Path(tmp)
        document["dist"]["output_path"] = str(work / "dist")
        # Static: the binary then runs in an image with no C library (tests/support/images.py).
        document["dist"]["cgo_enabled"] = False
        document["dist"]["go"] = go  # the builder would look for `go` on PATH only
        config = work / "manifest.yaml"
        config.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        argv = [go, "run", f"{BUILDER}@v{document['dist']['version']}", "--config", str(config)]
        result = run(argv, timeout=BUILD_TIMEOUT_S, cwd=str(work))
        produced = work / "dist" / document["dist"]["name"]
        if not result.ok or not produced.is_file():
            log = target.parent / "build.log"
            log.write_text(result.output + "\n", encoding="utf-8")
            last = result.output.strip().splitlines()[-1:] or [f"exit code {result.returncode}"]
            raise CollectorBuildError(
                f"building the Collector from {manifest} failed: {last[0][:300]}",
                hint=f"the builder's whole output is in {log}",
            )
        staged = target.with_name(f".{BINARY_NAME}.{os.getpid()}")
        shutil.move(produced, staged)
        staged.chmod(0o755)
        staged.replace(target)
    return BuildResult(target, built=True, seconds=time.monotonic() - started)
