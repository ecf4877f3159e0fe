"""``layerkit fsck``: check the store's integrity, and repair it on request.

    layerkit fsck [--repair] [--format text|json] [--root DIR]

Verifies every blob's digest, every snapshot (marker, files, parents), every
key-store record's result, every tagged image's config → manifest → layers
chain, and finds crash leftovers (temp files, abandoned snapshots, objects
nothing references). ``--repair`` drops what is corrupt, broken or
unreachable. Runs under the store's exclusive gc lock, so it waits for
running builds. Exit status: 0 when nothing corrupt or broken remains
(leftovers alone are reported but are not an error), 1 otherwise.
See docs/reliability.md.
"""

from __future__ import annotations

import json

import click

from layerkit.store.fsck import FsckReport, fsck
from layerkit.store.paths import resolve_root


def render(report: FsckReport) -> list[str]:
    """The text report: one line per finding, then a summary line."""
    lines = []
    for p in report.problems:
        action = "  [repaired]" if p.repaired else ""
        lines.append(f"{p.severity:<8} {p.kind:<22} {p.subject}: {p.detail}{action}")
    checked = ", ".join(f"{n} {what}" for what, n in sorted(report.checked.items()))
    lines.append(f"checked {checked or 'an empty store'}")
    serious = report.serious
    garbage = sum(1 for p in report.problems if p.severity == "garbage")
    repaired = sum(1 for p in report.problems if p.repaired)
    if serious:
        lines.append(f"{len(serious)} problem(s) need attention; run `layerkit fsck --repair` "
                     "to drop what is corrupt")
    elif report.repair and repaired:
        lines.append(f"store repaired: {repaired} finding(s) fixed")
    elif garbage:
        lines.append(f"store is consistent; {garbage} leftover(s) can be removed with --repair "
                     "or `layerkit prune`")
    else:
        lines.append("store is consistent")
    return lines


@click.command(name="fsck")
@click.option("--repair", is_flag=True,
              help="Drop what is corrupt, broken or unreachable (under the gc lock).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@click.option("--root", type=click.Path(file_okay=False), envvar="LAYERKIT_ROOT",
              default=None, help="Store root (default: $LAYERKIT_ROOT or the user default).")
@click.pass_context
def command(ctx: click.Context, repair: bool, fmt: str, root: str | None) -> None:
    """Check the store's integrity (blobs, snapshots, cache records, images)."""

    def waiting() -> None:
        click.echo("waiting for running builds to release the store...", err=True)

    report = fsck(resolve_root(root), repair=repair, on_wait=waiting)
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        for line in render(report):
            click.echo(line)
    ctx.exit(0 if report.clean else 1)
