"""Tar streams in and out of a local component's directories, as `docker cp` gives and takes them,
and a state directory replaced whole without ever losing the previous one."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import IO, cast

from stack.errors import StackError


def tar_stream(local: Path, arcname: str) -> IO[bytes]:
    """A tar stream of `local`, its members under `arcname`."""
    return cast(IO[bytes], _TarStream(local, arcname))


def unpack(service: str, path: str, local: Path, archive: IO[bytes]) -> None:
    """Unpack a tar stream into `local` (created if missing); members may not leave it."""
    local.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=archive, mode="r|*") as tar:
            tar.extractall(local, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise StackError(f"{service}: cannot unpack the archive into {path}: {exc}") from None


def replace_directory(service: str, path: str, local: Path, archive: IO[bytes]) -> None:
    """Make `local` hold exactly what the archive holds.

    The previous directory is moved aside (a rename on the same file system) and deleted only
    once the archive is unpacked; when unpacking fails it is moved back, so a failed restore
    leaves the component's state as it was."""
    local.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Beside the state, so that moving it aside and back are renames that cannot half-fail.
    holder = Path(tempfile.mkdtemp(prefix=f".{local.name}.previous-", dir=local.parent))
    previous = holder / local.name
    existed = local.exists()
    moved = False
    try:
        mode = local.stat().st_mode & 0o7777 if existed else 0o700
        if existed:
            local.rename(previous)
            moved = True
        local.mkdir(mode=mode)
        os.chmod(local, mode)
        unpack(service, path, local, archive)
    except BaseException as exc:
        # Only what this call made is removed: when the move aside failed, `local` is still the
        # previous state and must stay untouched.
        if moved or not existed:
            shutil.rmtree(local, ignore_errors=True)
        if moved:
            try:
                previous.rename(local)
            except OSError as back:
                # The holder is kept: it is the only copy of the previous state now.
                raise StackError(
                    f"{service}: cannot replace {path} and cannot put its previous state back: {back}",
                    hint=f"the previous state is in {previous}",
                ) from None
        shutil.rmtree(holder, ignore_errors=True)
        back_note = "; its previous state is back in place" if existed else ""
        if isinstance(exc, OSError):
            raise StackError(f"{service}: cannot replace {path}: {exc}{back_note}") from None
        if isinstance(exc, StackError):
            # Same exception (its class may carry its own exit code), told that nothing was lost.
            exc.message += back_note
            exc.args = (exc.message,)
        raise
    shutil.rmtree(holder, ignore_errors=True)


class _TarStream(io.RawIOBase):
    """A tar of a directory, produced by a thread into a pipe while the caller reads it.

    A failure while archiving is raised to the reader at the end, so a truncated archive is never
    mistaken for a complete one.
    """

    def __init__(self, source: Path, arcname: str) -> None:
        read_fd, write_fd = os.pipe()
        self._reader = os.fdopen(read_fd, "rb", buffering=0)
        self._error: BaseException | None = None

        def produce() -> None:
            try:
                with os.fdopen(write_fd, "wb") as sink, tarfile.open(fileobj=sink, mode="w|") as tar:
                    tar.add(source, arcname=arcname)
            except BaseException as exc:  # handed to the reader
                self._error = exc

        self._thread = threading.Thread(target=produce, name=f"tar {source}", daemon=True)
        self._thread.start()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._reader.readinto(buffer)
        if not count:
            self._thread.join()
            if self._error is not None:
                raise StackError(f"archiving failed: {self._error}")
        return count or 0

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
            self._thread.join(timeout=5)
        super().close()
