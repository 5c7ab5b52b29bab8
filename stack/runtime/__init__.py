"""Runtimes run the rendered project: Docker Compose (local or remote engine), or local processes.

Readiness, provisioning and backup code talks to a `Runtime` and never knows which one it is.
"""

from __future__ import annotations

from stack.runtime.base import HttpReply, Runtime, ServiceState

__all__ = ["HttpReply", "Runtime", "ServiceState"]
