"""Reading a backup archive with every check: names, types, sizes and sha256 against the manifest,
while streaming, and each member handed to a sink only once it is known to be safe."""

from __future__ import annotations

import errno
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, cast

import zstandard

from stack.backup.errors import BadArchive
from stack.backup.manifest import MANIFEST_MAX_BYTES, MANIFEST_NAME, Manifest
from stack.backup.safety import check_hardlink, check_not_through_link, check_symlink, clean_name, member_kind
from stack.backup.streams import COPY_BUFSIZE, BoundedReader, HashingReader, ProgressFn, no_progress

# A decompression bomb is refused once it has produced more than this many bytes per compressed byte
# (beyond a floor that small archives of sparse files never reach). Real stacks stay far below.
MAX_RATIO = 200
RATIO_FLOOR = 256 * 1024**2


class Sink(Protocol):
    """Receives the members of an archive being read, each already checked for safety."""

    def member(self, name: str, info: tarfile.TarInfo, reader: IO[bytes] | None) -> None:
        """`name` is the cleaned member name; a file's `reader` must be read for exactly `info.size` bytes."""
        ...


@dataclass(frozen=True)
class ReadReport:
    manifest: Manifest
    path: Path
    compressed_size: int
    seconds: float


class _Checker:
    """Checks members one by one as they stream past, hashing files, and keeps what it saw."""

    def __init__(self, where: str, allowed_roots: frozenset[str], sink: Sink | None, on_bytes: ProgressFn) -> None:
        self.where = where
        self.allowed_roots = allowed_roots
        self.sink = sink
        self.on_bytes = on_bytes
        self.seen: dict[str, tuple[str, int, str | None]] = {}
        self.seen_files: set[str] = set()
        self.links: dict[str, str] = {}
        self.manifest: Manifest | None = None

    def take(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        where = self.where
        name = clean_name(info.name, where=where)
        if name in self.seen or (name == MANIFEST_NAME and self.manifest is not None):
            raise BadArchive(f"{where}: member {name!r} appears twice")
        if self.manifest is not None:
            raise BadArchive(f"{where}: member {name!r} follows the manifest")
        kind = member_kind(info, where=where)
        if name == MANIFEST_NAME:
            if kind != "file" or info.size > MANIFEST_MAX_BYTES:
                raise BadArchive(f"{where}: {MANIFEST_NAME} is not a plain file of sane size")
            handle = tar.extractfile(info)
            assert handle is not None
            try:
                self.manifest = Manifest.from_json(handle.read())
            except BadArchive as exc:
                raise BadArchive(f"{where}: {exc.message}", hint=exc.hint) from None
            return
        parts = name.split("/")
        if parts[0] not in self.allowed_roots or len(parts) < 2:
            raise BadArchive(f"{where}: unexpected member {name!r}", hint="not written by `stack backup`")
        root = "/".join(parts[:2])
        check_not_through_link(name, self.links, where=where)
        if kind == "file":
            handle = tar.extractfile(info)
            assert handle is not None
            hashing = HashingReader(handle, self.on_bytes)
            if self.sink:
                self.sink.member(name, info, hashing)  # type: ignore[arg-type]
            while hashing.read(COPY_BUFSIZE):
                pass
            if hashing.size != info.size:
                raise BadArchive(f"{where}: truncated in member {name!r}")
            self.seen[name] = (kind, hashing.size, hashing.sha256.hexdigest())
            self.seen_files.add(name)
            return
        if kind == "symlink":
            check_symlink(name, info.linkname, root, where=where, links=self.links)
            self.links[name] = info.linkname
        elif kind == "hardlink":
            target = check_hardlink(name, info.linkname, self.seen_files, where=where)
            if not target.startswith(root + "/"):
                raise BadArchive(f"{where}: link {name!r} points outside its component ({target!r})")
            info.linkname = target
        if self.sink:
            self.sink.member(name, info, None)
        self.seen[name] = (kind, 0, None)


# What tarfile says when its input stops early (as opposed to input that is no tar at all).
_CUT_SHORT = ("empty file", "truncated header", "unexpected end of data")


def _tar_problem(where: str, exc: Exception, decompressed: int) -> BadArchive:
    if isinstance(exc, EOFError) or str(exc) in _CUT_SHORT:
        # zstd emits nothing until a whole block has arrived: a file cut inside its first block
        # decompresses to nothing, which tarfile calls an "empty file".
        read = f"after {decompressed} bytes of data" if decompressed else "before its first block of data"
        return BadArchive(
            f"{where}: truncated: the archive stops {read}",
            hint="it was cut short (an interrupted copy or a full disk): copy it again",
        )
    return BadArchive(
        f"{where}: not a tar archive inside the zstd compression ({exc})", hint="not written by `stack backup`"
    )


def read_archive(
    path: Path,
    *,
    allowed_roots: frozenset[str],
    sink: Sink | None = None,
    on_bytes: ProgressFn = no_progress,
    max_bytes: int | None = None,
) -> ReadReport:
    """Read the whole archive, checking every member's name, type, size and sha256 against the
    manifest. Raise BadArchive with a one-line reason at the first problem.

    `sink` gets each member as it streams past (restore spools them to a temporary directory);
    nothing is handed to it before its name and type have been checked.
    """
    started = time.monotonic()
    where = str(path)
    try:
        compressed = path.stat().st_size
        raw = path.open("rb")
    except OSError as exc:
        raise BadArchive(f"{where}: cannot be read: {exc.strerror}") from None
    limit = max_bytes if max_bytes is not None else max(RATIO_FLOOR, compressed * MAX_RATIO)
    checker = _Checker(where, allowed_roots, sink, on_bytes)
    with raw:
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_size=COPY_BUFSIZE)
        bounded = BoundedReader(reader, limit, where)
        try:
            # A stream ("r|") is only ever read: the reader need not seek, tell or write.
            with tarfile.open(fileobj=cast(IO[bytes], bounded), mode="r|", bufsize=COPY_BUFSIZE) as tar:
                for info in tar:
                    checker.take(tar, info)
            # The end of the tar is not the end of the zstd frame: read on, so that its checksum
            # is verified and trailing data is noticed.
            while bounded.read(COPY_BUFSIZE):
                pass
        except zstandard.ZstdError as exc:
            raise BadArchive(f"{where}: corrupted ({_zstd_reason(exc)})", hint="the file is damaged") from None
        except (tarfile.TarError, EOFError) as exc:
            raise _tar_problem(where, exc, bounded.count) from None
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise  # the sink's disk is full: not the archive's fault
            raise BadArchive(f"{where}: cannot be read: {exc}") from None
    manifest = checker.manifest
    if manifest is None:
        raise BadArchive(f"{where}: no {MANIFEST_NAME}", hint="truncated, or not written by `stack backup`")
    _compare(where, manifest, checker.seen)
    return ReadReport(manifest, path, compressed, time.monotonic() - started)


def _zstd_reason(exc: Exception) -> str:
    text = str(exc)
    if "unknown frame descriptor" in text or "Unknown frame descriptor" in text:
        return "not zstd-compressed"
    return text


def _compare(where: str, manifest: Manifest, seen: dict[str, tuple[str, int, str | None]]) -> None:
    listed = {member.name: member for member in manifest.members}
    for name in seen:
        if name not in listed:
            raise BadArchive(f"{where}: member {name!r} is not in the manifest")
    for name, member in listed.items():
        if name not in seen:
            raise BadArchive(f"{where}: member {name!r} listed in the manifest is missing")
        kind, size, digest = seen[name]
        if kind != member.type:
            raise BadArchive(f"{where}: member {name!r} is a {kind}, the manifest says {member.type}")
        if kind == "file" and (size != member.size or digest != member.sha256):
            raise BadArchive(f"{where}: checksum mismatch for member {name!r}")
