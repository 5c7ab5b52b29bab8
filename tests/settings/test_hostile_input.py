"""Hostile settings, class by class: refused before anything starts, in one line naming the file and
the field, with exit 2, and nothing written (docs/hostile-input.md is the table of these rules)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from stack.settings import MAX_PROJECT_LENGTH
from tests.conftest import invoke

BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}' if prev else 'x'] * 9)}]\n"
    for prev, name in zip(["", "a", "b", "c", "d", "e", "f", "g"], "abcdefgh", strict=True)
)

# case -> (stack.yaml text, what the one line must contain)
HOSTILE_SETTINGS: dict[str, tuple[str, str]] = {
    "alias bomb": (BOMB, "refused: expands to more than 100000 nodes through aliases"),
    "2000 levels of nesting": ("a: " + "[" * 2000 + "]" * 2000 + "\n", "stack.yaml:1: refused: nested deeper than 64"),
    "deep block nesting": (
        "".join("  " * depth + f"k{depth}:\n" for depth in range(100)) + "  " * 100 + "x: 1\n",
        "refused: nested deeper than 64 levels",
    ),
    "port: true": ("components:\n  grafana:\n    port: true\n", "components.grafana.port: expected a whole number"),
    "port as a string": ('components:\n  loki:\n    port: "3100"\n', "components.loki.port: expected a whole number"),
    "sampling_ratio: true": (
        "components:\n  otel-collector:\n    sampling_ratio: true\n",
        "components.otel-collector.sampling_ratio: expected a number",
    ),
    "retention past a Go duration": (
        "components:\n  prometheus:\n    retention: 300y\n",
        "stack.yaml:3: components.prometheus.retention: '300y' is longer than a Go duration can hold",
    ),
    "hours past a Go duration": (
        "components:\n  tempo:\n    retention: 2562048h\n",
        "components.tempo.retention: '2562048h' is longer than a Go duration can hold",
    ),
    "a duration of 4000 digits": (
        "alerting:\n  group_wait: " + "9" * 4000 + "s\n",
        "alerting.group_wait: '" + "9" * 4000 + "s' is not a duration",
    ),
    "memory past GOMEMLIMIT": (
        "components:\n  loki:\n    memory: 9000000T\n",
        "components.loki.memory: '9000000T' is more than a Go memory limit can hold",
    ),
    "project name too long": (
        f"project: {'p' * (MAX_PROJECT_LENGTH + 1)}\n",
        f"stack.yaml:1: project: '{'p' * 20}'... is a project name longer than {MAX_PROJECT_LENGTH}",
    ),
    "image with a space": (
        "components:\n  grafana:\n    image: grafana/grafana:13.2.0 --privileged\n",
        "components.grafana.image: 'grafana/grafana:13.2.0 --privileged' is not an image reference",
    ),
    "image that is a flag": (
        "components:\n  grafana:\n    image: --rm\n",
        "components.grafana.image: '--rm' is not an image reference",
    ),
    "image with upper case": (
        "components:\n  loki:\n    image: Grafana/Loki:3.7.8\n",
        "components.loki.image: 'Grafana/Loki:3.7.8' is not an image reference",
    ),
    "tag too long": (
        f"components:\n  loki:\n    image: grafana/loki:{'1' * 129}\n",
        "components.loki.image:",
    ),
    "empty admin_user": (
        "components:\n  grafana:\n    admin_user: ''\n",
        "components.grafana.admin_user: '' is not a user name",
    ),
    "admin_user with a newline": (
        'components:\n  grafana:\n    admin_user: "ad\\nmin"\n',
        "components.grafana.admin_user: 'ad\\nmin' is not a user name",
    ),
    "admin_user with a colon": (
        "components:\n  grafana:\n    admin_user: 'a:b'\n",
        "components.grafana.admin_user: 'a:b' is not a user name",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_SETTINGS))
def test_hostile_settings_are_refused_in_one_line(project_dir: Path, case: str) -> None:
    text, expected = HOSTILE_SETTINGS[case]
    (project_dir / "stack.yaml").write_text(text)
    result = invoke("render")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: stack.yaml")
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1
    assert sorted(p.name for p in project_dir.iterdir()) == ["stack.yaml"]


@pytest.mark.parametrize(
    "image",
    [
        "grafana/grafana:13.2.0",
        "registry.example.com:5000/team/grafana:13.2.0",
        "localhost/otel/opentelemetry-collector-contrib:0.160.0",
        "[::1]:5000/grafana/loki:3.7.8",
        "grafana/loki@sha256:" + "a" * 64,
        "grafana/loki:3.7.8@sha256:" + "b" * 64,
        "my_org/my__image-x.y:v1_2",
    ],
)
def test_every_valid_image_reference_is_accepted(project_dir: Path, image: str) -> None:
    (project_dir / "stack.yaml").write_text(f"components:\n  loki:\n    image: '{image}'\n")
    assert invoke("render").exit_code == 0


def test_the_longest_project_name_renders(project_dir: Path) -> None:
    (project_dir / "stack.yaml").write_text(f"project: {'p' * MAX_PROJECT_LENGTH}\n")
    assert invoke("render").exit_code == 0


# --- files that are no settings file: run as a real process, so that a hang is a failure ----------


def _limit_memory() -> None:
    # A regression to walking the aliases grew to GBs; 1 GiB of address space is plenty for us.
    resource.setrlimit(resource.RLIMIT_AS, (1024**3, 1024**3))


def _stack(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STACK_")}
    return subprocess.run(
        [sys.executable, "-m", "stack", *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_memory,
    )


def _refused(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_alias_bomb_is_refused_fast_and_small(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(BOMB)
    _refused(_stack(tmp_path, "render"), "nodes through aliases")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stack.yaml"]


def test_a_huge_settings_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    with (tmp_path / "stack.yaml").open("w") as handle:
        handle.write("project: x\n")
        handle.truncate(64 * 1024**2)  # sparse: 64 MiB that cost no disk
    _refused(_stack(tmp_path, "render"), "stack.yaml: refused: larger than 1 MiB")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_device_as_settings_file_is_refused(tmp_path: Path, device: str) -> None:
    _refused(_stack(tmp_path, "-c", device, "render"), f"{device}: is not a regular file (it is a character device)")
    _refused(_stack(tmp_path, "credentials", env={"STACK_CONFIG": device}), f"{device}: is not a regular file")
    assert not Path("/dev/.stack").exists() and not Path("/dev/.stack-secrets").exists()


def test_a_fifo_named_stack_yaml_is_refused_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "stack.yaml")
    _refused(_stack(tmp_path, "render"), "stack.yaml: is not a regular file (it is a FIFO)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stack.yaml"]


def test_a_dangling_symlink_named_stack_yaml_is_refused(project_dir: Path) -> None:
    (project_dir / "stack.yaml").symlink_to(project_dir / "gone.yaml")
    result = invoke("credentials")
    assert result.exit_code == 2
    assert "stack.yaml: is a symlink to" in result.stderr and "which does not exist" in result.stderr
    # No password was generated for a stack the user did not describe.
    assert sorted(p.name for p in project_dir.iterdir()) == ["stack.yaml"]


def test_a_symlink_loop_named_stack_yaml_is_refused(project_dir: Path) -> None:
    (project_dir / "stack.yaml").symlink_to(project_dir / "other.yaml")
    (project_dir / "other.yaml").symlink_to(project_dir / "stack.yaml")
    result = invoke("render")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: stack.yaml: is a symlink that loops (hint: point -c (or STACK_CONFIG) at a regular YAML file,"
        " or remove what is in the way)\n"
    )


def test_a_symlink_to_a_real_file_is_followed(project_dir: Path) -> None:
    (project_dir / "real.yaml").write_text("project: linked\n")
    (project_dir / "stack.yaml").symlink_to("real.yaml")
    result = invoke("render")
    assert result.exit_code == 0
    assert "name: linked" in (project_dir / ".stack" / "compose.yaml").read_text()


def test_a_missing_file_named_with_c_is_said_on_stderr(project_dir: Path) -> None:
    result = invoke("-c", "typo.yaml", "render")
    assert result.exit_code == 0
    assert result.stderr.count("Note: typo.yaml does not exist; using the built-in defaults.") == 1


def test_init_over_a_symlink_keeps_the_link(project_dir: Path) -> None:
    (project_dir / "dotfiles").mkdir()
    (project_dir / "dotfiles" / "stack.yaml").write_text("project: old\n")
    (project_dir / "stack.yaml").symlink_to("dotfiles/stack.yaml")
    assert invoke("init").exit_code == 2
    result = invoke("init", "--force")
    assert result.exit_code == 0, result.stderr
    assert (project_dir / "stack.yaml").is_symlink()
    assert (project_dir / "dotfiles" / "stack.yaml").read_text().startswith("# stack.yaml")
    assert invoke("-c", "typo.yaml", "init").stderr == ""


def test_init_refuses_a_device(project_dir: Path) -> None:
    result = invoke("-c", "/dev/null", "init", "--force")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: /dev/null: is not a regular file")


# --- files stack.yaml names: bounded the same way ------------------------------------------------


def test_a_rule_file_alias_bomb_is_refused(project_dir: Path) -> None:
    (project_dir / "bomb.yml").write_text("groups: []\n" + BOMB.replace("a: &a", "z: &a", 1))
    (project_dir / "stack.yaml").write_text("rules:\n  files: [bomb.yml]\n")
    result = invoke("render")
    assert result.exit_code == 2
    assert "rules.files: rule file" in result.stderr
    assert "is refused: expands to more than 2000000 nodes through aliases" in result.stderr
    assert sorted(p.name for p in project_dir.iterdir()) == ["bomb.yml", "stack.yaml"]


def test_a_fifo_among_the_dashboards_is_refused_not_waited_on(tmp_path: Path) -> None:
    (tmp_path / "dash").mkdir()
    os.mkfifo(tmp_path / "dash" / "board.json")
    (tmp_path / "stack.yaml").write_text("dashboards:\n  dirs: [dash]\n")
    result = _stack(tmp_path, "validate", "--json")
    assert "board.json: is not a regular file" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("depth", [65, 200_000])
def test_a_dashboard_nested_too_deep_is_refused(tmp_path: Path, depth: int) -> None:
    # 200 000 levels raised RecursionError in json.loads: a crash (exit 3) of validate.
    (tmp_path / "dash").mkdir()
    (tmp_path / "dash" / "board.json").write_text("[" * depth + "]" * depth)
    (tmp_path / "stack.yaml").write_text("dashboards:\n  dirs: [dash]\n")
    result = _stack(tmp_path, "validate", "--json")
    checks = {check["name"]: check for check in json.loads(result.stdout)}
    assert checks["dashboards"]["status"] == "failed"
    assert "board.json: refused: nested deeper than 64 levels" in checks["dashboards"]["detail"]
    assert "Traceback" not in result.stderr
