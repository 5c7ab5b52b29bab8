"""Spooling an archive for restore: each `<component>/<section>` into its own plain tar."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import IO

from stack.backup.streams import COPY_BUFSIZE, CountingRaw, ProgressFn, copy_info, no_progress


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
        out = copy_info(info, relative)
        if info.islnk():
            out.linkname = self._split(info.linkname)[1]
        tar.addfile(out, reader)

    def close(self) -> None:
        for tar in self._tars.values():
            tar.close()
        self._tars.clear()

    def open(self, section: str, on_bytes: ProgressFn = no_progress) -> IO[bytes] | None:
        """The section as a plain tar stream (for a runtime's `copy_in`), counting what is read."""
        path = self.sections.get(section)
        if not path:
            return None
        return io.BufferedReader(CountingRaw(path.open("rb"), on_bytes), buffer_size=COPY_BUFSIZE)

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
