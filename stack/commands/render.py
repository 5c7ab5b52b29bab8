from __future__ import annotations

import click

from stack.commands import paths_from
from stack.project import load, render_to_disk


@click.command("render")
@click.option(
    "--out", "out", type=click.Path(file_okay=False), help="Output directory [default: .stack/ beside stack.yaml]."
)
@click.option(
    "--runtime",
    "runtime_name",
    type=click.Choice(["docker", "process", "swarm"]),
    help="With swarm, also the stack for `docker stack deploy` (swarm/ in the output directory).",
)
@click.pass_context
def command(ctx: click.Context, out: str | None, runtime_name: str | None) -> None:
    """Render the self-contained compose project from stack.yaml."""
    paths = paths_from(ctx, render_dir=out)
    settings = load(paths)
    if (runtime_name or settings.runtime) == "swarm":
        from stack.runtime.swarmrender import render_swarm, swarm_dir, write_swarm

        # Checked first: a setting Swarm cannot run is said before anything is written.
        swarm = render_swarm(settings, paths)
        result = render_to_disk(paths, settings)
        target = write_swarm(swarm, swarm_dir(paths))
        click.echo(f"Rendered {target} for docker stack deploy ({len(swarm.stack['services'])} services).")
    else:
        result = render_to_disk(paths, settings)
    click.echo(f"Rendered {result.compose_file} ({len(result.services)} services: {', '.join(result.services)}).")
