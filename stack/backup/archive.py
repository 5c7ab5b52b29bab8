"""The backup archive on disk: a zstd-compressed tar, written atomically, read with every check.

Layout: `<component>/<section>/<path>` members (e.g. `prometheus/snapshot/01J.../index`,
`grafana/api/dashboards.json`, `secrets/grafana-admin-password`), then `manifest.json` with the size
and sha256 of every member. This module writes it, streaming in one pass; `reader` reads it with
every check, `spool` lays it out for restore.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import tarfile
import tempfile
import time
from pathlib import Path
from typing import IO

import zstandard

from stack.backup.errors import BackupError
from stack.backup.manifest import MANIFEST_NAME, Manifest, Member
from stack.backup.safety import check_hardlink, check_not_through_link, check_symlink, clean_name, member_kind
from stack.backup.streams import COPY_BUFSIZE, BytesReader, HashingReader, ProgressFn, copy_info, no_progress
from stack.backup.tempdirs import alive

SUFFIX = ".tar.zst"
# zstd level 3: several times faster than gzip -6 at a better ratio; TSDB chunks are already
# compressed, so higher levels buy little and cost a lot of CPU.
ZSTD_LEVEL = 3


# The hidden names an ArchiveWriter ever gives a file: `.<archive>.<pid>.tmp` (staged before the
# rename) and `.<archive>.<pid>.<random>.tmp` (where O_TMPFILE is not supported).
_TEMPORARY = re.compile(rf"^\.(?:.+){re.escape(SUFFIX)}\.(\d+)(?:\.[A-Za-z0-9_]+)?\.tmp$")


def sweep_temporaries(directory: Path) -> list[Path]:
    """Remove what a killed writer left in `directory`: its hidden temporary archives whose process
    is gone (only where O_TMPFILE was missing, or in the instant between link and rename)."""
    removed = []
    for path in directory.iterdir() if directory.is_dir() else []:
        match = _TEMPORARY.match(path.name)
        if match and path.is_file() and not alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class ArchiveWriter:
    """Writes an archive to an unnamed file in the target's directory; `commit` gives it its name.

    Until then nothing is visible at `target`: an interruption, even SIGKILL, leaves no partial
    archive (Linux's O_TMPFILE; elsewhere a hidden temporary file, removed on failure and, after a
    SIGKILL, by the next writer in that directory).
    """

    def __init__(self, target: Path, *, on_bytes: ProgressFn = no_progress) -> None:
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
        self._tar.addfile(info, BytesReader(data))
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
            reader = HashingReader(handle, self.on_bytes)
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
            out = copy_info(info, name)
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
                reader = HashingReader(handle, self.on_bytes)
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


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
