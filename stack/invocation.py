"""How the user typed `stack`, so that a hint names a command that works in their shell.

`make up` runs `.venv/bin/stack` with the virtualenv inactive: a hint saying `stack ...` then gives
"command not found". Hints say `make up RUNTIME=process` under make, the path the user ran `stack`
by when it is not on PATH, and plain `stack` otherwise.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def stack_command() -> str:
    """`stack` when that finds this program on PATH, else the path it was run by."""
    ran = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if ran is None or ran.name != "stack":
        return "stack"
    found = shutil.which("stack")
    if found and Path(found).resolve() == ran.resolve():
        return "stack"
    try:
        relative = os.path.relpath(ran)
    except ValueError:
        return str(ran)
    return relative if len(relative) < len(str(ran)) else str(ran)


def no_docker_command() -> str:
    """The one command that starts the stack without Docker, as this user can type it."""
    if os.environ.get("MAKELEVEL"):
        return "make up RUNTIME=process"
    return f"{stack_command()} up --runtime process --skip-missing"
