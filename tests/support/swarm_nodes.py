"""A multi-node swarm on one machine: the session's engine as the manager, and worker engines each in a
network namespace of its own (iproute2: `ip netns`, veth pairs on a bridge) and a UTS namespace of its
own (so that each node has its own hostname, which is what the stack puts on every signal).

Addresses: a /24 of 10.250.0.0/16 picked from this process's pid, the bridge on .1 (the manager's
address), workers from .11. Everything is removed at teardown; namespaces and bridges of sessions that
were killed are swept by the next one (their names carry the pid of the session that made them).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from tests.support.engine import COMPOSE_PLUGIN, ENGINE_PARENT, ENGINE_PREFIX, Engine, stop_engine
from tests.support.swarm_support import free_udp_port

PREFIX = "stk"
_OURS = re.compile(rf"^{PREFIX}(\d+)(?:n\d+|br)$")


@dataclass(frozen=True)
class Node:
    name: str
    address: str
    engine: Engine


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def sweep_namespaces() -> None:
    """Remove the namespaces and bridges of sessions that are gone."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout.split()
    links = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True, text=True, check=False)
    bridges = [line.split(":")[1].strip() for line in links.stdout.splitlines() if ":" in line]
    for name in [*names, *bridges]:
        match = _OURS.match(name)
        if match and not psutil.pid_exists(int(match.group(1))):
            if name.endswith("br"):
                subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
            else:
                subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def subnet() -> str:
    return f"10.250.{os.getpid() % 250}"


@contextlib.contextmanager
def bridge() -> Iterator[str]:
    """A bridge in the machine's namespace, the manager's address on it, forwarding between its ports."""
    name = f"{PREFIX}{os.getpid()}br"
    ip("link", "add", name, "type", "bridge")
    rule = ["FORWARD", "-i", name, "-o", name, "-j", "ACCEPT"]
    try:
        ip("addr", "add", f"{subnet()}.1/24", "dev", name)
        ip("link", "set", name, "up")
        # Docker's FORWARD policy is DROP: let the nodes talk to each other across the bridge.
        subprocess.run(["iptables", "-I", *rule], capture_output=True, check=False)
        yield name
    finally:
        subprocess.run(["iptables", "-D", *rule], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


def start_worker_engine(index: int, bridge_name: str) -> Node:
    """dockerd in a new network namespace (its veth on the bridge) with its own hostname."""
    netns = f"{PREFIX}{os.getpid()}n{index}"
    address = f"{subnet()}.{10 + index}"
    host_side = f"{PREFIX}{os.getpid() % 100000}v{index}"
    ip("netns", "add", netns)
    ip("link", "add", host_side, "type", "veth", "peer", "name", "eth0", "netns", netns)
    ip("link", "set", host_side, "master", bridge_name, "up")
    ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
    ip("-n", netns, "link", "set", "eth0", "up")
    ip("-n", netns, "link", "set", "lo", "up")
    ip("-n", netns, "route", "add", "default", "via", f"{subnet()}.1")
    root = Path(tempfile.mkdtemp(prefix=ENGINE_PREFIX, dir=ENGINE_PARENT))
    (root / "owner.pid").write_text(f"{os.getpid()}\n")
    (root / "config" / "cli-plugins").mkdir(parents=True)
    (root / "config" / "cli-plugins" / "docker-compose").symlink_to(COMPOSE_PLUGIN)
    name = f"node{index}"
    dockerd = [
        "dockerd",
        "--bridge=none",
        "--storage-driver=vfs",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'dockerd.pid'}",
        "--host",
        f"unix://{root / 'docker.sock'}",
    ]
    # nsenter, not `ip netns exec`: that one mounts a sysfs of its own, where dockerd finds no cgroups.
    # Every step execs the next one: the pid Popen sees is dockerd's.
    argv = [
        "nsenter", f"--net=/var/run/netns/{netns}", "unshare", "--uts",
        "sh", "-c", f'hostname {name} && exec "$@"', "sh",
    ]  # fmt: skip
    with (root / "dockerd.log").open("wb") as log:
        process = subprocess.Popen([*argv, *dockerd], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    engine = Engine(root, process.pid)

    def answers() -> bool:
        if process.poll() is not None:
            tail = (root / "dockerd.log").read_text(errors="replace").splitlines()[-5:]
            raise RuntimeError(f"dockerd in {netns} exited {process.returncode}: " + " | ".join(tail))
        return engine.docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=10).returncode == 0

    try:
        Retrying(stop=stop_after_delay(60), wait=wait_fixed(0.5), retry=retry_if_result(lambda ok: not ok))(answers)
    except (RetryError, RuntimeError):
        stop_engine(engine)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        raise
    return Node(name, address, engine)


def stop_worker(node: Node) -> None:
    node.engine.docker("swarm", "leave", "--force", check=False, timeout=60)
    stop_engine(node.engine)
    netns = f"{PREFIX}{os.getpid()}n{node.name.removeprefix('node')}"
    subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)


@contextlib.contextmanager
def multi_node_swarm(manager: Engine, workers: int, *, label: str = "stack.role=backend") -> Iterator[list[Node]]:
    """The manager engine (this machine's namespace) and `workers` worker engines as one swarm; the
    manager carries the backend label. Everyone leaves and the workers stop at the end."""
    sweep_namespaces()
    with bridge() as bridge_name:
        manager_address = f"{subnet()}.1"
        port = free_udp_port()
        listen = f"{manager_address}:{port}"
        manager.docker(
            "swarm", "init", "--advertise-addr", listen, "--listen-addr", listen,
            "--data-path-port", str(free_udp_port()),
        )  # fmt: skip
        nodes: list[Node] = []
        try:
            node_id = manager.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
            manager.docker("node", "update", "--label-add", label, node_id)
            token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
            for index in range(1, workers + 1):
                node = start_worker_engine(index, bridge_name)
                nodes.append(node)
                node.engine.docker(
                    "swarm", "join", "--token", token, "--advertise-addr", node.address,
                    "--listen-addr", f"{node.address}:2377", listen,
                )  # fmt: skip
            yield nodes
        finally:
            for node in nodes:
                stop_worker(node)
            manager.docker("swarm", "leave", "--force", check=False)
            # Swarm leaves its docker_gwbridge behind, in this machine's namespace: the next swarm here would
            # publish host-mode ports through a stale one.
            manager.docker("network", "rm", "docker_gwbridge", check=False)
