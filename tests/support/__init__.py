"""What the tests share: engines, images, real binaries, fakes and stand-ins, and their data files."""

from __future__ import annotations

from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
# Settings files, recorded payloads, certificates and rule files the tests read.
DATA = SUPPORT / "data"
REPO = SUPPORT.parents[1]
