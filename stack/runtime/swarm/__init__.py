"""The Swarm runtime, as a package: runtime.py (`SwarmRuntime`: `docker stack deploy` and the Engine
API of a manager, built on the Docker runtime's CLI and Engine paths) and tasks.py (services and tasks
read into ServiceState). The stack file it deploys is rendered by stack.runtime.swarmrender."""

from __future__ import annotations

from stack.runtime.swarm.runtime import SwarmRuntime
from stack.runtime.swarm.tasks import SwarmError, service_state

__all__ = ["SwarmError", "SwarmRuntime", "service_state"]
