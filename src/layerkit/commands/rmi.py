"""``layerkit rmi``: remove image names from the local store.

    layerkit rmi [-f] IMAGE... [--root DIR]

As ``docker rmi``: a name is untagged (``Untagged: NAME``); when an image loses
its last name it is gone from the store's index (``Deleted: ID``). An id that
several names share needs ``-f``, which removes them all. The image's blobs
stay until ``layerkit prune`` collects what nothing references any more.
Exit status 1 when some IMAGE could not be removed (the others still are).
"""

from __future__ import annotations

import click

from layerkit.content.errors import ContentError
from layerkit.content.images import ImageIndex
from layerkit.errors import LayerkitError
from layerkit.store.catalog import normalize_name, resolve
from layerkit.store.paths import resolve_root


def _matching_name(index: ImageIndex, arg: str) -> str | None:
    """The stored name ``arg`` spells, if it is a name rather than an id."""
    if index.get(arg) is not None:
        return arg
    try:
        name = normalize_name(arg)
    except ContentError:
        return None
    return name if index.get(name) is not None else None


def remove(index: ImageIndex, arg: str, force: bool) -> list[str]:
    """Untag ``arg``; return the output lines."""
    lines = []
    record = resolve(index, arg)
    name = _matching_name(index, arg)
    if name is not None:
        names = [name]
    else:
        names = index.names_for(record.config_digest)
        if len(names) > 1 and not force:
            raise ContentError(
                f"unable to delete {record.short_id} (must be forced): the image is "
                f"referenced by {len(names)} names ({', '.join(names)})",
                hint="remove the names one by one, or pass -f to remove them all",
                reference="image-conflict",
            )
    for n in names:
        if index.untag(n):
            lines.append(f"Untagged: {n}")
    if not index.names_for(record.config_digest):
        lines.append(f"Deleted: {record.config_digest}")
    return lines


@click.command(name="rmi")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True,
              help="Remove every name of an image given by id.")
@click.option("--root", type=click.Path(file_okay=False), envvar="LAYERKIT_ROOT",
              default=None, help="Store root (default: $LAYERKIT_ROOT or the user default).")
@click.pass_context
def command(ctx: click.Context, images: tuple[str, ...], force: bool, root: str | None) -> None:
    """Remove one or more images (their names; `layerkit prune` frees the space)."""
    failed = False
    with ImageIndex(resolve_root(root)) as index:
        for arg in images:
            try:
                for line in remove(index, arg, force):
                    click.echo(line)
            except LayerkitError as err:
                click.echo(err.render(), err=True)
                failed = True
    if failed:
        ctx.exit(1)
