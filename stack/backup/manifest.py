"""The manifest of a backup archive: what it holds, from which stack, with a checksum per member.

It is the last member of the archive (`manifest.json`), written once every checksum is known, so
that a backup streams in one pass. Readers check it against what they actually read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from stack.backup.errors import BadArchive

FORMAT = "stack-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
# A manifest lists file names and checksums: even a huge TSDB stays far below this.
MANIFEST_MAX_BYTES = 64 * 1024**2


@dataclass(frozen=True)
class Member:
    name: str
    type: str  # file | dir | symlink | hardlink
    size: int = 0
    sha256: str | None = None
    mode: int = 0o644
    target: str | None = None  # symlink target, or the member a hardlink points to


@dataclass
class ComponentEntry:
    """One component's part of the archive."""

    image: str | None
    running_image: str | None = None
    # Which parts the archive holds for it, e.g. ["snapshot"], ["api", "data"].
    sections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Manifest:
    tool_version: str
    created_at: str
    project: str
    stack_yaml: str | None
    components: dict[str, ComponentEntry]
    members: list[Member]
    includes_secrets: bool = False
    format: str = FORMAT
    version: int = FORMAT_VERSION

    @property
    def total_size(self) -> int:
        return sum(member.size for member in self.members)

    def to_json(self) -> bytes:
        data = asdict(self)
        data["total_size"] = self.total_size
        return json.dumps(data, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Parse and check a manifest; BadArchive names what is wrong with it."""
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadArchive(f"{MANIFEST_NAME} is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BadArchive(f"{MANIFEST_NAME} is not a stack backup manifest (no format: {FORMAT!r})")
        version = data.get("version")
        if version is None:
            raise BadArchive(f"{MANIFEST_NAME} has no format version")
        if version != FORMAT_VERSION:
            raise BadArchive(
                f"unknown backup format version {version!r} (this stack reads version {FORMAT_VERSION})",
                hint="restore it with the stack release that wrote it",
            )
        try:
            members = [Member(**item) for item in data["members"]]
            components = {name: ComponentEntry(**entry) for name, entry in data["components"].items()}
            return cls(
                tool_version=str(data["tool_version"]),
                created_at=str(data["created_at"]),
                project=str(data["project"]),
                stack_yaml=data.get("stack_yaml"),
                components=components,
                members=members,
                includes_secrets=bool(data.get("includes_secrets", False)),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise BadArchive(f"{MANIFEST_NAME} is malformed ({type(exc).__name__}: {exc})") from None
