"""Grafana's stand-in inside a container (tests/support/images.py `grafana_standin_image`):
tests/support/fake_grafana.py, which follows Grafana's documented HTTP API, served on :3000 as the official
image serves Grafana, with the admin password read from where compose mounts it (GF_SECURITY_ADMIN_PASSWORD__FILE).

Run by the image's own Python (Debian's interpreter and standard library); fake_grafana.py sits beside it.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fake_grafana import FakeGrafana, fake_grafana


def main() -> None:
    password_file = os.environ.get("GF_SECURITY_ADMIN_PASSWORD__FILE")
    password = Path(password_file).read_text().strip() if password_file else os.environ["GF_SECURITY_ADMIN_PASSWORD"]
    # Blocked, so that sigwait receives them (Grafana stops at once on either).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    with fake_grafana(FakeGrafana(admin_password=password), address=("0.0.0.0", 3000)) as grafana:
        print(f"grafana stand-in: HTTP Server Listen address=[::]:3000 version={grafana.version}", flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":
    main()
