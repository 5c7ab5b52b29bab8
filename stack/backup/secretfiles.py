"""The generated secrets (only with --include-secrets): kept 0600 in the archive and on restore."""

from __future__ import annotations

from stack.backup.archive import ArchiveWriter
from stack.backup.spool import SectionSpool
from stack.paths import Paths
from stack.secrets import SecretStore

SECTION = "secrets/files"


def backup_secrets(paths: Paths, writer: ArchiveWriter) -> int:
    """Add every generated secret; returns how many."""
    directory = paths.secrets_dir
    if not directory.is_dir():
        return 0
    count = 0
    for path in sorted(directory.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            writer.add_file(f"{SECTION}/{path.name}", path, mode=0o600)
            count += 1
    return count


def restore_secrets(paths: Paths, spool: SectionSpool) -> list[str]:
    """Write the archive's secrets back (0600, atomically); returns their names."""
    store = SecretStore.for_paths(paths)
    names = []
    for name, value in sorted(spool.read_members(SECTION).items()):
        if "/" in name:
            continue
        store.put(name, value.decode("utf-8").strip())
        names.append(name)
    return names
