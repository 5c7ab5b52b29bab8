"""Private temporary directories that a killed process cannot leave behind for good.

Each carries its process id in its name; the next run removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive
    return True


def sweep_private_tempdirs(prefix: str, parent: Path | None = None) -> list[Path]:
    """Remove the `<prefix><pid>-*` directories in $TMPDIR (or `parent`) whose process is gone.

    What a SIGKILL leaves (a restore's spooled archive, a half-copied grafana.db: hundreds of MB)
    is found by the pid in its name; a live process's directory, or one not ours, is never touched.
    """
    parent = parent or Path(tempfile.gettempdir())
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)-[A-Za-z0-9_]+$")
    removed = []
    with contextlib.suppress(OSError):
        for path in parent.iterdir():
            match = pattern.match(path.name)
            if not match or alive(int(match.group(1))):
                continue
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink() and path.stat().st_uid == os.getuid():
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
    return removed


@contextlib.contextmanager
def private_tempdir(prefix: str) -> Any:
    """A 0700 temporary directory, removed with everything in it afterwards.

    Its name carries this process's id, so that when a SIGKILL skips the removal, the next run's
    `private_tempdir(prefix)` sweeps it (see sweep_private_tempdirs).
    """
    sweep_private_tempdirs(prefix)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
