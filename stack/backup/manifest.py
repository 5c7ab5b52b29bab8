"""The manifest of a backup archive: what it holds, from which stack, with a checksum per member.

It is the last member of the archive (`manifest.json`), written once every checksum is known, so
that a backup streams in one pass. Readers check it against what they actually read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from stack.backup.errors import BadArchive
from stack.fileio import parse_json

FORMAT = "stack-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
# A manifest lists file names and checksums: even a huge TSDB stays far below this.
MANIFEST_MAX_BYTES = 64 * 1024**2

_TEXT_OR_NULL = {"type": ["string", "null"]}
# What a manifest must look like before any field of it is used: an archive is anyone's input,
# and a wrong shape must be named (`members/3: 'x' is not of type 'object'`), not crash a constructor.
MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["tool_version", "created_at", "project", "components", "members"],
    "properties": {
        "tool_version": {"type": "string"},
        "created_at": {"type": "string"},
        "project": {"type": "string"},
        "stack_yaml": _TEXT_OR_NULL,
        "includes_secrets": {"type": "boolean"},
        "components": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "image": _TEXT_OR_NULL,
                    "running_image": _TEXT_OR_NULL,
                    "sections": {"type": "array", "items": {"type": "string"}},
                    "notes": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "members": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "type"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "type": {"enum": ["file", "dir", "symlink", "hardlink"]},
                    "size": {"type": "integer", "minimum": 0},
                    "sha256": _TEXT_OR_NULL,
                    # Copied from the runtime's tar headers, which may carry the file-type bits too.
                    "mode": {"type": "integer", "minimum": 0},
                    "target": _TEXT_OR_NULL,
                },
            },
        },
    },
}


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
            data = parse_json(raw)
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
        import jsonschema  # paid only by the commands that read archives

        error = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(MANIFEST_SCHEMA).iter_errors(data))
        if error is not None:
            where = "/".join(map(str, error.absolute_path)) or "(top level)"
            message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
            raise BadArchive(f"{MANIFEST_NAME} is malformed: {where}: {message}", hint="not written by `stack backup`")
        return cls(
            tool_version=data["tool_version"],
            created_at=data["created_at"],
            project=data["project"],
            stack_yaml=data.get("stack_yaml"),
            components={name: ComponentEntry(**entry) for name, entry in data["components"].items()},
            members=[Member(**item) for item in data["members"]],
            includes_secrets=data.get("includes_secrets", False),
        )
