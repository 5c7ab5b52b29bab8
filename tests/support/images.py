"""Local images for the test engine, built from real binaries on this machine: nothing is ever pulled.

Each image is one layer made by `docker import` of a tar written here, so that every file's owner and
mode is exact (a Dockerfile COPY makes everything root's) and vfs copies one layer, not several. The
layouts follow the official images' Dockerfiles, because `stack` renders for those:

- prom/prometheus (prometheus/prometheus `Dockerfile`): busybox base with a shell and wget,
  `/bin/prometheus`, `/bin/promtool`, `/etc/prometheus/prometheus.yml`, data `/prometheus` owned by
  nobody, `USER nobody`, `WORKDIR /prometheus`.
- prom/alertmanager (prometheus/alertmanager `Dockerfile`): busybox base, `/bin/alertmanager`,
  `/bin/amtool`, `/etc/alertmanager/alertmanager.yml`, data `/alertmanager` owned by nobody.
- otel/opentelemetry-collector-contrib (opentelemetry-collector-releases
  `distributions/otelcol-contrib/Dockerfile`): scratch (no shell), `/otelcol-contrib`,
  `/etc/otelcol-contrib/config.yaml`, `/etc/ssl/certs/ca-certificates.crt`, `USER 10001:10001`. The
  binary is the stack's own static build (`make collector`, stack/collector_build.py).
- caddy (caddyserver/caddy-docker, alpine): a shell and wget, `/usr/bin/caddy`, `/etc/caddy/Caddyfile`,
  `/data` and `/config` with XDG_DATA_HOME and XDG_CONFIG_HOME pointing at them, runs as root.

The tag carries the version of the binary inside (Debian's Prometheus is 2.42, not the pinned 3.x), so
that what `stack status` reads from a container is the truth. Debian's binaries need only libc (caddy
also libzstd): the files `ldd` names are copied in. Busybox is Debian's static build.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.engine import Engine

NOBODY = 65534
BUSYBOX = Path("/bin/busybox")
# What the official busybox base offers that `stack` or its compose healthchecks use.
BUSYBOX_APPLETS = ("sh", "wget", "cat", "ls", "sleep", "env", "rm")
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


@dataclass
class Layout:
    """What goes into one image: files from this machine, generated files, directories, and the config."""

    files: dict[str, Path] = field(default_factory=dict)  # path in the image -> file on this machine
    texts: dict[str, str] = field(default_factory=dict)
    dirs: dict[str, int] = field(default_factory=dict)  # path -> owner uid (gid the same)
    links: dict[str, str] = field(default_factory=dict)  # path -> target
    changes: list[str] = field(default_factory=list)  # `docker import --change` instructions

    def add_binary(self, source: Path, target: str) -> None:
        self.files[target] = source
        for library in shared_libraries(source):
            self.files.setdefault(str(library), library)

    def add_tree(self, source: Path, target: str) -> None:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                self.files[f"{target}/{path.relative_to(source)}"] = path

    def add_busybox(self) -> None:
        self.files["/bin/busybox"] = BUSYBOX
        for applet in BUSYBOX_APPLETS:
            self.links[f"/bin/{applet}"] = "busybox"
        self.texts["/etc/passwd"] = PASSWD
        self.texts["/etc/group"] = GROUP
        self.dirs["/tmp"] = 0


def shared_libraries(binary: Path) -> list[Path]:
    """The libraries (and the loader) a dynamic binary needs, as `ldd` names them; none for a static one."""
    done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    found = re.findall(r"(/\S+) \(0x", done.stdout)
    return [Path(path) for path in found]


def write_tar(layout: Layout) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        made: set[str] = set()

        def parents(path: str) -> None:
            parts = Path(path).parts[1:-1]
            for depth in range(1, len(parts) + 1):
                name = "/".join(parts[:depth])
                if name not in made:
                    made.add(name)
                    info = tarfile.TarInfo(name)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)

        for path, owner in sorted(layout.dirs.items()):
            parents(path)
            name = path.lstrip("/")
            made.add(name)
            info = tarfile.TarInfo(name)
            info.type, info.uid, info.gid = tarfile.DIRTYPE, owner, owner
            info.mode = 0o1777 if path == "/tmp" else 0o755
            tar.addfile(info)
        for path, source in sorted(layout.files.items()):
            parents(path)
            # Follow links (the loader is one): the image gets the file itself.
            data = source.resolve().read_bytes()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), source.resolve().stat().st_mode & 0o7777
            tar.addfile(info, io.BytesIO(data))
        for path, text in sorted(layout.texts.items()):
            parents(path)
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for path, target in sorted(layout.links.items()):
            parents(path)
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def import_image(engine: Engine, tag: str, layout: Layout) -> str:
    """Make the image `tag` on the engine from the layout (once: an existing tag is kept)."""
    if engine.docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    args = ["import"]
    for change in layout.changes:
        args += ["--change", change]
    engine.docker(*args, "-", tag, input=write_tar(layout))
    return tag


def binary_version(argv: Iterable[str]) -> str:
    """`prometheus, version 2.42.0+ds (...)` -> `2.42.0`."""
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    match = re.search(r"version v?(\d+\.\d+\.\d+)", done.stdout + done.stderr)
    if not match:
        raise AssertionError(f"no version in {' '.join(argv)}: {done.stdout}{done.stderr}")
    return match.group(1)


def prometheus_image(engine: Engine) -> str:
    """prom/prometheus:v<Debian's version>, laid out as the official image."""
    version = binary_version(["prometheus", "--version"])
    layout = Layout()
    layout.add_busybox()
    layout.add_binary(Path("/usr/bin/prometheus"), "/bin/prometheus")
    layout.add_binary(Path("/usr/bin/promtool"), "/bin/promtool")
    # Debian's build reads its web assets from here; the official binary embeds them.
    layout.add_tree(Path("/usr/share/prometheus/web"), "/usr/share/prometheus/web")
    layout.texts["/etc/prometheus/prometheus.yml"] = "global:\n  scrape_interval: 15s\n"
    layout.dirs["/prometheus"] = NOBODY
    layout.changes = [
        "USER nobody",
        "WORKDIR /prometheus",
        "EXPOSE 9090",
        'VOLUME ["/prometheus"]',
        'ENTRYPOINT ["/bin/prometheus"]',
        'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]',
    ]
    return import_image(engine, f"prom/prometheus:v{version}", layout)


