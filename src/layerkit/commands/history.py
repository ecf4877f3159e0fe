"""``layerkit history``: an image's history entries with their layer sizes (``docker history``).

    layerkit history IMAGE [--no-trunc] [--format table|json] [-q] [--root DIR]

Newest entry first. Columns: IMAGE (the image id on the top entry, ``<missing>``
below it, as Docker with the containerd store shows), CREATED, CREATED BY
(tabs and newlines become spaces; cut to 45 characters with "…" unless
``--no-trunc``), SIZE (the uncompressed layer tar of that entry; ``0B`` for
``empty_layer`` entries), COMMENT. ``--format json`` prints one object per line
with docker's keys (Comment, CreatedAt, CreatedBy, CreatedSince, ID, Size).
"""

from __future__ import annotations

import json
import time

import click

from layerkit.commands.images import since
from layerkit.content.images import ImageIndex
from layerkit.content.store import ContentStore
from layerkit.fastclass import dataclass
from layerkit.store.catalog import ImageDetails, details, parse_created, resolve
from layerkit.store.paths import resolve_root
from layerkit.store.table import render_table
from layerkit.store.units import human_size

CREATED_BY_WIDTH = 45


@dataclass(frozen=True)
class HistoryRow:
    id: str
    created: float | None
    created_by: str
    size: int
    comment: str


def ellipsis(text: str, width: int) -> str:
    """Docker's ``stringutils.Ellipsis`` for single-width text."""
    return text if len(text) <= width else text[: width - 1] + "…"


def rows_for(image: ImageDetails) -> list[HistoryRow]:
    """History entries, oldest first, each with the size of the layer it added."""
    sizes = list(image.layer_sizes)
    out = []
    for entry in image.config.history:
        size = 0
        if not entry.empty_layer and sizes:
            size = max(0, sizes.pop(0))
        out.append(HistoryRow("<missing>", parse_created(entry.created), entry.created_by or "",
                              size, entry.comment or ""))
    return out


@click.command(name="history")
@click.argument("image")
@click.option("--no-trunc", is_flag=True, help="Do not truncate CREATED BY or the id.")
@click.option("-q", "--quiet", is_flag=True, help="Only show the ids.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@click.option("--root", type=click.Path(file_okay=False), envvar="LAYERKIT_ROOT",
              default=None, help="Store root (default: $LAYERKIT_ROOT or the user default).")
def command(image: str, no_trunc: bool, quiet: bool, fmt: str, root: str | None) -> None:
    """Show the history of an image."""
    store_root = resolve_root(root)
    with ImageIndex(store_root) as index:
        info = details(ContentStore(store_root), index, resolve(index, image))
    rows = list(reversed(rows_for(info)))
    top = info.id if no_trunc else info.short_id
    ids = [top if i == 0 else r.id for i, r in enumerate(rows)]
    now = time.time()
    if quiet:
        for ident in ids:
            click.echo(ident)
        return
    if fmt == "json":
        for ident, r in zip(ids, rows, strict=True):
            click.echo(json.dumps({
                "Comment": r.comment,
                "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.created))
                if r.created is not None else "",
                "CreatedBy": r.created_by, "CreatedSince": since(r.created, now),
                "ID": ident, "Size": human_size(r.size),
            }, sort_keys=True))
        return
    table = []
    for ident, r in zip(ids, rows, strict=True):
        created_by = r.created_by.replace("\t", " ").replace("\n", " ")
        if not no_trunc:
            created_by = ellipsis(created_by, CREATED_BY_WIDTH)
        table.append([ident, since(r.created, now), created_by, human_size(r.size), r.comment])
    click.echo(render_table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], table),
               nl=False)
