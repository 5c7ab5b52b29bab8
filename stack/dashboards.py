"""Dashboard packs (bundled under provisioning/dashboards/<pack>/) and the user's own dashboards.

Each pack is a Grafana folder; provisioning pushes folders first, then the dashboards into them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stack.errors import SettingsError
from stack.resources import bundled


@dataclass(frozen=True)
class Folder:
    uid: str
    title: str


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    folder: Folder
    model: dict[str, Any]
    source: Path


def _pack_folder(pack_dir: Path) -> Folder:
    meta = pack_dir / "folder.json"
    if meta.exists():
        data = json.loads(meta.read_text(encoding="utf-8"))
        return Folder(uid=data["uid"], title=data["title"])
    return Folder(uid=f"stack-{pack_dir.name}", title=pack_dir.name.replace("-", " ").title())


def load_dashboard_file(path: Path, folder: Folder) -> Dashboard:
    """One dashboard JSON file; a clear SettingsError naming the file when it is unusable."""
    try:
        model = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}", hint="fix the file or remove it") from None
    if not isinstance(model, dict) or not model.get("uid") or not model.get("title"):
        raise SettingsError(f"{path}: a dashboard needs a 'uid' and a 'title'", hint="add them to the JSON")
    return Dashboard(uid=model["uid"], title=model["title"], folder=folder, model=model, source=path)


def bundled_packs() -> list[str]:
    """Names of the bundled dashboard packs."""
    root = bundled("provisioning") / "dashboards"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def load_dashboards(packs: list[str] | None = None, user_dirs: list[Path] | None = None) -> list[Dashboard]:
    """The dashboards of `packs` (all bundled packs when None) and of the user's directories.

    Raises SettingsError on invalid JSON or a duplicate uid, naming the file.
    """
    root = bundled("provisioning") / "dashboards"
    found: list[Dashboard] = []
    for pack in packs if packs is not None else bundled_packs():
        pack_dir = root / pack
        folder = _pack_folder(pack_dir)
        found.extend(
            load_dashboard_file(path, folder) for path in sorted(pack_dir.glob("*.json")) if path.name != "folder.json"
        )
    for user_dir in user_dirs or []:
        folder = Folder(uid=f"stack-user-{user_dir.name}", title=user_dir.name)
        found.extend(load_dashboard_file(path, folder) for path in sorted(user_dir.glob("*.json")))
    seen: dict[str, Path] = {}
    for dashboard in found:
        if dashboard.uid in seen:
            raise SettingsError(
                f"{dashboard.source}: dashboard uid {dashboard.uid!r} is already used by {seen[dashboard.uid]}",
                hint="give each dashboard a uid of its own",
            )
        seen[dashboard.uid] = dashboard.source
    return found
