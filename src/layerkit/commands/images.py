"""``layerkit images``: list the named images in the local store, as ``docker images`` does.

    layerkit images [REPOSITORY[:TAG]] [-q] [--no-trunc] [--format table|json] [--root DIR]

Columns: REPOSITORY, TAG, IMAGE ID (12 hex digits), CREATED (the config's
``created``, "N/A" when absent), SIZE (the sum of the uncompressed layer tars).
Newest image first. ``-q`` prints each image id once. ``--format json`` prints
one JSON object per line with the keys ``docker images --format json`` uses.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from layerkit.content.images import ImageIndex
from layerkit.content.store import ContentStore
from layerkit.errors import LayerkitError
from layerkit.store.catalog import ImageDetails, details, split_name
from layerkit.store.paths import resolve_root
from layerkit.store.table import render_table
from layerkit.store.units import human_duration, human_size


def since(created: float | None, now: float) -> str:
    if created is None:
        return "N/A"
    return f"{human_duration(max(0.0, now - created))} ago"


def created_at(created: float | None) -> str:
    """Docker's Go time format for CreatedAt: ``2024-01-02 15:04:05 +0000 UTC``."""
    if created is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created))


def _matches(name: str, pattern: str | None) -> bool:
    if pattern is None:
        return True
    repo, tag = split_name(name)
    want_repo, _, want_tag = pattern.partition(":") if pattern.rfind(":") > pattern.rfind(
        "/") else (pattern, "", "")
    return repo == want_repo and (not want_tag or tag == want_tag)


@click.command(name="images")
@click.argument("repository", required=False)
@click.option("-q", "--quiet", is_flag=True, help="Only show image ids.")
@click.option("--no-trunc", is_flag=True, help="Show full image ids.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@click.option("--root", type=click.Path(file_okay=False), envvar="LAYERKIT_ROOT",
              default=None, help="Store root (default: $LAYERKIT_ROOT or the user default).")
def command(repository: str | None, quiet: bool, no_trunc: bool, fmt: str,
            root: str | None) -> None:
    """List images in the local store."""
    store_root = resolve_root(root)
    store = ContentStore(store_root)
    now = time.time()
    rows: list[tuple[str, ImageDetails]] = []
    with ImageIndex(store_root) as index:
        cache: dict[str, ImageDetails] = {}
        for record in index.all():
            if not _matches(record.name, repository):
                continue
            if record.config_digest not in cache:
                try:
                    cache[record.config_digest] = details(store, index, record)
                except LayerkitError as err:
                    click.echo(err.render(), err=True)
                    continue
            rows.append((record.name, cache[record.config_digest]))
    rows.sort(key=lambda r: (-(r[1].created or 0.0), r[0]))

    def ident(image: ImageDetails) -> str:
        return image.id if no_trunc else image.short_id

    if quiet:
        for image_id in dict.fromkeys(ident(img) for _, img in rows):
            click.echo(image_id)
        return
    if fmt == "json":
        for name, img in rows:
            repo, tag = split_name(name)
            obj: dict[str, Any] = {
                "Containers": "N/A", "CreatedAt": created_at(img.created),
                "CreatedSince": since(img.created, now), "Digest": "<none>",
                "ID": ident(img), "Repository": repo, "SharedSize": "N/A",
                "Size": human_size(img.size), "Tag": tag, "UniqueSize": "N/A",
                "VirtualSize": human_size(img.size),
            }
            click.echo(json.dumps(obj, sort_keys=True))
        return
    table = [
        [*split_name(name), ident(img), since(img.created, now), human_size(img.size)]
        for name, img in rows
    ]
    click.echo(render_table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], table),
               nl=False)
