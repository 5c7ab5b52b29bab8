"""The archive format: what verify reports, and every bad archive refused with nothing written
outside a temporary directory and nothing asked of the runtime."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard

from stack.backup.archive import ArchiveWriter
from stack.backup.errors import BadArchive
from stack.backup.manifest import FORMAT, FORMAT_VERSION, Manifest
from stack.backup.restore import restore_backup
from stack.backup.verify import verify_backup
from stack.paths import Paths
from stack.settings import Settings
from tests.conftest import invoke

# --- building archives by hand, good and bad -------------------------------------------------------


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def manifest_for(members: list[tuple[tarfile.TarInfo, bytes | None]], **changes: Any) -> dict[str, Any]:
    listed = []
    for info, data in members:
        if data is not None:
            listed.append(
                {"name": info.name, "type": "file", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            )
        elif info.isdir():
            listed.append({"name": info.name, "type": "dir"})
    document = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "tool_version": "0.1.0",
        "created_at": "2026-11-28T12:00:00Z",
        "project": "observability",
        "stack_yaml": None,
        "components": {"prometheus": {"image": "prom/prometheus:v3.14.0", "sections": ["snapshot"]}},
        "members": listed,
        "includes_secrets": False,
    }
    document.update(changes)
    return {key: value for key, value in document.items() if value is not ...}


def build(
    path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], manifest: dict[str, Any] | str | None = "auto"
) -> Path:
    """A zstd tar with exactly these members, then the manifest (computed, given, or none)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
        if manifest is not None:
            document = manifest_for(members) if manifest == "auto" else manifest
            body = json.dumps(document).encode()
            tar.addfile(_file("manifest.json", body)[0], io.BytesIO(body))
    path.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(raw.getvalue()))
    return path


GOOD = [
    _file("prometheus/snapshot/01ABC/meta.json", b'{"ulid": "01ABC"}'),
    _file("prometheus/snapshot/01ABC/chunks/000001", os.urandom(4096)),
]


def _good(tmp: Path) -> Path:
    return build(tmp / "good.tar.zst", GOOD)


