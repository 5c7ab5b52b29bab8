"""What a tar member may be before we take it: checked on the way in (a container's tar stream) and
on the way out (an archive being restored), so that nothing lands outside the directory it names."""

from __future__ import annotations

import posixpath
import tarfile

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


def check_symlink(name: str, target: str, root: str, *, where: str) -> None:
    """A symlink `name` -> `target` must resolve inside `root` (a member prefix, '' for the whole tree)."""
    if not target or target.startswith("/"):
        raise BadArchive(f"{where}: link {name!r} points outside the archive ({target!r})")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if resolved == ".." or resolved.startswith("../") or not _inside(resolved, root):
        raise BadArchive(f"{where}: link {name!r} points outside the archive ({target!r})")


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
