"""Remote layer chains → uncompressed layers in the local content store, on demand.

An imported cache record's result is not a local snapshot but a *layer chain*
(compressed blob digests with their diff_ids) that lives in a registry or a
cache directory. :class:`RemoteResults` names each chain with a ref
``remote:<chainID>`` that the solver carries around like any other result,
and downloads a layer only when something needs its bytes: a step that runs
on top of it, or an exporter. A fully cached build therefore downloads
nothing until its output asks for a layer.

Every download is verified twice: the compressed blob against its digest
while it streams (the registry client or :func:`_copy_verified`), then the
decompressed tar against its diff_id (the content store's writer). A
mismatch keeps nothing.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from layerkit.errors import BuildError, LayerkitError
from layerkit.fastclass import dataclass

if TYPE_CHECKING:
    from layerkit.content.store import ContentStore
    from layerkit.registry.client import BlobSink, RegistryClient
    from layerkit.registry.reference import Reference

__all__ = [
    "REMOTE_PREFIX",
    "BlobSource",
    "LayoutBlobSource",
    "RegistryBlobSource",
    "RemoteLayer",
    "RemoteResults",
    "chain_id",
    "is_remote",
]

REMOTE_PREFIX = "remote:"


def is_remote(ref: str) -> bool:
    return ref.startswith(REMOTE_PREFIX)


def chain_id(diff_ids: Sequence[str]) -> str:
    """containerd's chainID of a layer stack (the empty stack: sha256 of nothing)."""
    if not diff_ids:
        return "sha256:" + hashlib.sha256(b"").hexdigest()
    current = diff_ids[0]
    for diff_id in diff_ids[1:]:
        current = "sha256:" + hashlib.sha256(f"{current} {diff_id}".encode()).hexdigest()
    return current


@dataclass(frozen=True)
class RemoteLayer:
    """One layer of a remote chain: its compressed blob and what it decompresses to."""

    diff_id: str
    blob: str
    media_type: str
    size: int
    created: str = ""


class BlobSource(Protocol):
    """Where a remote cache's blobs can be fetched from."""

    name: str

    def fetch(self, digest: str, size: int | None, sink: BlobSink) -> None: ...


class RegistryBlobSource:
    """Blobs of one repository in a registry (a cache ref, or an image with inline cache)."""

    def __init__(self, client: RegistryClient, ref: Reference, name: str) -> None:
        self.client = client
        self.ref = ref
        self.name = name

    def fetch(self, digest: str, size: int | None, sink: BlobSink) -> None:
        self.client.fetch_blob(self.ref, digest, size, sink)


