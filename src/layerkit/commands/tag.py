"""``layerkit tag``: give an image in the local store another name.

    layerkit tag SOURCE TARGET [--root DIR]

SOURCE is a name, an id or an unambiguous id prefix; TARGET is ``name[:tag]``
(``latest`` by default). Prints nothing, like ``docker tag``.
"""

from __future__ import annotations

import click

from layerkit.content.images import ImageIndex
from layerkit.store.catalog import normalize_name, resolve
from layerkit.store.paths import resolve_root


@click.command(name="tag")
@click.argument("source")
@click.argument("target")
@click.option("--root", type=click.Path(file_okay=False), envvar="LAYERKIT_ROOT",
              default=None, help="Store root (default: $LAYERKIT_ROOT or the user default).")
def command(source: str, target: str, root: str | None) -> None:
    """Create a tag TARGET that refers to the image SOURCE."""
    name = normalize_name(target)
    with ImageIndex(resolve_root(root)) as index:
        record = resolve(index, source)
        index.tag(name, record.config_digest, record.manifest_digest)
