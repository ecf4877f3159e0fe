"""``layerkit du``: disk usage of the store, by kind, with what ``prune --all`` would free.

    layerkit du [--format table|json] [--root DIR]

Rows: blobs, snapshots, cache mounts, key store, other, then Total; the kinds
partition the root, so SIZE adds up to the total. RECLAIMABLE is what
``layerkit prune --all`` would free now (tagged images' blobs are never
reclaimable; cache mounts in use by a running step are not counted). The key
store's figure is an estimate: the bytes of its rows, which prune's VACUUM
gives back. ``--format json`` gives the same in bytes.
"""

from __future__ import annotations

import json

import click

from layerkit.store.paths import resolve_root
from layerkit.store.pruning import disk_usage
from layerkit.store.table import render_table
from layerkit.store.units import human_size


@click.command(name="du")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@click.option("--root", type=click.Path(file_okay=False), envvar="LAYERKIT_ROOT",
              default=None, help="Store root (default: $LAYERKIT_ROOT or the user default).")
def command(fmt: str, root: str | None) -> None:
    """Show how much disk the store uses and how much prune could free."""
    store_root = resolve_root(root)
    usage = disk_usage(store_root)
    if fmt == "json":
        click.echo(json.dumps({
            "root": str(store_root),
            "kinds": [{"kind": k.kind, "count": k.count if k.count >= 0 else None,
                       "size": k.size, "reclaimable": k.reclaimable} for k in usage.kinds],
            "total": usage.total, "reclaimable": usage.reclaimable,
        }, indent=2))
        return
    rows = [[k.kind, str(k.count) if k.count >= 0 else "-", human_size(k.size),
             human_size(k.reclaimable)] for k in usage.kinds]
    rows.append(["Total", "", human_size(usage.total), human_size(usage.reclaimable)])
    click.echo(render_table(["TYPE", "COUNT", "SIZE", "RECLAIMABLE"], rows), nl=False)
