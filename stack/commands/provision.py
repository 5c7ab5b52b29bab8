"""`stack provision`: the Grafana step alone, against the stack's Grafana or any other one."""

from __future__ import annotations

import json
from pathlib import Path

import click

from stack.commands.options import open_runtime, runtime_options
from stack.errors import SettingsError, StackError


def _read_password(path: Path) -> str:
    """A secret from a file that only its owner may read."""
    try:
        mode = path.stat().st_mode & 0o777
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the secret file: {exc.strerror}") from None
    if mode & 0o077:
        raise StackError(f"{path}: secret file is readable by others (mode {mode:o})", hint=f"run: chmod 600 {path}")
    if not text:
        raise SettingsError(f"{path}: the secret file is empty")
    return text


@click.command("provision")
@runtime_options
@click.option("--grafana-url", metavar="URL", help="Provision this Grafana (local or hosted) instead of the stack's.")
@click.option(
    "--token", metavar="TOKEN", envvar="STACK_GRAFANA_TOKEN", help="Service-account token [env STACK_GRAFANA_TOKEN]."
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the token (0600): keeps it off the command line.",
)
@click.option("--user", metavar="USER", help="Basic-auth user (with --password-file).")
@click.option(
    "--password-file", type=click.Path(dir_okay=False, path_type=Path), help="File holding the user's password (0600)."
)
@click.option("--prometheus-url", metavar="URL", help="With --grafana-url: Prometheus as that Grafana reaches it.")
@click.option("--loki-url", metavar="URL", help="With --grafana-url: Loki's URL.")
@click.option("--tempo-url", metavar="URL", help="With --grafana-url: Tempo's URL.")
@click.option("--alertmanager-url", metavar="URL", help="With --grafana-url: Alertmanager's URL.")
@click.option(
    "--dashboards",
    "dashboard_dirs",
    multiple=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Also push the dashboards (*.json) of this directory (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
def command(
    ctx: click.Context,
    runtime_name: str | None,
    host: str | None,
    *,
    grafana_url: str | None,
    token: str | None,
    token_file: Path | None,
    user: str | None,
    password_file: Path | None,
    prometheus_url: str | None,
    loki_url: str | None,
    tempo_url: str | None,
    alertmanager_url: str | None,
    dashboard_dirs: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Push folders, datasources and dashboards to Grafana; only what changed is written.

    Without --grafana-url: the stack's own Grafana, with the token `stack up` created. With it:
    any Grafana, given --token (or STACK_GRAFANA_TOKEN) or --user and --password-file; the
    datasources pushed are those given a URL (--prometheus-url...); for the other types the packs
    use that Grafana's own datasources (its default one of each type), and say which.
    """
    from stack.grafana import provision as provisioning
    from stack.grafana.client import Auth

    if grafana_url:
        if token_file:
            auth = Auth(token=_read_password(token_file), source=f"the token in {token_file}")
        elif token:
            auth = Auth(token=token, source="the token given")
        elif user and password_file:
            auth = Auth(user=user, password=_read_password(password_file), source=f"user {user!r}")
        else:
            raise SettingsError(
                "--grafana-url needs credentials",
                hint="give --token-file or --token (or STACK_GRAFANA_TOKEN), or --user with --password-file",
            )
        urls = {
            uid: url
            for uid, url in (
                ("prometheus", prometheus_url),
                ("loki", loki_url),
                ("tempo", tempo_url),
                ("alertmanager", alertmanager_url),
            )
            if url
        }
        from stack.grafana.dashboards import load_dashboards

        # Types given no URL are bound to that Grafana's own datasources; packs needing a type found
        # nowhere are left out (their panels would only show errors), and the notes say so.
        dashboards = load_dashboards(user_dirs=list(dashboard_dirs))
        result = provisioning.provision_external(grafana_url, auth, datasource_urls=urls, dashboards=dashboards)
    else:
        opened = open_runtime(ctx, runtime_name, host)
        if not opened.settings.component("grafana").enabled:
            raise StackError("Grafana is disabled in stack.yaml", hint="use --grafana-url to provision another one")
        opened.runtime.check()
        result = provisioning.provision_stack(
            opened.paths, opened.settings, opened.runtime, extra_dirs=list(dashboard_dirs)
        )
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    click.echo(f"Grafana {result.version} at {result.grafana}: {result.summary()}")
    for note in result.notes:
        click.echo(f"note: {note}")
