"""``layerkit plan``: predict what ``layerkit build`` would reuse and run, and why.

    layerkit plan [same options as build] [--format text|json] CONTEXT

Nothing is run and nothing is recorded: base images are resolved (metadata
only) and context files checksummed (through the stat cache), and every step's
keys are probed in the key store. Estimated times come from the last run.
"""

from __future__ import annotations

from typing import Any

import click

from layerkit.commands._buildflags import build_flags, to_options


@click.command(name="plan")
@build_flags
@click.option("-t", "--tag", "tag", multiple=True, hidden=True,
              help="Accepted for symmetry with build; ignored.")
@click.option("-o", "--output", "output", multiple=True, hidden=True,
              help="Accepted for symmetry with build; ignored.")
@click.option("--progress", default="auto", hidden=True, help="Accepted; ignored.")
@click.option("--metadata-file", "metadata_file", default=None, hidden=True,
              help="Accepted; ignored.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
def command(**kw: Any) -> None:
    """Predict which steps a build would reuse or run, with reasons and estimates."""
    from layerkit.worker.session import run_plan

    result = run_plan(to_options(kw))
    click.echo(result.render_json() if kw["fmt"] == "json" else result.render_text())
