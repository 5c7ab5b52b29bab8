"""Every command that reads stack.yaml refuses a name only the bundled files know (a dashboard pack,
a rule-pack threshold) with the same one line and exit 2, before doing anything.

Settings cannot check those names itself (the modules that read the bundled files sit above it);
they are checked after loading (stack.project.SETTINGS_CHECKS). This proves that no command's
loading path leaves them out, including doctor's lenient one. The commands come from the CLI's own
table, so a new command is covered (or must be named here) without anyone remembering to.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stack.cli import COMMANDS
from tests.conftest import invoke

# Commands that never read stack.yaml.
NO_SETTINGS = {"init"}
# The arguments a command needs before it gets as far as loading the settings.
ARGUMENTS = {"restore": ["backup.tar.gz"], "deploy": ["--host", "ssh://user@127.0.0.1:1"]}

CASES = {
    "dashboard-pack": (
        "dashboards:\n  packs:\n    - stack-health\n    - slo\n",
        "stack.yaml:4: dashboards.packs[1]: 'slo' is not a dashboard pack (hint: did you mean 'slos'?)",
    ),
    "rule-threshold": (
        "rules:\n  http:\n    thresholds:\n      error_rate_warning: 0.02\n",
        "stack.yaml:4: rules.http.thresholds.error_rate_warning: unknown threshold "
        "(hint: did you mean 'error_ratio_warning'?)",
    ),
}


def test_the_commands_named_here_exist() -> None:
    assert {*ARGUMENTS, *NO_SETTINGS} <= set(COMMANDS)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", [name for name in COMMANDS if name not in NO_SETTINGS])
def test_an_unknown_bundled_name_is_one_line_exit_2_on_every_command(
    project_dir: Path, command: str, case: str
) -> None:
    text, message = CASES[case]
    (project_dir / "stack.yaml").write_text(text)
    result = invoke(command, *ARGUMENTS.get(command, []))
    assert result.exit_code == 2, result.output
    assert re.fullmatch(rf"Error: {re.escape(message)}\n", result.stderr), result.stderr
    assert sorted(path.name for path in project_dir.iterdir()) == ["stack.yaml"]
