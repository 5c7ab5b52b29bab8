"""A Grafana stand-in for the process runtime: a program that starts as the Grafana binary does.

Grafana cannot be had on this machine (AGPL, no package), so the process runtime's tests run this
in its place. What it reads follows the binary, not the Docker image:

- settings come from `conf/defaults.ini` (admin/admin, port 3000), then `GF_<SECTION>_<KEY>`
  environment variables, then `$__file{path}` and `$__env{NAME}` are expanded in the values, in
  that order (Grafana's `pkg/setting`: applyEnvVariableOverrides, then expandConfig);
- `GF_<KEY>__FILE` means nothing to the binary: it is the Docker image's `run.sh` that reads such
  a file into `GF_<KEY>`. A stand-in given only `GF_SECURITY_ADMIN_PASSWORD__FILE` starts as
  admin/admin, as the real binary would.

It then serves the HTTP API of tests/support/fake_grafana.py with those admin credentials, logs its
settings' sources (never a secret) and stops on SIGTERM.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

VERSION = "13.2.0"
DEFAULTS = {
    ("server", "http_addr"): "",
    ("server", "http_port"): "3000",
    ("security", "admin_user"): "admin",
    ("security", "admin_password"): "admin",
}
_EXPAND = re.compile(r"\$__(file|env)\{([^}]*)\}")


def settings(environ: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """The settings the Grafana binary ends up with for `environ` (the keys in DEFAULTS)."""
    found = dict(DEFAULTS)
    for section, key in DEFAULTS:
        name = f"GF_{section.upper()}_{key.upper()}"
        if name in environ:
            found[(section, key)] = environ[name]

    def expand(match: re.Match[str]) -> str:
        kind, argument = match.groups()
        if kind == "env":
            return environ.get(argument, "")
        # Grafana trims the file's content (a trailing newline is not part of the value).
        return Path(argument).read_text(encoding="utf-8").strip()

    return {name: _EXPAND.sub(expand, value) for name, value in found.items()}


def main(argv: list[str]) -> int:
    if "--version" in argv or "-v" in argv:
        print(f"grafana version {VERSION}")
        return 0
    from tests.support.fake_grafana import FakeGrafana, fake_grafana

    config = settings(os.environ)
    host = config[("server", "http_addr")] or "0.0.0.0"
    port = int(config[("server", "http_port")])
    grafana = FakeGrafana(
        admin_user=config[("security", "admin_user")],
        admin_password=config[("security", "admin_password")],
        version=VERSION,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with fake_grafana(grafana, address=(host, port)):
        print(f'logger=settings level=info msg="Starting Grafana" version={VERSION} cwd={os.getcwd()}', flush=True)
        stop.wait()
    return 0


def install(directory: Path, name: str = "grafana") -> Path:
    """Put an executable `name` in `directory` that runs this stand-in (from this checkout)."""
    directory.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[2]
    path = directory / name
    path.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "from tests.support.grafana_standin import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    path.chmod(0o755)
    return path


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