def alertmanager_image(engine: Engine) -> str:
    """prom/alertmanager:v<Debian's version>, laid out as the official image."""
    version = binary_version(["prometheus-alertmanager", "--version"])
    layout = Layout()
    layout.add_busybox()
    layout.add_binary(Path("/usr/bin/prometheus-alertmanager"), "/bin/alertmanager")
    layout.add_binary(Path("/usr/bin/amtool"), "/bin/amtool")
    # Debian's build reads its notification templates from here; the official binary embeds them.
    layout.add_tree(Path("/usr/share/prometheus/alertmanager"), "/usr/share/prometheus/alertmanager")
    layout.texts["/etc/alertmanager/alertmanager.yml"] = "route: {receiver: default}\nreceivers: [{name: default}]\n"
    layout.dirs["/alertmanager"] = NOBODY
    layout.changes = [
        "USER nobody",
        "WORKDIR /alertmanager",
        "EXPOSE 9093",
        'VOLUME ["/alertmanager"]',
        'ENTRYPOINT ["/bin/alertmanager"]',
        'CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]',
    ]
    return import_image(engine, f"prom/alertmanager:v{version}", layout)


def caddy_image(engine: Engine) -> str:
    """caddy:<Debian's version>, laid out as the official (alpine) image."""
    done = subprocess.run(["caddy", "version"], capture_output=True, text=True, check=True)
    version = done.stdout.split()[0].lstrip("v")
    layout = Layout()
    layout.add_busybox()
    layout.add_binary(Path("/usr/bin/caddy"), "/usr/bin/caddy")
    layout.texts["/etc/caddy/Caddyfile"] = ':80 {\n\trespond "stack test image"\n}\n'
    layout.dirs["/data"] = 0
    layout.dirs["/config"] = 0
    layout.dirs["/srv"] = 0
    layout.changes = [
        "ENV XDG_CONFIG_HOME=/config",
        "ENV XDG_DATA_HOME=/data",
        "WORKDIR /srv",
        "EXPOSE 80 443 2019",
        'CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]',
    ]
    return import_image(engine, f"caddy:{version}", layout)