class LayoutBlobSource:
    """Blobs of a local cache directory (an OCI layout: ``blobs/sha256/<hex>``)."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = Path(root)
        self.name = name

    def path(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        return self.root / "blobs" / algo / hexpart

    def fetch(self, digest: str, size: int | None, sink: BlobSink) -> None:
        try:
            with open(self.path(digest), "rb") as src:
                _copy_verified(src, digest, size, sink)
        except FileNotFoundError:
            raise BuildError(f"{self.name}: blob {digest} is missing from {self.root}",
                             hint="export the cache again (--cache-to type=local,dest=DIR)",
                             reference="cache-import") from None


def _copy_verified(src: BinaryIO, digest: str, size: int | None, sink: BlobSink) -> None:
    with sink.writer(expected_digest=digest, expected_size=size) as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)


@dataclass(frozen=True)
class _Where:
    layer: RemoteLayer
    source: BlobSource


class RemoteResults:
    """The remote chains of every imported cache, and their lazy download (thread-safe)."""

    def __init__(self, content: ContentStore, *, max_workers: int = 4) -> None:
        self.content = content
        self.max_workers = max(1, max_workers)
        self._chains: dict[str, tuple[RemoteLayer, ...]] = {}
        self._blobs: dict[str, list[_Where]] = {}  # diff_id -> where its blob can be fetched
        self._by_blob: dict[str, list[_Where]] = {}  # compressed digest -> same
        self._lock = threading.Lock()
        self._layer_locks: dict[str, threading.Lock] = {}
        self.downloaded: list[str] = []  # compressed blobs fetched, in order (tests, --debug)

    # -- naming chains --------------------------------------------------------------

    def register(self, layers: Sequence[RemoteLayer], source: BlobSource) -> str:
        """Remember a chain (bottom first) and where its blobs are; return its ref."""
        ref = REMOTE_PREFIX + chain_id([layer.diff_id for layer in layers])
        with self._lock:
            self._chains.setdefault(ref, tuple(layers))
            for layer in layers:
                where = _Where(layer, source)
                self._blobs.setdefault(layer.diff_id, []).append(where)
                self._by_blob.setdefault(layer.blob, []).append(where)
        return ref

    def knows(self, ref: str) -> bool:
        with self._lock:
            return ref in self._chains

    def chain(self, ref: str) -> tuple[RemoteLayer, ...]:
        with self._lock:
            found = self._chains.get(ref)
        if found is None:
            raise BuildError(f"internal: unknown remote result {ref}", reference="cache-bug")
        return found

    def sources_of(self, blob: str) -> list[BlobSource]:
        """The imported caches a compressed blob can be fetched from."""
        with self._lock:
            return [w.source for w in self._by_blob.get(blob, ())]

    def layer_for(self, diff_id: str) -> RemoteLayer | None:
        """A remote compressed blob for ``diff_id``, if any imported cache has one."""
        with self._lock:
            found = self._blobs.get(diff_id)
        return found[0].layer if found else None

    # -- downloads ------------------------------------------------------------------

    def ensure(self, diff_ids: Iterable[str]) -> None:
        """Make every ``diff_id`` present (uncompressed) in the content store."""
        todo = [d for d in dict.fromkeys(diff_ids) if not self.content.has(d)]
        if not todo:
            return
        if len(todo) == 1:
            self._ensure_one(todo[0])
            return
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(todo)),
                                thread_name_prefix="cache-pull") as pool:
            errors = [f.exception() for f in [pool.submit(self._ensure_one, d) for d in todo]]
        for error in errors:
            if error is not None:
                raise error

    def ensure_chain(self, ref: str) -> tuple[str, ...]:
        """Download what a remote result's filesystem needs; return its diff_ids."""
        diff_ids = tuple(layer.diff_id for layer in self.chain(ref))
        self.ensure(diff_ids)
        return diff_ids

    def fetch_blob(self, digest: str) -> bool:
        """Put a compressed blob itself into the content store (for pushes); False if no
        imported cache has it."""
        with self._lock:
            places = list(self._by_blob.get(digest, ()))
        if not places:
            return False
        if self.content.has(digest):
            return True
        self._download(places, digest)
        return True

    def _lock_for(self, diff_id: str) -> threading.Lock:
        with self._lock:
            return self._layer_locks.setdefault(diff_id, threading.Lock())

    def _ensure_one(self, diff_id: str) -> None:
        with self._lock_for(diff_id):  # two stages needing one layer download it once
            if self.content.has(diff_id):
                return
            with self._lock:
                places = list(self._blobs.get(diff_id, ()))
            if not places:
                raise BuildError(
                    f"layer {diff_id} is neither in the store nor in any --cache-from",
                    hint="run the build again without --cache-from, or re-export the cache",
                    reference="cache-import")
            layer = places[0].layer
            self._download(places, layer.blob)
            self._decompress(layer)

    def _download(self, places: Sequence[_Where], digest: str) -> None:
        last: Exception | None = None
        for where in places:
            if where.layer.blob != digest:
                continue
            try:
                where.source.fetch(digest, where.layer.size or None, self.content)
            except LayerkitError as e:  # registry and integrity errors: try the next cache
                last = e
                continue
            with self._lock:
                self.downloaded.append(digest)
            return
        assert last is not None
        raise last

    def _decompress(self, layer: RemoteLayer) -> None:
        from layerkit.content.compression_index import CompressionIndex
        from layerkit.content.digest import BlobInfo
        from layerkit.content.layers import (
            Compression,
            default_level,
            open_decompressed,
            variant_key,
        )

        if layer.blob == layer.diff_id:
            return  # an uncompressed layer: the blob is the tar
        with self.content.open(layer.blob) as raw:
            plain, kind = open_decompressed(raw)
            with self.content.writer(expected_digest=layer.diff_id) as out:
                while chunk := plain.read(1 << 20):
                    out.write(chunk)
        if kind in (Compression.GZIP, Compression.ZSTD):
            # A later push or cache export reuses this exact blob instead of
            # recompressing (and the registry already has it: HEAD says so).
            variant = variant_key(kind, default_level(kind))
            CompressionIndex(self.content).put(
                layer.diff_id, variant, BlobInfo(layer.blob, self.content.size(layer.blob)))
