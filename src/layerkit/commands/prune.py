"""``layerkit prune``: remove build cache, as ``docker builder prune`` does.

    layerkit prune [-a|--all] [--keep-storage SIZE] [--filter until=DURATION] [-f]
                   [--dry-run] [--root DIR]

Default: cache records no tagged image uses ("dangling"); ``--all``: every
record and idle cache mount. ``--filter until=24h``: only what was last used
more than that long ago. ``--keep-storage 10GB``: least recently used first,
stopping once the build cache fits. Tagged images' blobs are always kept, and
garbage nothing references is always collected. See docs/store.md
"Management and prune". Runs under the store's exclusive gc lock: it waits
for running builds to finish.

Output (like docker): ``Deleted build cache objects:`` and one id per line
(cache records by key digest, snapshots, cache mounts), then
``Total reclaimed space: SIZE``.
"""

from __future__ import annotations

import sys

import click

from layerkit.dockerfile.durations import parse_duration
from layerkit.errors import BuildError
from layerkit.store.paths import resolve_root
from layerkit.store.pruning import PruneOptions, PrunePlan, prune
from layerkit.store.units import human_size, parse_size


def _bad_flag(message: str, hint: str) -> BuildError:
    return BuildError(message, hint=hint, reference="bad-flag")


def parse_filters(filters: tuple[str, ...]) -> float | None:
    """``until=DURATION`` → seconds. Other filters are refused (not implemented)."""
    until: float | None = None
    for item in filters:
        key, eq, value = item.partition("=")
        if key.strip().lower() != "until" or not eq:
            raise _bad_flag(f"--filter {item!r}: unsupported filter",
                            "supported: --filter until=DURATION (e.g. until=24h)")
        try:
            until = parse_duration(value.strip()) / 1e9
        except ValueError:
            raise _bad_flag(f"--filter {item!r}: invalid duration",
                            "use a Go duration such as 24h, 90m or 1h30m") from None
        if until < 0:
            raise _bad_flag(f"--filter {item!r}: negative duration", "use e.g. until=24h")
    return until


def object_ids(plan: PrunePlan) -> list[str]:
    ids = [r.key.rsplit(":", 1)[-1][:25] for r in plan.records]
    ids += plan.snapshots
    ids += [f"cachemount:{m.name}" for m in plan.cache_mounts]
    return ids


@click.command(name="prune")
@click.option("-a", "--all", "all_", is_flag=True,
              help="Remove all build cache and cache mounts, not just dangling records.")
@click.option("--keep-storage", type=str, default=None,
              help="Keep this much build cache, most recently used first (e.g. 10GB).")
@click.option("--filter", "filters", multiple=True,
              help="until=DURATION: only remove cache last used before that long ago.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
@click.option("--root", type=click.Path(file_okay=False), envvar="LAYERKIT_ROOT",
              default=None, help="Store root (default: $LAYERKIT_ROOT or the user default).")
def command(all_: bool, keep_storage: str | None, filters: tuple[str, ...], force: bool,
            dry_run: bool, root: str | None) -> None:
    """Remove build cache."""
    keep: int | None = None
    if keep_storage is not None:
        try:
            keep = parse_size(keep_storage)
        except ValueError:
            raise _bad_flag(f"--keep-storage {keep_storage!r}: invalid size",
                            "use a size such as 10GB, 512mb or 1.5G") from None
    options = PruneOptions(all=all_, keep_storage=keep, until=parse_filters(filters))
    if not force and not dry_run:
        what = "all build cache" if all_ else "all dangling build cache"
        click.echo(f"WARNING! This will remove {what}. Are you sure you want to continue? "
                   "[y/N] ", nl=False, err=True)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            click.echo("Total reclaimed space: 0B")
            return

    def waiting() -> None:
        click.echo("waiting for running builds to release the store...", err=True)

    plan = prune(resolve_root(root), options, dry_run=dry_run, on_wait=waiting)
    ids = object_ids(plan)
    if ids:
        click.echo("Would delete build cache objects:" if dry_run
                   else "Deleted build cache objects:")
        for ident in ids:
            click.echo(ident)
        click.echo("")
    label = "Total reclaimable space" if dry_run else "Total reclaimed space"
    click.echo(f"{label}: {human_size(plan.reclaimed)}")