COLLECTOR_DEFAULT_CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 0.0.0.0:4317}
      http: {endpoint: 0.0.0.0:4318}
exporters:
  debug: {}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
"""


def collector_image(engine: Engine) -> str:
    """otel/opentelemetry-collector-contrib:<release>, the stack's build laid out as the official image."""
    from stack.collector_build import build

    binary = build().path  # a cached build returns at once
    version = binary_version([str(binary), "--version"])
    layout = Layout()
    layout.files["/otelcol-contrib"] = binary
    layout.files["/etc/ssl/certs/ca-certificates.crt"] = Path("/etc/ssl/certs/ca-certificates.crt")
    layout.texts["/etc/otelcol-contrib/config.yaml"] = COLLECTOR_DEFAULT_CONFIG
    layout.changes = [
        "USER 10001:10001",
        "EXPOSE 4317 4318 55679",
        'ENTRYPOINT ["/otelcol-contrib"]',
        'CMD ["--config", "/etc/otelcol-contrib/config.yaml"]',
    ]
    return import_image(engine, f"otel/opentelemetry-collector-contrib:{version}", layout)


def exits_at_start_image(engine: Engine) -> str:
    """An image whose entrypoint prints an error and exits 3 at once: a component that cannot start
    (for the diagnosis `stack up` gives), whatever the reason inside."""
    layout = Layout()
    layout.add_busybox()
    layout.changes = [
        "USER nobody",
        'ENTRYPOINT ["/bin/sh", "-c", "echo \\"fatal: cannot start (test image exits at start)\\"; exit 3", "--"]',
    ]
    return import_image(engine, "stack-test/exits-at-start:1", layout)


PYTHON_STDLIB = Path("/usr/lib/python3.11")
# Standard-library parts a small HTTP server never needs: left out to keep the image (copied whole
# per container by vfs) small.
_STDLIB_SKIPPED = {
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "pydoc_data",
    "dist-packages",
    "site-packages",
    "config-3.11-x86_64-linux-gnu",
    "lib-dynload",
    "__pycache__",
    "unittest",
    "sqlite3",
}
_DYNLOAD = (
    "_json",
    "_hashlib",
    "_queue",
    "_contextvars",
    "_decimal",
    "_uuid",
    "_bz2",
    "_lzma",
    "mmap",
    "resource",
    "_multibytecodec",
    "_zoneinfo",
    "_typing",
    "_posixshmem",
    "_asyncio",
    "_ssl",
)


def _add_python(layout: Layout) -> None:
    """Debian's Python 3.11 and the parts of its standard library a small server uses."""
    layout.add_binary(Path("/usr/bin/python3.11"), "/usr/bin/python3")
    for path in sorted(PYTHON_STDLIB.rglob("*")):
        relative = path.relative_to(PYTHON_STDLIB)
        if path.is_file() and path.suffix == ".py" and not _STDLIB_SKIPPED & set(relative.parts):
            layout.files[f"/usr/lib/python3.11/{relative}"] = path
    for module in _DYNLOAD:
        for found in (PYTHON_STDLIB / "lib-dynload").glob(f"{module}.cpython-311-*.so"):
            layout.add_binary(found, f"/usr/lib/python3.11/lib-dynload/{found.name}")
    layout.changes.append("ENV PYTHONDONTWRITEBYTECODE=1")


