"""One doctor run: the settings checks, the outside probes and, when the stack answers, the live checks."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from stack.doctor.exposure import public_tls, reachable_from_here
from stack.doctor.findings import Report
from stack.doctor.live_checks import check_stack
from stack.doctor.settings_checks import DEFAULT_BACKUP_DAYS, check_settings, load_for_doctor
from stack.errors import StackError
from stack.paths import Paths
from stack.runtime.base import Runtime
from stack.settings import (
    Settings,
)


def diagnose(
    paths: Paths,
    *,
    runtime_factory: Callable[[Settings], Runtime] | None = None,
    backup_days: int = DEFAULT_BACKUP_DAYS,
    skip: Iterable[str] = (),
    outside_host: str | None = None,
) -> Report:
    """Check the settings and, when `runtime_factory` is given and its stack answers, the running stack.

    `outside_host` (the server of `--host ssh://...`) is probed from this machine on every port the
    components listen on.
    """
    settings, early = load_for_doctor(paths)
    report = check_settings(settings, paths, backup_days=backup_days)
    report.findings[:0] = early
    if outside_host:
        report.findings.extend(reachable_from_here(settings, outside_host))
        report.checked.append(f"reachable from here ({outside_host})")
        if settings.component("proxy").enabled:
            report.findings.extend(public_tls(settings, outside_host))
            report.checked.append("public TLS")
    if runtime_factory is not None:
        runtime = runtime_factory(settings)
        report.target = f"settings and the running stack ({runtime.name})"
        try:
            runtime.check()
            running = [s for s in runtime.ps() if s.running]
        except StackError as exc:
            report.skipped["running stack"] = exc.one_line()
        else:
            if running:
                check_stack(settings, paths, runtime, report)
            else:
                report.skipped["running stack"] = "no component is running"
    ignored = set(skip)
    report.findings = [f for f in report.findings if f.id not in ignored]
    return report
