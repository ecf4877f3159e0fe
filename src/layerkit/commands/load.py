"""``layerkit load``: read docker-archive / oci-archive tars into the local image store.

    layerkit load [-i FILE|-] [-q] [--root DIR]

Like ``docker load``: names come from the archive (``RepoTags`` of a
docker-archive, ``io.containerd.image.name`` or a full-reference
``org.opencontainers.image.ref.name`` of an OCI archive) and are printed as
``Loaded image: NAME``; an image without a name prints ``Loaded image ID: ID``.
Without ``-i`` (or with ``-i -``) the tar is read from stdin.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import click

from layerkit.content.errors import ContentError
from layerkit.content.images import ImageIndex
from layerkit.content.store import ContentStore
from layerkit.exporter.loader import LoadedImage, load_archive
from layerkit.store.catalog import normalize_name
from layerkit.store.paths import resolve_root


def _names(image: LoadedImage) -> list[str]:
    raw = list(image.repo_tags)
    # A bare tag in ref.name ("latest") names no repository: docker leaves it untagged.
    if not raw and image.ref_name and ("/" in image.ref_name or ":" in image.ref_name):
        raw.append(image.ref_name)
    names = []
    for name in raw:
        try:
            names.append(normalize_name(name))
        except ContentError:
            click.echo(f"warning: ignoring invalid image name {name!r} in the archive",
                       err=True)
    return list(dict.fromkeys(names))


def load(root: Path, archive: Path) -> list[tuple[str, list[str]]]:
    """Load ``archive``; return (image id, names) per image."""
    store = ContentStore(root)
    out = []
    # One lease over "blobs written" and "names recorded": a prune in between would
    # see the new blobs as garbage.
    with store.lease(), ImageIndex(root) as index:
        for image in load_archive(archive, store):
            names = _names(image)
            manifest = image.manifest_digest
            if manifest is not None and not store.has(manifest):
                manifest = None  # the loader keeps config and layers only
            for name in names:
                index.tag(name, image.config_digest, manifest)
            out.append((image.config_digest, names))
    return out


@click.command(name="load")
@click.option("-i", "--input", "input_", type=str, default=None,
              help="Read from a tar archive file (docker-archive or oci-archive), "
              "'-' for stdin (the default).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
@click.option("--root", type=click.Path(file_okay=False), envvar="LAYERKIT_ROOT",
              default=None, help="Store root (default: $LAYERKIT_ROOT, /var/lib/layerkit "
              "for root, else $XDG_DATA_HOME/layerkit).")
def command(input_: str | None, quiet: bool, root: str | None) -> None:
    """Load images from a tar archive written by `docker save` or `skopeo copy`."""
    store_root = resolve_root(root)
    if input_ is None or input_ == "-":
        if sys.stdin.isatty():
            raise ContentError("no archive given and stdin is a terminal",
                               hint="pass the archive with -i FILE, or pipe it in",
                               reference="load-no-input")
        # tarfile needs to seek: spool stdin inside the store root (same disk as blobs).
        store_root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=store_root, prefix=".load-", suffix=".tar") as tmp:
            shutil.copyfileobj(sys.stdin.buffer, tmp, 1 << 20)
            tmp.flush()
            loaded = load(store_root, Path(tmp.name))
    else:
        loaded = load(store_root, Path(input_))
    if quiet:
        return
    for image_id, names in loaded:
        if names:
            for name in names:
                click.echo(f"Loaded image: {name}")
        else:
            click.echo(f"Loaded image ID: {image_id}")