def _add_site_packages(layout: Layout, packages: Iterable[str], target: str) -> None:
    """Packages of this virtualenv (grpcio, protobuf...), compiled parts with the libraries they need."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    for package in packages:
        if (site / package).is_file():  # a one-file module (typing_extensions.py)
            layout.files[f"{target}/{package}"] = site / package
            continue
        for path in sorted((site / package).rglob("*")):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            destination = f"{target}/{path.relative_to(site)}"
            if path.suffix == ".so":
                layout.add_binary(path, destination)
            elif path.suffix in (".py", ".pyi") or path.name == "roots.pem":
                layout.files[destination] = path


def grafana_standin_image(engine: Engine) -> str:
    """grafana/grafana:standin: Grafana's stand-in (tests/support/fake_grafana.py, its documented HTTP API) laid out
    as the official image: user 472, data /var/lib/grafana owned by it, provisioning under
    /etc/grafana/provisioning, a shell and wget (the compose healthcheck's), port 3000."""
    layout = Layout()
    layout.add_busybox()
    layout.texts["/etc/passwd"] += "grafana:x:472:0::/usr/share/grafana:/bin/false\n"
    _add_python(layout)
    here = Path(__file__).parent
    layout.files["/standin/fake_grafana.py"] = here / "fake_grafana.py"
    layout.files["/standin/grafana_standin.py"] = here / "standins" / "grafana_standin.py"
    layout.dirs["/var/lib/grafana"] = 472
    layout.dirs["/etc/grafana/provisioning"] = 472
    layout.changes += [
        "USER 472",
        "WORKDIR /usr/share/grafana",
        "EXPOSE 3000",
        'ENTRYPOINT ["/usr/bin/python3", "/standin/grafana_standin.py"]',
    ]
    return import_image(engine, "grafana/grafana:standin", layout)


def _otlp_standin(engine: Engine, role: str, tag: str, data: str, ports: str) -> str:
    layout = Layout()
    # As the official images: no shell, user 10001, the data directory owned by it.
    layout.texts["/etc/passwd"] = (
        "root:x:0:0:root:/root:/sbin/nologin\n" + f"{role}:x:10001:10001::{data}:/sbin/nologin\n"
    )
    layout.texts["/etc/group"] = f"root:x:0:\n{role}:x:10001:\n"
    layout.dirs["/tmp"] = 0
    _add_python(layout)
    packages = ("grpc", "google/protobuf", "google/_upb", "opentelemetry/proto", "typing_extensions.py")
    _add_site_packages(layout, packages, "/standin")
    layout.files["/standin/otlp_standin.py"] = Path(__file__).parent / "standins" / "otlp_standin.py"
    layout.dirs[data] = 10001
    layout.changes += [
        "USER 10001",
        f"EXPOSE {ports}",
        f'ENTRYPOINT ["/usr/bin/python3", "/standin/otlp_standin.py", "{role}"]',
    ]
    return import_image(engine, tag, layout)


def loki_standin_image(engine: Engine) -> str:
    """grafana/loki:standin (tests/support/standins/otlp_standin.py): /ready, /metrics and OTLP/HTTP log ingest on
    3100, laid out as the official image (user 10001, `/loki`, no shell)."""
    return _otlp_standin(engine, "loki", "grafana/loki:standin", "/loki", "3100")


def tempo_standin_image(engine: Engine) -> str:
    """grafana/tempo:standin (tests/support/standins/otlp_standin.py): /ready, /metrics and /api/traces/<id> on 3200,
    OTLP/gRPC on 4317, laid out as the official image (user 10001, `/var/tempo`, no shell)."""
    return _otlp_standin(engine, "tempo", "grafana/tempo:standin", "/var/tempo", "3200 4317")
