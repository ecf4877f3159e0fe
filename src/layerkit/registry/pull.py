"""Turns an image reference into verified blobs in the content store (a pull).

Steps: fetch the manifest or index (mirrors first), pick the platform's
manifest from an index, fetch the config, then fetch the layers in parallel.
Every blob is verified while it streams into the store; a mismatch or a
truncated body is retried from the start and, if it persists, raised with
nothing kept. Layers stay compressed: the engine decompresses them.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Protocol

from layerkit.content import mediatypes as mt
from layerkit.content.errors import ContentError
from layerkit.content.oci import Descriptor, ImageConfig, ImageIndex, ImageManifest
from layerkit.fastclass import dataclass
from layerkit.frontend.platform import Platform
from layerkit.registry.client import BlobSink, FetchedManifest, RegistryClient
from layerkit.registry.errors import ManifestError
from layerkit.registry.platforms import select_manifest
from layerkit.registry.reference import Reference, parse_reference

MAX_INDEX_DEPTH = 2  # an index may point at another index (rare), but not forever


class PullStore(BlobSink, Protocol):
    """What a pull needs from the content store."""

    def read_bytes(self, digest: str) -> bytes: ...


@dataclass(frozen=True)
class PulledImage:
    """A pulled image: every blob named here is in the store, verified."""

    ref: Reference
    digest: str  # the platform manifest's digest
    manifest: bytes
    manifest_media_type: str
    config: bytes
    config_digest: str
    layers: tuple[Descriptor, ...]  # compressed layer blobs, base first
    diff_ids: tuple[str, ...]  # uncompressed digests, from the config, same order
    index_digest: str | None = None  # the index the manifest was chosen from, if any


@contextmanager
def _client_or_new(client: RegistryClient | None) -> Iterator[RegistryClient]:
    if client is not None:
        yield client
        return
    with RegistryClient() as new:
        yield new


def _as_ref(ref: Reference | str) -> Reference:
    return ref if isinstance(ref, Reference) else parse_reference(ref)


def resolve_digest(ref: Reference | str, *, client: RegistryClient | None = None) -> str:
    """The digest a tag points at now (the index's, for multi-platform images)."""
    with _client_or_new(client) as c:
        return c.resolve_digest(_as_ref(ref))


def _store_document(store: PullStore, fetched: FetchedManifest) -> None:
    with store.writer(expected_digest=fetched.digest, expected_size=len(fetched.data)) as w:
        w.write(fetched.data)


def _parse_manifest(ref: Reference, fetched: FetchedManifest) -> ImageManifest | ImageIndex:
    try:
        if fetched.media_type in mt.INDEX_TYPES:
            return ImageIndex.from_json(fetched.data)
        return ImageManifest.from_json(fetched.data)
    except ContentError as e:
        raise ManifestError(
            f"manifest {fetched.digest} of {ref} is invalid: {e.message}",
            hint="the image was written by a broken tool; push it again",
        ) from e


def _check_sha256(ref: Reference, desc: Descriptor) -> None:
    if not desc.digest.startswith("sha256:"):
        raise ManifestError(
            f"{ref}: blob {desc.digest} uses an algorithm layerkit cannot store",
            hint="only sha256 content is supported",
        )


def pull_image(
    ref: Reference | str,
    store: PullStore,
    *,
    platform: Platform | str | None = None,
    client: RegistryClient | None = None,
) -> PulledImage:
    """Pull ``ref`` for ``platform`` (None: this machine) into ``store``."""
    reference = _as_ref(ref)
    with _client_or_new(client) as c:
        fetched = c.get_manifest(reference)
        index_digest: str | None = None
        doc = _parse_manifest(reference, fetched)
        depth = 0
        while isinstance(doc, ImageIndex):
            depth += 1
            if depth > MAX_INDEX_DEPTH:
                raise ManifestError(f"{reference}: indexes nest deeper than {MAX_INDEX_DEPTH}")
            _store_document(store, fetched)
            index_digest = index_digest or fetched.digest
            chosen = select_manifest(doc, platform, what=str(reference))
            fetched = c.get_manifest(reference.with_digest(chosen.digest))
            doc = _parse_manifest(reference, fetched)
        _store_document(store, fetched)
        manifest = doc
        for desc in (manifest.config, *manifest.layers):
            _check_sha256(reference, desc)
        if not store.has(manifest.config.digest):
            c.fetch_blob(reference, manifest.config.digest, manifest.config.size, store)
        config_bytes = store.read_bytes(manifest.config.digest)
        try:
            config = ImageConfig.from_json(config_bytes)
        except ContentError as e:
            raise ManifestError(
                f"{reference}: image config {manifest.config.digest} is invalid: {e.message}"
            ) from e
        diff_ids = config.rootfs.diff_ids
        if len(diff_ids) != len(manifest.layers):
            raise ManifestError(
                f"{reference}: the manifest lists {len(manifest.layers)} layers but the config "
                f"has {len(diff_ids)} diff_ids",
                hint="the image is inconsistent; push it again",
            )
        missing = [d for d in manifest.layers if not store.has(d.digest)]
        _fetch_all(c, reference, missing, store)
    return PulledImage(
        ref=reference,
        digest=fetched.digest,
        manifest=fetched.data,
        manifest_media_type=fetched.media_type,
        config=config_bytes,
        config_digest=manifest.config.digest,
        layers=manifest.layers,
        diff_ids=tuple(diff_ids),
        index_digest=index_digest,
    )


def _fetch_all(
    client: RegistryClient, ref: Reference, layers: list[Descriptor], store: PullStore
) -> None:
    """Fetch distinct layers in parallel; the first failure is raised after all stop."""
    unique = list({d.digest: d for d in layers}.values())
    if not unique:
        return
    with ThreadPoolExecutor(max_workers=client.max_workers, thread_name_prefix="pull") as pool:
        futures = [pool.submit(client.fetch_blob, ref, d.digest, d.size, store) for d in unique]
        errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
