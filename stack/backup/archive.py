"""The backup archive on disk: a zstd-compressed tar, written atomically, read with every check.

Layout: `<component>/<section>/<path>` members (e.g. `prometheus/snapshot/01J.../index`,
`grafana/api/dashboards.json`, `secrets/grafana-admin-password`), then `manifest.json` with the size
and sha256 of every member. Writing streams in one pass; reading checks everything while streaming
and hands each member to a sink only once its name and type are known to be safe.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, cast

import zstandard

from stack.backup.errors import BackupError, BadArchive
from stack.backup.manifest import MANIFEST_MAX_BYTES, MANIFEST_NAME, Manifest, Member
from stack.backup.safety import check_hardlink, check_not_through_link, check_symlink, clean_name, member_kind

SUFFIX = ".tar.zst"
# zstd level 3: several times faster than gzip -6 at a better ratio; TSDB chunks are already
# compressed, so higher levels buy little and cost a lot of CPU.
ZSTD_LEVEL = 3
COPY_BUFSIZE = 1024 * 1024
# A decompression bomb is refused once it has produced more than this many bytes per compressed byte
# (beyond a floor that small archives of sparse files never reach). Real stacks stay far below.
MAX_RATIO = 200
RATIO_FLOOR = 256 * 1024**2

ProgressFn = Callable[[int], None]


def _no_progress(_: int) -> None:
    pass


class _HashingReader:
    """Hashes and counts what passes through."""

    def __init__(self, raw: IO[bytes], on_bytes: ProgressFn) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.on_bytes = on_bytes

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha256.update(data)
        self.size += len(data)
        self.on_bytes(len(data))
        return data


class _BoundedReader:
    """Refuses to produce more than `limit` bytes (decompression bombs)."""

    def __init__(self, raw: Any, limit: int, where: str) -> None:
        self.raw = raw
        self.limit = limit
        self.count = 0
        self.where = where

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size if size is not None and size >= 0 else COPY_BUFSIZE)
        self.count += len(data)
        if self.count > self.limit:
            raise BadArchive(
                f"{self.where}: decompresses beyond {self.limit // 1024**2} MiB, more than a stack backup "
                f"of this size can hold",
                hint="it is corrupted or not a stack backup",
            )
        return data


# --- writing ------------------------------------------------------------------------------------


# The hidden names an ArchiveWriter ever gives a file: `.<archive>.<pid>.tmp` (staged before the
# rename) and `.<archive>.<pid>.<random>.tmp` (where O_TMPFILE is not supported).
_TEMPORARY = re.compile(rf"^\.(?:.+){re.escape(SUFFIX)}\.(\d+)(?:\.[A-Za-z0-9_]+)?\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive
    return True


def sweep_temporaries(directory: Path) -> list[Path]:
    """Remove what a killed writer left in `directory`: its hidden temporary archives whose process
    is gone (only where O_TMPFILE was missing, or in the instant between link and rename)."""
    removed = []
    for path in directory.iterdir() if directory.is_dir() else []:
        match = _TEMPORARY.match(path.name)
        if match and path.is_file() and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class ArchiveWriter:
    """Writes an archive to an unnamed file in the target's directory; `commit` gives it its name.

    Until then nothing is visible at `target`: an interruption, even SIGKILL, leaves no partial
    archive (Linux's O_TMPFILE; elsewhere a hidden temporary file, removed on failure and, after a
    SIGKILL, by the next writer in that directory).
    """

    def __init__(self, target: Path, *, on_bytes: ProgressFn = _no_progress) -> None:
        self.target = target
        self.on_bytes = on_bytes
        self.members: list[Member] = []
        self._names: set[str] = set()
        self._tmp_name: str | None = None
        directory = target.parent
        directory.mkdir(parents=True, exist_ok=True)
        sweep_temporaries(directory)
        try:
            self._fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o600)
        except (OSError, AttributeError):
            self._fd, self._tmp_name = tempfile.mkstemp(
                prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=directory
            )
            os.fchmod(self._fd, 0o600)
        self._file = os.fdopen(self._fd, "wb", buffering=COPY_BUFSIZE)
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True, threads=-1)
        self._zstd = compressor.stream_writer(self._file, closefd=False)
        # Held open across add_* calls and closed by commit/abort: no `with` can span them.
        self._tar = tarfile.open(  # noqa: SIM115
            fileobj=self._zstd, mode="w|", format=tarfile.PAX_FORMAT, bufsize=COPY_BUFSIZE
        )
        self._tar.copybufsize = COPY_BUFSIZE  # type: ignore[attr-defined]  # CPython has it; typeshed does not
        self._closed = False

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._closed:
            self.abort()

    def _claim(self, name: str) -> None:
        if name in self._names:
            raise BackupError(f"{self.target}: member {name!r} added twice")
        self._names.add(name)

    def add_bytes(self, name: str, data: bytes, *, mode: int = 0o644) -> None:
        self._claim(name)
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        info.mtime = int(time.time())
        self._tar.addfile(info, _BytesReader(data))
        self.members.append(Member(name, "file", len(data), hashlib.sha256(data).hexdigest(), mode))
        self.on_bytes(len(data))

    def add_file(self, name: str, path: Path, *, mode: int | None = None) -> None:
        self._claim(name)
        stat = path.stat()
        info = tarfile.TarInfo(name)
        info.size = stat.st_size
        info.mode = mode if mode is not None else stat.st_mode & 0o7777
        info.mtime = int(stat.st_mtime)
        with path.open("rb") as handle:
            reader = _HashingReader(handle, self.on_bytes)
            self._tar.addfile(info, reader)
        self.members.append(Member(name, "file", info.size, reader.sha256.hexdigest(), info.mode))

    def add_tar_stream(self, prefix: str, stream: IO[bytes], *, strip: int = 1, where: str) -> int:
        """Copy a tar stream (a runtime's `copy_out`) under `prefix`, dropping its first `strip`
        path components (the copied directory's own name). Returns the bytes of file data added."""
        added = 0
        seen_files: set[str] = set()
        try:
            with tarfile.open(fileobj=stream, mode="r|", bufsize=COPY_BUFSIZE) as source:
                added = self._copy_members(source, prefix, strip, where, seen_files)
        except (tarfile.TarError, EOFError) as exc:
            raise BackupError(f"{where}: the runtime's tar stream is broken ({exc})") from None
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise BackupError(f"{self.target.parent}: no space left for the archive") from None
            # requests' and the Engine API's stream errors are OSErrors too.
            raise BackupError(f"{where}: copying out failed ({exc})", hint="is the engine still reachable?") from None
        return added

    def _copy_members(self, source: tarfile.TarFile, prefix: str, strip: int, where: str, seen_files: set[str]) -> int:
        added = 0
        links: dict[str, str] = {}
        for info in source:
            relative = clean_name(info.name, where=where)
            parts = relative.split("/") if relative else []
            relative = "/".join(parts[strip:])
            if not relative:
                continue
            kind = member_kind(info, where=where)
            check_not_through_link(relative, links, where=where)
            name = f"{prefix}/{relative}"
            out = _copy_info(info, name)
            if kind == "symlink":
                check_symlink(relative, info.linkname, "", where=where, links=links)
                links[relative] = info.linkname
                self._claim(name)
                self._tar.addfile(out)
                self.members.append(Member(name, kind, 0, None, info.mode, info.linkname))
            elif kind == "hardlink":
                target_parts = clean_name(info.linkname, where=where).split("/")
                target = check_hardlink(relative, "/".join(target_parts[strip:]), seen_files, where=where)
                out.linkname = f"{prefix}/{target}"
                self._claim(name)
                self._tar.addfile(out)
                self.members.append(Member(name, kind, 0, None, info.mode, out.linkname))
            elif kind == "dir":
                self._claim(name)
                self._tar.addfile(out)
                self.members.append(Member(name, kind, 0, None, info.mode))
            else:
                self._claim(name)
                handle = source.extractfile(info)
                assert handle is not None
                reader = _HashingReader(handle, self.on_bytes)
                self._tar.addfile(out, reader)
                self.members.append(Member(name, kind, info.size, reader.sha256.hexdigest(), info.mode))
                seen_files.add(relative)
                added += info.size
        return added

    def commit(self, manifest: Manifest) -> Path:
        """Write the manifest, close, fsync and give the archive its name."""
        self.add_bytes(MANIFEST_NAME, manifest.to_json())
        # The manifest lists itself neither by size nor by checksum: drop its own entry.
        self.members.pop()
        self._tar.close()
        self._zstd.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        directory = self.target.parent
        if self._tmp_name is None:
            staged = directory / f".{self.target.name}.{os.getpid()}.tmp"
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()
            # linkat(AT_SYMLINK_FOLLOW) is what links an O_TMPFILE file; os.link uses it only when
            # given a dir fd (plain link(2) would try to link the /proc symlink itself).
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.link(f"/proc/self/fd/{self._file.fileno()}", staged, src_dir_fd=dir_fd, follow_symlinks=True)
            finally:
                os.close(dir_fd)
            self._tmp_name = str(staged)
        self._file.close()
        os.replace(self._tmp_name, self.target)
        self._tmp_name = None
        _fsync_dir(directory)
        self._closed = True
        return self.target

    def abort(self) -> None:
        """Drop everything written so far."""
        self._closed = True
        with contextlib.suppress(Exception):
            self._file.close()
        if self._tmp_name:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp_name)


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.offset + size
        chunk = bytes(self.data[self.offset : end])
        self.offset += len(chunk)
        return chunk


def _copy_info(info: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    """A fresh header for `name`; owners are kept (a container's user must own its restored state)."""
    out = tarfile.TarInfo(name)
    out.size = info.size if info.isreg() else 0
    out.mode = info.mode
    out.mtime = info.mtime
    out.uid, out.gid, out.uname, out.gname = info.uid, info.gid, info.uname, info.gname
    out.type = info.type if not info.isreg() else tarfile.REGTYPE
    out.linkname = info.linkname
    return out


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- reading ------------------------------------------------------------------------------------


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
            hashing = _HashingReader(handle, self.on_bytes)
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
    on_bytes: ProgressFn = _no_progress,
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
        bounded = _BoundedReader(reader, limit, where)
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


# --- spooling for restore -------------------------------------------------------------------------


class SectionSpool:
    """A Sink that writes each `<component>/<section>` of an archive into its own plain tar in a
    private temporary directory, names relative to the section, ready for a runtime's `copy_in`."""

    def __init__(self, directory: Path, *, components: set[str] | None = None) -> None:
        self.directory = directory
        # Only these components' sections are written (None: all); the rest is still checked.
        self.components = components
        self._tars: dict[str, tarfile.TarFile] = {}
        self.sections: dict[str, Path] = {}

    def _split(self, name: str) -> tuple[str, str]:
        parts = name.split("/")
        return "/".join(parts[:2]), "/".join(parts[2:])

    def _tar(self, section: str) -> tarfile.TarFile:
        if section not in self._tars:
            path = self.directory / (section.replace("/", "__") + ".tar")
            self.sections[section] = path
            # One open tar per section while the archive streams past; close() ends them all.
            self._tars[section] = tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
            self._tars[section].copybufsize = COPY_BUFSIZE  # type: ignore[attr-defined]  # as above
        return self._tars[section]

    def member(self, name: str, info: tarfile.TarInfo, reader: IO[bytes] | None) -> None:
        section, relative = self._split(name)
        if self.components is not None and section.split("/")[0] not in self.components:
            return
        tar = self._tar(section)
        if not relative:
            return
        out = _copy_info(info, relative)
        if info.islnk():
            out.linkname = self._split(info.linkname)[1]
        tar.addfile(out, reader)

    def close(self) -> None:
        for tar in self._tars.values():
            tar.close()
        self._tars.clear()

    def open(self, section: str, on_bytes: ProgressFn = _no_progress) -> IO[bytes] | None:
        """The section as a plain tar stream (for a runtime's `copy_in`), counting what is read."""
        path = self.sections.get(section)
        if not path:
            return None
        return io.BufferedReader(_CountingRaw(path.open("rb"), on_bytes), buffer_size=COPY_BUFSIZE)

    def read_members(self, section: str) -> dict[str, bytes]:
        """Every file of a (small) section, by relative name."""
        path = self.sections.get(section)
        if not path:
            return {}
        found: dict[str, bytes] = {}
        with tarfile.open(path, mode="r") as tar:
            for info in tar:
                if info.isreg():
                    handle = tar.extractfile(info)
                    assert handle is not None
                    found[info.name] = handle.read()
        return found


class _CountingRaw(io.RawIOBase):
    def __init__(self, raw: IO[bytes], on_bytes: ProgressFn) -> None:
        self.raw = raw
        self.on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.on_bytes(count or 0)
        return count or 0

    def close(self) -> None:
        self.raw.close()
        super().close()


def sweep_private_tempdirs(prefix: str, parent: Path | None = None) -> list[Path]:
    """Remove the `<prefix><pid>-*` directories in $TMPDIR (or `parent`) whose process is gone.

    What a SIGKILL leaves (a restore's spooled archive, a half-copied grafana.db: hundreds of MB)
    is found by the pid in its name; a live process's directory, or one not ours, is never touched.
    """
    parent = parent or Path(tempfile.gettempdir())
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)-[A-Za-z0-9_]+$")
    removed = []
    with contextlib.suppress(OSError):
        for path in parent.iterdir():
            match = pattern.match(path.name)
            if not match or _alive(int(match.group(1))):
                continue
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink() and path.stat().st_uid == os.getuid():
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
    return removed


@contextlib.contextmanager
def private_tempdir(prefix: str) -> Any:
    """A 0700 temporary directory, removed with everything in it afterwards.

    Its name carries this process's id, so that when a SIGKILL skips the removal, the next run's
    `private_tempdir(prefix)` sweeps it (see sweep_private_tempdirs).
    """
    sweep_private_tempdirs(prefix)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
