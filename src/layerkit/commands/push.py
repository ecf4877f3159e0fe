"""``layerkit push``: an image in the local store → a registry.

    layerkit push [--root DIR] [--compression gzip|zstd] [--insecure-registry HOST]...
                  [--config FILE] IMAGE [DESTINATION]

The layers are compressed (or a previous compression reused), the manifest
built with :func:`layerkit.exporter.build_manifest`, then
:func:`layerkit.registry.push_image` uploads what the registry lacks (HEAD
first, mounts, chunked uploads) and the manifest last. Prints the pushed
manifest digest on stdout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from layerkit.content.store import ContentStore
    from layerkit.registry.client import RegistryClient
    from layerkit.registry.push import PushResult


# The registry flags push, login, build and plan share.
F = TypeVar("F", bound=Callable[..., Any])

REGISTRY_FLAGS: list[Callable[[Any], Any]] = [
    click.option("--insecure-registry", "insecure_registry", multiple=True, metavar="HOST",
                 help="Allow plain HTTP / unverified TLS for this registry (repeatable)."),
    click.option("--config", "registry_config", default=None, metavar="FILE",
                 help="Registry config (mirrors, insecure hosts); default "
                      "$XDG_CONFIG_HOME/layerkit/config.toml."),
]


def registry_flags(fn: F) -> F:
    for flag in reversed(REGISTRY_FLAGS):
        fn = flag(fn)
    return fn


def make_client(config: str | None, insecure: Sequence[str]) -> RegistryClient:
    from layerkit.registry.client import RegistryClient
    from layerkit.registry.config import load_config

    return RegistryClient(config=load_config(Path(config) if config else None),
                          insecure_registries=list(insecure))


def push_stored_image(
    content: ContentStore, config_digest: str, destination: str, client: RegistryClient, *,
    compression: str = "gzip", max_workers: int | None = None,
) -> PushResult:
    """Push the image whose config is ``config_digest`` (layers in ``content``)."""
    from layerkit.exporter import ExportImage, build_manifest
    from layerkit.registry.push import push_image

    config = content.read_bytes(config_digest)
    image = ExportImage.create(config)
    built = build_manifest(content, image, compression=compression, max_workers=max_workers)
    return push_image(destination, built.manifest_bytes, config, content, client)


@click.command(name="push")
@click.argument("image")
@click.argument("destination", required=False)
@click.option("--root", type=click.Path(file_okay=False), envvar="LAYERKIT_ROOT",
              default=None, help="Store root (default: $LAYERKIT_ROOT or the user default).")
@click.option("--compression", default="gzip", type=click.Choice(["gzip", "zstd"]),
              show_default=True, help="Layer compression.")
@registry_flags
def command(image: str, destination: str | None, root: str | None, compression: str,
            insecure_registry: tuple[str, ...], registry_config: str | None) -> None:
    """Push IMAGE from the local store to its registry (or to DESTINATION)."""
    from layerkit.content.images import ImageIndex
    from layerkit.content.store import ContentStore
    from layerkit.store.catalog import resolve
    from layerkit.store.paths import resolve_root

    where = Path(resolve_root(root))
    with ImageIndex(where) as index:
        record = resolve(index, image)
    target = destination or (image if record.name == image or ":" in image else record.name)
    content = ContentStore(where)
    with make_client(registry_config, insecure_registry) as client, content.lease():
        result = push_stored_image(content, record.config_digest, target, client,
                                   compression=compression)
    click.echo(f"pushed {result.ref} ({len(result.uploaded)} uploaded, "
               f"{len(result.existing)} already there, {len(result.mounted)} mounted)", err=True)
    click.echo(result.digest)
