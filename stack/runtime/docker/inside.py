"""HTTP requests made from inside the project's network, with the client the container has: busybox
or GNU wget (GET, POST) everywhere there is a shell, curl (every method) where the component's image
ships it. Unpublished ports (Prometheus' admin API) stay unpublished that way."""

from __future__ import annotations

import re
from collections.abc import Mapping

from stack.components import REGISTRY
from stack.errors import StackError
from stack.runtime.base import HttpReply
from stack.runtime.docker.errors import first_error_line
from stack.settings import Settings
from stack.tools import ToolResult

_STATUS = re.compile(r"HTTP/\d(?:\.\d)? (\d{3})")


def route(settings: Settings, service: str, port: str, path: str) -> tuple[str, str]:
    """The service whose container sends the request, and the URL it requests. Shell-less images are
    reached from a sibling that has a shell."""
    component = REGISTRY[service]
    container_port = component.port_spec(port).container
    if component.has_shell:
        return service, f"http://127.0.0.1:{container_port}{path}"
    via = next((name for name in settings.enabled() if REGISTRY[name].has_shell), None)
    if via is None:
        raise StackError(
            f"cannot reach {service}: its port {port} is not published and no component with a shell runs",
            hint=f"publish it: set components.{service}.port in stack.yaml",
        )
    return via, f"http://{service}:{container_port}{path}"


def has_curl(service: str) -> bool:
    return REGISTRY[service].has_curl


def wget_argv(
    service: str, url: str, *, method: str, body: bytes | None, headers: Mapping[str, str] | None
) -> list[str]:
    """The wget command line for the request (wget knows GET and POST only)."""
    if method not in ("GET", "POST"):
        raise StackError(f"cannot send {method} to {service} from inside the network (wget knows GET and POST)")
    # No `-T`: some busybox builds crash on it (Debian's 1.35, exit 139); the exec's own timeout bounds it.
    argv = ["wget", "-S", "-q", "-O", "-"]
    for key, value in (headers or {}).items():
        argv += ["--header", f"{key}: {value}"]
    if method == "POST":
        argv += ["--post-data", (body or b"").decode("utf-8")]
    argv.append(url)
    return argv


def parse_wget(result: ToolResult, url: str) -> HttpReply:
    """What `wget -S -O -` printed, as an HttpReply; ConnectionError when nothing answered."""
    statuses = _STATUS.findall(result.stderr)
    if statuses:
        headers: dict[str, str] = {}
        for line in result.stderr.splitlines():
            key, sep, value = line.strip().partition(": ")
            if sep and not key.startswith(("wget", "Connecting")) and " " not in key:
                headers[key.lower()] = value
        return HttpReply(int(statuses[-1]), result.stdout.encode(), headers)
    if result.returncode == 124 or "timed out" in result.stderr.lower():
        raise TimeoutError(f"{url}: no answer in time")
    raise ConnectionError(f"{url}: {first_error_line(result.stderr or result.stdout)}")


def _curl_quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("\t", "\\t") + '"'


def curl_config(url: str, *, method: str, body: bytes | None, headers: Mapping[str, str] | None, timeout: float) -> str:
    """The whole request (headers with tokens, body) as a curl config read from stdin (`curl --config -`),
    so that no secret shows on a command line."""
    lines = ["silent", "show-error", "include", f"request = {_curl_quote(method)}", f"url = {_curl_quote(url)}"]
    lines.append(f"max-time = {max(1, round(timeout))}")
    for key, value in {**(headers or {}), "Expect": ""}.items():
        lines.append(f"header = {_curl_quote(f'{key}: {value}' if value else f'{key}:')}")
    if body is not None:
        lines.append(f"data-binary = {_curl_quote(body.decode('utf-8'))}")
    return "\n".join(lines) + "\n"


def parse_curl(result: ToolResult, url: str) -> HttpReply:
    """What `curl --include` printed (status line, headers, blank line, body), as an HttpReply."""
    if result.returncode == 28:
        raise TimeoutError(f"{url}: no answer in time")
    if result.returncode != 0 and not result.stdout.startswith("HTTP/"):
        raise ConnectionError(f"{url}: {first_error_line(result.stderr or result.stdout)}")
    text = result.stdout
    while True:
        head, _, rest = text.partition("\r\n\r\n" if "\r\n\r\n" in text else "\n\n")
        if rest.startswith("HTTP/"):  # an interim answer (100 Continue) before the real one
            text = rest
            continue
        break
    status_line, *header_lines = head.splitlines()
    match = _STATUS.search(status_line)
    if not match:
        raise ConnectionError(f"{url}: unexpected answer {status_line[:80]!r}")
    headers = {}
    for line in header_lines:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return HttpReply(int(match.group(1)), rest.encode("utf-8"), headers)
