"""The constrained values of stack.yaml (durations, sizes, images, addresses, names) and the base model.

Each validator raises ValueError with a sentence the error report (`errors.py`) turns into one line.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

from stack.imageref import ImageRef
from stack.units import parse_duration, parse_size

# Every duration ends up in a Go `time.Duration` (int64 nanoseconds) in Prometheus, Loki, Tempo or
# Alertmanager; past this they exit at start ("duration out of range").
MAX_GO_DURATION_SECONDS = (2**63 - 1) / 1e9
# GOMEMLIMIT and Docker's memory limit are int64 bytes; past this Go dies with a fatal error.
MAX_MEMORY_BYTES = 2**63 - 1
# Docker Compose names a container `<project>-<service>-1`, which is also its host name: a DNS
# label of at most 63 characters. The longest service, `-otel-collector-1`, takes 17 of them.
MAX_PROJECT_LENGTH = 63 - len("-otel-collector-1")
# Grafana keeps a login in a varchar(190); a ':' cannot be sent in HTTP basic auth.
MAX_ADMIN_USER_LENGTH = 190


def _duration(value: str) -> str:
    value = str(value).strip()
    if value.startswith("-") or value in ("0", ""):
        raise ValueError(f"{value!r} must be longer than zero")
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"{value!r} must be longer than zero")
    if seconds > MAX_GO_DURATION_SECONDS:
        raise ValueError(f"{value!r} is longer than a Go duration can hold (about 292 years)")
    return value


def _size(value: str | int) -> str:
    size = parse_size(value)
    if size < 16 * 1024**2:
        raise ValueError(f"{value!r} is below the 16M a component needs at the very least")
    if size > MAX_MEMORY_BYTES:
        raise ValueError(f"{value!r} is more than a Go memory limit can hold (8 EiB)")
    return str(value).strip()


# The image reference grammar of the OCI distribution spec (github.com/distribution/reference):
# [host[:port]/]path[:tag][@digest], path components lowercase with `.`, `_`, `__` or `-` between.
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[_.]|__|[-]+)[a-z0-9]+)*"
_IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?",
    re.ASCII,
)
# The spec's limit on the name part (without tag and digest).
MAX_IMAGE_NAME_LENGTH = 255


def _image(value: str) -> str:
    # Name, tag and a sha512 digest fit in 512; the length check keeps the regex linear.
    if len(value) > 512 or not _IMAGE_REFERENCE.fullmatch(value):
        raise ValueError(f"{value!r} is not an image reference such as registry.example.com/grafana/grafana:13.2.0")
    ref = ImageRef.parse(value)
    if len(ref.repository) > MAX_IMAGE_NAME_LENGTH:
        raise ValueError(f"{value!r} is not an image reference: its name is longer than {MAX_IMAGE_NAME_LENGTH}")
    problem = ref.pin_problem()
    if problem:
        raise ValueError(f"{value!r} {problem}")
    return value


def _admin_user(value: str) -> str:
    if not value or value != value.strip():
        raise ValueError(f"{value!r} is not a user name: empty, or blank at either end")
    if any(ord(char) < 32 or ord(char) == 127 for char in value) or ":" in value:
        raise ValueError(f"{value!r} is not a user name: it holds a control character or ':'")
    if len(value) > MAX_ADMIN_USER_LENGTH:
        raise ValueError(f"{value[:20]!r}... is not a user name: longer than {MAX_ADMIN_USER_LENGTH} characters")
    return value


def _address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (use 127.0.0.1, 0.0.0.0 or a specific address)") from None
    return value


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.I
)


def _hostname(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a host name (e.g. grafana.example.com) or an IP address")
    return value.lower()


def _email(value: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8 and ::1: ports bound there are reachable from this machine only."""
    return ipaddress.ip_address(address).is_loopback


def _project(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
        raise ValueError(f"{value!r} must be lowercase letters, digits, '-' or '_', starting with a letter or digit")
    if len(value) > MAX_PROJECT_LENGTH:
        raise ValueError(
            f"{value[:20]!r}... is a project name longer than {MAX_PROJECT_LENGTH} characters"
            " (container host names are at most 63)"
        )
    return value


Duration = Annotated[str, AfterValidator(_duration)]
MemorySize = Annotated[str | int, AfterValidator(_size)]
Image = Annotated[str, AfterValidator(_image)]
# Strict: YAML's `true` or "80" is no port (pydantic would publish `true` as port 1).
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
Ratio = Annotated[float, Strict()]
IpAddress = Annotated[str, AfterValidator(_address)]
HostName = Annotated[str, AfterValidator(_hostname)]
Email = Annotated[str, AfterValidator(_email)]
ProjectName = Annotated[str, AfterValidator(_project)]
AdminUser = Annotated[str, AfterValidator(_admin_user)]


class StrictModel(BaseModel):
    """Unknown keys are errors (with a did-you-mean), never silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
