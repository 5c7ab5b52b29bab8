"""The Docker runtime, as a package: what lives where.

- runtime.py: `DockerRuntime`, the Runtime protocol over the two ways below;
- cli.py: the docker CLI (`docker`, `docker compose`), its command lines and how they run;
- engine.py: the Engine API (docker SDK): image pulls with progress, archive streams, health reads;
- dialstdio.py: the Engine API over `ssh ... docker system dial-stdio`, for `ssh://` engines;
- errors.py: one reading of docker's failures (CLI stderr and Engine API alike) into a StackError;
- states.py: `compose ps` and `inspect` output read into ServiceState / ContainerHealth;
- inside.py: HTTP requests made from inside the project's network (wget, or curl where the image has it).

These modules are the only ones that import python_on_whales and the docker SDK (with swarm.py, which
builds on them).
"""

from __future__ import annotations

from stack.runtime.docker.engine import PullProgress
from stack.runtime.docker.errors import DockerError, explain, ssh_destination
from stack.runtime.docker.runtime import DockerRuntime
from stack.runtime.docker.states import parse_compose_ps

__all__ = ["DockerError", "DockerRuntime", "PullProgress", "explain", "parse_compose_ps", "ssh_destination"]
