"""Turns an :class:`ExportImage` into compressed layer blobs and a manifest.

Layers are compressed at export time, in parallel (isal and zstandard release
the GIL), and each compressed blob is recorded in the
:class:`CompressionIndex`, so exporting the same layer again costs a lookup.
While a layer is compressed its bytes are re-hashed: a store blob that no
longer matches its diff_id fails the export instead of being shipped.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from layerkit.content import mediatypes as mt
from layerkit.content.compression_index import CompressionIndex
from layerkit.content.digest import BlobInfo
from layerkit.content.errors import DigestMismatchError, ExportError
from layerkit.content.layers import Compression, HashingReader, compress_stream, variant_key
from layerkit.content.oci import Descriptor, ImageManifest
from layerkit.content.store import ContentStore
from layerkit.exporter.image import ExportImage
from layerkit.fastclass import dataclass


@dataclass(frozen=True)
class BuiltManifest:
    """A manifest written to the store, with everything it references."""

    manifest: ImageManifest
    manifest_bytes: bytes
    descriptor: Descriptor  # of the manifest itself, with the image's platform
    config: Descriptor
    layers: tuple[Descriptor, ...]

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """config, then layers (deduplicated, in order)."""
        seen: dict[str, Descriptor] = {self.config.digest: self.config}
        for layer in self.layers:
            seen.setdefault(layer.digest, layer)
        return tuple(seen.values())


def parse_compression(value: str | Compression) -> Compression:
    try:
        kind = Compression(value)
    except ValueError:
        kind = None
    if kind is None or kind not in (Compression.NONE, Compression.GZIP, Compression.ZSTD):
        raise ExportError(
            f"unsupported layer compression {value!r}",
            hint="use compression=gzip (default), compression=zstd or compression=none",
        )
    return kind


def _compress_one(
    store: ContentStore, diff_id: str, compression: Compression, level: int | None
) -> BlobInfo:
    with store.open(diff_id) as raw, store.writer() as out:
        src = HashingReader(raw)
        compress_stream(src, out, compression, level)
        if src.digest != diff_id:
            raise DigestMismatchError(
                f"layer {diff_id} in the content store is corrupt (its bytes hash to "
                f"{src.digest})",
                hint="delete it with `layerkit prune` and rebuild",
            )
    return out.info


def compress_layers(
    store: ContentStore,
    diff_ids: tuple[str, ...],
    compression: Compression,
    level: int | None = None,
    *,
    max_workers: int | None = None,
) -> list[BlobInfo]:
    """Return the compressed blob for each diff_id (same order), making missing ones."""
    if compression is Compression.NONE:
        return [store.info(d) for d in diff_ids]
    index = CompressionIndex(store)
    variant = variant_key(compression, level)
    found: dict[str, BlobInfo] = {}
    todo: list[str] = []
    for diff_id in dict.fromkeys(diff_ids):
        hit = index.get(diff_id, variant)
        if hit is not None:
            found[diff_id] = hit
        else:
            todo.append(diff_id)
    if todo:
        workers = max_workers or min(len(todo), os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="compress") as pool:
            futures = {
                d: pool.submit(_compress_one, store, d, compression, level) for d in todo
            }
            for diff_id, future in futures.items():
                found[diff_id] = future.result()
                index.put(diff_id, variant, found[diff_id])
    return [found[d] for d in diff_ids]


def build_manifest(
    store: ContentStore,
    image: ExportImage,
    *,
    compression: str | Compression = Compression.GZIP,
    level: int | None = None,
    docker_media_types: bool = False,
    max_workers: int | None = None,
) -> BuiltManifest:
    """Compress the layers, store config and manifest, return the manifest's parts."""
    kind = parse_compression(compression)
    if docker_media_types and kind is Compression.ZSTD:
        raise ExportError(
            "zstd layers need OCI media types",
            hint="drop the Docker media types option or use compression=gzip",
        )
    image.check(store)
    blobs = compress_layers(store, image.diff_ids, kind, level, max_workers=max_workers)
    layer_type = mt.layer_media_type(kind.value, docker=docker_media_types)
    layers = tuple(Descriptor(layer_type, b.digest, b.size) for b in blobs)
    config_info = store.write_bytes(image.config)
    config = Descriptor(
        mt.DOCKER_CONFIG if docker_media_types else mt.OCI_CONFIG,
        config_info.digest,
        config_info.size,
    )
    manifest = ImageManifest(
        config=config,
        layers=layers,
        media_type=mt.DOCKER_MANIFEST if docker_media_types else mt.OCI_MANIFEST,
    )
    manifest_bytes = manifest.to_json()
    info = store.write_bytes(manifest_bytes)
    descriptor = Descriptor(
        manifest.media_type or mt.OCI_MANIFEST,
        info.digest,
        info.size,
        platform=image.parsed.platform,
    )
    return BuiltManifest(manifest, manifest_bytes, descriptor, config, layers)
