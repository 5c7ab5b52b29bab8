"""`stack doctor`: security and health findings on the settings and, when it answers, the running stack.

- `findings`: the Finding and Report data (no rendering: the CLI layer prints them);
- `settings_checks`: what stack.yaml and the files beside it say (secrets, TLS files, backups, pins);
- `exposure`: who can reach the stack (published ports; probes from outside a server);
- `live_checks`: the running stack, through the `Runtime` interface;
- `swarm`: the swarm itself (quorum, the backend label, nodes that are down);
- `certs`: certificate dates, shared by the TLS-file check and the outside probe;
- `run`: one doctor run, all of the above into one report.
"""

from __future__ import annotations

from stack.doctor.findings import Finding, Report, Severity
from stack.doctor.live_checks import check_stack
from stack.doctor.run import diagnose
from stack.doctor.settings_checks import DEFAULT_BACKUP_DAYS, check_settings, load_for_doctor

__all__ = [
    "DEFAULT_BACKUP_DAYS",
    "Finding",
    "Report",
    "Severity",
    "check_settings",
    "check_stack",
    "diagnose",
    "load_for_doctor",
]
