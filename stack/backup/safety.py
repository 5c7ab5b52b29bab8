"""What a tar member may be before we take it: checked on the way in (a container's tar stream) and
on the way out (an archive being restored), so that nothing lands outside the directory it names."""

from __future__ import annotations

import tarfile
from collections.abc import Mapping

from stack.backup.errors import BadArchive


def clean_name(name: str, *, where: str) -> str:
    """`name` normalised (no `./`, no trailing `/`); BadArchive for absolute paths and `..`."""
    if not name or "\x00" in name:
        raise BadArchive(f"{where}: a member has an empty or invalid name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise BadArchive(f"{where}: member {name!r} has an absolute path")
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts:
        raise BadArchive(f"{where}: member {name!r} contains '..'")
    if not parts:
        return ""
    return "/".join(parts)


def member_kind(info: tarfile.TarInfo, *, where: str) -> str:
    """file | dir | symlink | hardlink; BadArchive for devices, FIFOs and anything else."""
    if info.isreg():
        return "file"
    if info.isdir():
        return "dir"
    if info.issym():
        return "symlink"
    if info.islnk():
        return "hardlink"
    if info.ischr() or info.isblk():
        raise BadArchive(f"{where}: member {info.name!r} is a device file")
    if info.isfifo():
        raise BadArchive(f"{where}: member {info.name!r} is a FIFO")
    raise BadArchive(f"{where}: member {info.name!r} has an unsupported type {info.type!r}")


# More hops than any honest tree has: a loop, or an attempt to hide where a link goes.
_MAX_HOPS = 40


def check_symlink(name: str, target: str, root: str, *, where: str, links: Mapping[str, str] | None = None) -> None:
    """A symlink `name` -> `target` must resolve inside `root` (a member prefix, '' for the whole tree).

    It is followed component by component through the symlinks met earlier in the stream (`links`,
    member name -> target), as the file system will: `a/b/s -> ../..` then `t -> a/b/s/../..` reads
    as `a` on paper but lands two levels above the tree."""
    outside = BadArchive(f"{where}: link {name!r} points outside the archive ({target!r})")
    if not target or target.startswith("/"):
        raise outside
    parts = name.split("/")[:-1]
    pending = target.split("/")
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise outside
            parts.pop()
            continue
        parts.append(part)
        through = (links or {}).get("/".join(parts))
        if through is not None:
            hops += 1
            if hops > _MAX_HOPS or through.startswith("/"):
                raise outside
            parts.pop()
            pending = through.split("/") + pending
    if not _inside("/".join(parts), root):
        raise outside


def check_not_through_link(name: str, links: Mapping[str, str], *, where: str) -> None:
    """A member must not sit beneath a symlink of the same stream: unpacking it would write wherever
    that link points."""
    parts = name.split("/")
    for end in range(1, len(parts)):
        prefix = "/".join(parts[:end])
        if prefix in links:
            raise BadArchive(f"{where}: member {name!r} goes through link {prefix!r}")


def check_hardlink(name: str, target: str, seen_files: set[str], *, where: str) -> str:
    """A hardlink must point at a regular file met earlier in the same stream."""
    try:
        cleaned = clean_name(target, where=where)
    except BadArchive:
        cleaned = ""
    if cleaned not in seen_files:
        raise BadArchive(f"{where}: link {name!r} points outside the archive ({target!r})")
    return cleaned


def _inside(path: str, root: str) -> bool:
    return not root or path == root or path.startswith(root + "/")
