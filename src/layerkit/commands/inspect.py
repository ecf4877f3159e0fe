"""``layerkit inspect``: an image's details as JSON, shaped like ``docker image inspect``.

    layerkit inspect IMAGE... [--root DIR]

Prints a JSON array with one object per image: Id, RepoTags, RepoDigests,
Created, Author, Config (the config's ``config`` object as stored), Architecture,
Variant, Os, Size (sum of the uncompressed layers), RootFS {Type, Layers},
History (as stored), Metadata {LastTagTime} and, when the store has the image's
manifest, Descriptor. Unknown images are reported on stderr and make the exit
status 1; the others are still printed.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from layerkit.content import mediatypes as mt
from layerkit.content.images import ImageIndex, ImageRecord
from layerkit.content.store import ContentStore
from layerkit.errors import LayerkitError
from layerkit.store.catalog import details, resolve
from layerkit.store.paths import resolve_root


def inspect_image(store: ContentStore, index: ImageIndex, record: ImageRecord) -> dict[str, Any]:
    info = details(store, index, record)
    raw = info.raw
    tagged = [r.created for r in index.all() if r.config_digest == info.id]
    obj: dict[str, Any] = {
        "Id": info.id,
        "RepoTags": list(info.names),
        "RepoDigests": [],
        "Created": raw.get("created", ""),
        "Author": raw.get("author", ""),
        "Config": raw.get("config") or {},
        "Architecture": raw.get("architecture", ""),
    }
    if raw.get("variant"):
        obj["Variant"] = raw["variant"]
    obj.update({
        "Os": raw.get("os", ""),
        "Size": info.size,
        "RootFS": {"Type": info.config.rootfs.type, "Layers": list(info.config.rootfs.diff_ids)},
        "History": raw.get("history") or [],
        "Metadata": {"LastTagTime": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(max(tagged))) if tagged else ""},
    })
    if info.manifest and store.has(info.manifest):
        data = store.read_bytes(info.manifest)
        try:
            media_type = str(json.loads(data).get("mediaType") or mt.OCI_MANIFEST)
        except (ValueError, AttributeError):
            media_type = mt.OCI_MANIFEST
        obj["Descriptor"] = {"mediaType": media_type, "digest": info.manifest,
                             "size": len(data)}
    return obj


@click.command(name="inspect")
@click.argument("images", nargs=-1, required=True)
@click.option("--root", type=click.Path(file_okay=False), envvar="LAYERKIT_ROOT",
              default=None, help="Store root (default: $LAYERKIT_ROOT or the user default).")
@click.pass_context
def command(ctx: click.Context, images: tuple[str, ...], root: str | None) -> None:
    """Show details of one or more images as JSON."""
    store_root = resolve_root(root)
    store = ContentStore(store_root)
    out = []
    failed = False
    with ImageIndex(store_root) as index:
        for name in images:
            try:
                out.append(inspect_image(store, index, resolve(index, name)))
            except LayerkitError as err:
                click.echo(err.render(), err=True)
                failed = True
    click.echo(json.dumps(out, indent=4))
    if failed:
        ctx.exit(1)