def _truncated(tmp: Path) -> Path:
    raw = _good(tmp).read_bytes()
    return _write(tmp / "bad.tar.zst", raw[: len(raw) // 2])


def _corrupted(tmp: Path) -> Path:
    raw = bytearray(_good(tmp).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    return _write(tmp / "bad.tar.zst", bytes(raw))


def _checksum(tmp: Path) -> Path:
    document = manifest_for(GOOD)
    document["members"][1]["sha256"] = "0" * 64
    return build(tmp / "bad.tar.zst", GOOD, document)


def _size(tmp: Path) -> Path:
    document = manifest_for(GOOD)
    document["members"][1]["size"] = 1
    return build(tmp / "bad.tar.zst", GOOD, document)


def _missing_member(tmp: Path) -> Path:
    document = manifest_for(GOOD)
    document["members"].append({"name": "prometheus/snapshot/01ABC/index", "type": "file", "size": 3, "sha256": "x"})
    return build(tmp / "bad.tar.zst", GOOD, document)


def _members_are_strings(tmp: Path) -> Path:
    document = manifest_for(GOOD)
    document["members"] = ["prometheus/snapshot/01ABC/index"]
    return build(tmp / "bad.tar.zst", GOOD, document)


def _components_is_a_list(tmp: Path) -> Path:
    return build(tmp / "bad.tar.zst", GOOD, manifest_for(GOOD, components=["prometheus"]))


def _member_size_negative(tmp: Path) -> Path:
    document = manifest_for(GOOD)
    document["members"][1]["size"] = -5
    return build(tmp / "bad.tar.zst", GOOD, document)


def _half_truncated_large(tmp: Path) -> Path:
    """One zstd block of compressible data, cut in half: zstd emits nothing, tarfile said 'empty file'."""
    members = [_file("prometheus/snapshot/01ABC/chunks/000001", b"abcdefgh" * 8192)]
    raw = build(tmp / "big.tar.zst", members).read_bytes()
    return _write(tmp / "bad.tar.zst", raw[: len(raw) // 2])


def _no_manifest(tmp: Path) -> Path:
    return build(tmp / "bad.tar.zst", GOOD, None)


def _deep_manifest(tmp: Path) -> Path:
    """A manifest of 100 000 nested arrays: json.loads raised RecursionError, a crash (exit 3)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in GOOD:
            tar.addfile(info, io.BytesIO(data))
        body = b"[" * 100_000 + b"]" * 100_000
        tar.addfile(_file("manifest.json", body)[0], io.BytesIO(body))
    return _write(tmp / "bad.tar.zst", zstandard.ZstdCompressor(write_checksum=True).compress(raw.getvalue()))


def _no_version(tmp: Path) -> Path:
    return build(tmp / "bad.tar.zst", GOOD, manifest_for(GOOD, version=...))


def _unknown_version(tmp: Path) -> Path:
    return build(tmp / "bad.tar.zst", GOOD, manifest_for(GOOD, version=99))


def _absolute(tmp: Path) -> Path:
    return build(tmp / "bad.tar.zst", [*GOOD, _file("/tmp/stack-evil", b"x")])


def _dotdot(tmp: Path) -> Path:
    return build(tmp / "bad.tar.zst", [*GOOD, _file("prometheus/snapshot/../../../stack-evil", b"x")])


def _symlink_absolute(tmp: Path) -> Path:
    return build(tmp / "bad.tar.zst", [*GOOD, _special("prometheus/snapshot/etc", tarfile.SYMTYPE, "/etc")])


def _symlink_escape(tmp: Path) -> Path:
    return build(tmp / "bad.tar.zst", [*GOOD, _special("prometheus/snapshot/up", tarfile.SYMTYPE, "../../..")])


def _symlink_chain(tmp: Path) -> Path:
    """Each link alone stays inside on paper; followed through the first, the second leaves the tree."""
    chain = [
        _special("prometheus/snapshot/a", tarfile.DIRTYPE),
        _special("prometheus/snapshot/a/b", tarfile.DIRTYPE),
        _special("prometheus/snapshot/a/b/s", tarfile.SYMTYPE, "../.."),
        _special("prometheus/snapshot/t", tarfile.SYMTYPE, "a/b/s/../.."),
    ]
    return build(tmp / "bad.tar.zst", [*GOOD, *chain])


def _through_symlink(tmp: Path) -> Path:
    """A link that stays inside, then a file written through it."""
    through = [
        _special("prometheus/snapshot/here", tarfile.SYMTYPE, "01ABC"),
        _file("prometheus/snapshot/here/evil", b"x"),
    ]
    return build(tmp / "bad.tar.zst", [*GOOD, *through])


def _hardlink_outside(tmp: Path) -> Path:
    return build(tmp / "bad.tar.zst", [*GOOD, _special("prometheus/snapshot/pw", tarfile.LNKTYPE, "/etc/passwd")])


def _device(tmp: Path) -> Path:
    return build(tmp / "bad.tar.zst", [*GOOD, _special("prometheus/snapshot/null", tarfile.CHRTYPE)])


def _fifo(tmp: Path) -> Path:
    return build(tmp / "bad.tar.zst", [*GOOD, _special("prometheus/snapshot/pipe", tarfile.FIFOTYPE)])


def _unknown_root(tmp: Path) -> Path:
    return build(tmp / "bad.tar.zst", [*GOOD, _file("home/.bashrc", b"x")])


def _not_zstd(tmp: Path) -> Path:
    return _write(tmp / "bad.tar.zst", b"PK\x03\x04 this is a zip file, not a backup" * 10)


def _bomb(tmp: Path) -> Path:
    """300 MiB of zeros: a few hundred KiB compressed, an honest manifest, far beyond any sane ratio."""
    size = 300 * 1024**2
    path = tmp / "bad.tar.zst"
    compressor = zstandard.ZstdCompressor(level=1, write_checksum=True)
    with (
        path.open("wb") as out,
        compressor.stream_writer(out) as stream,
        tarfile.open(fileobj=stream, mode="w|") as tar,
    ):
        info = tarfile.TarInfo("prometheus/snapshot/zeros")
        info.size = size
        tar.addfile(info, _Zeros(size))
    return path


class _Zeros:
    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD: dict[str, tuple[Callable[[Path], Path], str]] = {
    "truncated": (_truncated, "bad.tar.zst: truncated: the archive stops"),
    "half-truncated, one block": (_half_truncated_large, "bad.tar.zst: truncated: the archive stops"),
    "manifest members are strings": (
        _members_are_strings,
        "bad.tar.zst: manifest.json is malformed: members/0: 'prometheus/snapshot/01ABC/index' is not of type 'object'",
    ),
    "manifest components is a list": (
        _components_is_a_list,
        "bad.tar.zst: manifest.json is malformed: components: ['prometheus'] is not of type 'object'",
    ),
    "manifest member size negative": (
        _member_size_negative,
        "bad.tar.zst: manifest.json is malformed: members/1/size: -5 is less than the minimum of 0",
    ),
    "corrupted": (_corrupted, "corrupted"),
    "checksum mismatch": (_checksum, "checksum mismatch for member 'prometheus/snapshot/01ABC/chunks/000001'"),
    "size mismatch": (_size, "checksum mismatch"),
    "member missing": (_missing_member, "listed in the manifest is missing"),
    "no manifest": (_no_manifest, "no manifest.json"),
    "manifest nested 100 000 deep": (
        _deep_manifest,
        "bad.tar.zst: manifest.json is not valid JSON (nested deeper than 64 levels)",
    ),
    "no manifest version": (_no_version, "bad.tar.zst: manifest.json has no format version"),
    "unknown manifest version": (_unknown_version, "bad.tar.zst: unknown backup format version 99"),
    "absolute path": (_absolute, "has an absolute path"),
    "dot-dot": (_dotdot, "contains '..'"),
    "symlink to /etc": (_symlink_absolute, "points outside the archive"),
    "symlink escaping": (_symlink_escape, "points outside the archive"),
    "symlink chain escaping": (_symlink_chain, "link 'prometheus/snapshot/t' points outside the archive"),
    "member through a symlink": (_through_symlink, "member 'prometheus/snapshot/here/evil' goes through link"),
    "hardlink outside": (_hardlink_outside, "points outside the archive"),
    "device file": (_device, "is a device file"),
    "fifo": (_fifo, "is a FIFO"),
    "unknown member": (_unknown_root, "unexpected member 'home/.bashrc'"),
    "not zstd": (_not_zstd, "not zstd-compressed"),
    "decompression bomb": (_bomb, "decompresses beyond 256 MiB"),
}


class Tripwire:
    """A runtime that fails the test if restore asks anything of it."""

    name = "tripwire"

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the runtime was asked for {name} before the archive was verified")


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in root.rglob("*")
        if path.is_file()
    }


# --- tests ---------------------------------------------------------------------------------------


def test_verify_reports_a_good_archive(tmp_path: Path) -> None:
    report = verify_backup(_good(tmp_path))
    assert report.manifest.project == "observability"
    assert [m.name for m in report.manifest.members] == [info.name for info, _ in GOOD]
    result = invoke("backup", "verify", str(tmp_path / "good.tar.zst"))
    assert result.exit_code == 0, result.output
    assert "OK, format 1" in result.stdout
    assert "every checksum matches" in result.stdout


@pytest.mark.parametrize("case", list(BAD))
def test_bad_archive_is_refused_and_nothing_is_written(
    case: str, tmp_path: Path, paths: Paths, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make, reason = BAD[case]
    archives = tmp_path / "archives"
    archives.mkdir()
    archive = make(archives)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    (project_dir / "stack.yaml").write_text("project: observability\n")
    before = _tree(tmp_path)

    with pytest.raises(BadArchive) as refused:
        restore_backup(Tripwire(), Settings(), paths, archive)  # type: ignore[arg-type]

    assert reason in refused.value.one_line()
    assert "\n" not in refused.value.one_line()
    assert _tree(tmp_path) == before
    assert list(scratch.iterdir()) == []  # the temporary directory itself is gone again
    assert not Path("/tmp/stack-evil").exists()

    verified = invoke("backup", "verify", str(archive))
    assert verified.exit_code == 1
    assert verified.stderr.startswith("Error: ") and reason in verified.stderr
    assert verified.stderr.count("\n") == 1
    restored = invoke("restore", str(archive), "--yes")
    assert restored.exit_code == 1
    assert reason in restored.stderr and "Traceback" not in restored.output


def test_links_inside_the_archive_are_kept(tmp_path: Path) -> None:
    members = [
        *GOOD,
        _special("prometheus/snapshot/latest", tarfile.SYMTYPE, "01ABC"),
        _special("prometheus/snapshot/01ABC/copy", tarfile.LNKTYPE, "prometheus/snapshot/01ABC/meta.json"),
    ]
    document = manifest_for(members)
    document["members"] += [
        {"name": "prometheus/snapshot/latest", "type": "symlink", "target": "01ABC"},
        {"name": "prometheus/snapshot/01ABC/copy", "type": "hardlink", "target": "prometheus/snapshot/01ABC/meta.json"},
    ]
    assert len(verify_backup(build(tmp_path / "links.tar.zst", members, document)).manifest.members) == 4


def test_writer_rejects_an_unsafe_stream_from_the_runtime(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info, data = _file("data/../../escape", b"x")
        tar.addfile(info, io.BytesIO(data))
    raw.seek(0)
    target = tmp_path / "out.tar.zst"
    with pytest.raises(BadArchive, match=r"contains '\.\.'"), ArchiveWriter(target) as writer:
        writer.add_tar_stream("loki/data", raw, where="loki state")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_a_chained_link_from_the_runtime(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info, data in (
            _special("data/a", tarfile.DIRTYPE),
            _special("data/a/up", tarfile.SYMTYPE, ".."),
            _special("data/out", tarfile.SYMTYPE, "a/up/.."),
        ):
            tar.addfile(info, io.BytesIO(data) if data else None)
    raw.seek(0)
    target = tmp_path / "out.tar.zst"
    with pytest.raises(BadArchive, match="link 'out' points outside"), ArchiveWriter(target) as writer:
        writer.add_tar_stream("loki/data", raw, where="loki state")
    assert list(tmp_path.iterdir()) == []


def test_archive_is_private_and_manifest_is_last(tmp_path: Path) -> None:
    target = tmp_path / "a.tar.zst"
    with ArchiveWriter(target) as writer:
        writer.add_bytes("alertmanager/api/silences.json", b"[]")
        writer.commit(Manifest("0.1.0", "now", "observability", None, {}, list(writer.members)))
    assert target.stat().st_mode & 0o777 == 0o600
    with (
        target.open("rb") as raw,
        zstandard.ZstdDecompressor().stream_reader(raw) as plain,
        tarfile.open(fileobj=plain, mode="r|") as tar,
    ):
        names = tar.getnames()
    assert names == ["alertmanager/api/silences.json", "manifest.json"]


def test_links_are_followed_through_earlier_links() -> None:
    from stack.backup.safety import check_symlink

    links = {"p/s/latest": "01ABC", "p/s/a/b/up": "../.."}
    # Through `latest` into the block: inside.
    check_symlink("p/s/cur", "latest/chunks", "p/s", where="t", links=links)
    # `a/b/up` is `p/s`; one more `..` from there leaves the component, though `a/b/up/..` reads as `a/b` on paper.
    with pytest.raises(BadArchive, match="points outside"):
        check_symlink("p/s/t", "a/b/up/..", "p/s", where="t", links=links)
    # A loop is refused, not followed forever.
    with pytest.raises(BadArchive, match="points outside"):
        check_symlink("p/s/x", "y", "p/s", where="t", links={"p/s/y": "x", "p/s/x": "y"})


def test_verify_shows_the_image_that_ran_not_the_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The image that ran when the backup was made (an override or a registry mirror) is what a restore
    # compares with; the pin is only what the settings asked for. Archive strings are never markup.
    ran = "[fd00::2]:5000/prom/prometheus:v3.16.0"
    components = {"prometheus": {"image": "prom/prometheus:v3.14.0", "running_image": ran, "sections": ["snapshot"]}}
    archive = build(tmp_path / "ran.tar.zst", GOOD, manifest_for(GOOD, components=components))
    monkeypatch.setenv("COLUMNS", "200")  # the whole row on one line
    table = invoke("backup", "verify", str(archive))
    assert table.exit_code == 0, table.output
    assert ran in table.stdout
    assert "v3.14.0" not in table.stdout
    scripted = invoke("backup", "verify", str(archive), "--json")
    assert scripted.exit_code == 0, scripted.output
    shown = json.loads(scripted.stdout)["components"]["prometheus"]
    assert shown["running_image"] == ran
    assert shown["image"] == "prom/prometheus:v3.14.0"
