"""Export records → a BuildKit cache in a registry, a local directory, or inline.

Each diff_id of each chain travels as one compressed blob. A layer that came
from an imported cache keeps the blob it came as (it is not downloaded: the
push HEADs it, or mounts it from the cache's repository); a layer made here is
compressed at export, reusing an earlier compression of it when there is one.

* registry: an OCI image manifest whose config is the cache config
  (``application/vnd.buildkit.cacheconfig.v0``) and whose layers are the blobs,
  annotated with ``containerd.io/uncompressed`` and ``buildkit/createdat``,
  pushed with :func:`layerkit.registry.push_image`: HEAD first (blobs the
  registry has are not uploaded), the manifest last;
* local: the same manifest in an OCI layout (``index.json``, ``oci-layout``,
  ``blobs/sha256``), ``index.json`` written last and atomically;
* inline: the cache config, base64-encoded, under ``moby.buildkit.cache.v0``
  in the image config (its blobs are the pushed image's own layers).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from layerkit.cache.remote.cacheconfig import CacheConfig
from layerkit.cache.remote.importer import INLINE_CACHE_KEY
from layerkit.cache.remote.layers import RegistryBlobSource, RemoteResults
from layerkit.cache.remote.records import ExportRecord, LayerBlob, encode_records
from layerkit.cache.remote.spec import CacheToSpec
from layerkit.content import mediatypes as mt
from layerkit.errors import BuildError
from layerkit.fastclass import dataclass, field

if TYPE_CHECKING:
    from layerkit.content.store import ContentStore
    from layerkit.registry.client import RegistryClient

__all__ = [
    "CacheExport",
    "cache_manifest",
    "export_cache",
    "layer_blobs",
    "with_inline_cache",
]


@dataclass
class CacheExport:
    """What an export wrote (or, with ``ignore-error``, why it did not)."""

    spec: CacheToSpec
    records: int = 0
    layers: int = 0
    digest: str | None = None  # the cache manifest
    uploaded: list[str] = field(default_factory=list)
    warning: str | None = None


def layer_blobs(
    records: Sequence[ExportRecord], content: ContentStore, remote: RemoteResults | None,
    compression: str, *, max_workers: int | None = None,
) -> dict[str, LayerBlob]:
    """The blob each diff_id of the records' chains travels as."""
    from layerkit.content.layers import Compression
    from layerkit.exporter.manifest import compress_layers

    wanted = mt.layer_media_type(compression)
    diff_ids = list(dict.fromkeys(layer.diff_id for r in records for layer in (r.chain or ())))
    out: dict[str, LayerBlob] = {}
    local: list[str] = []
    for diff_id in diff_ids:
        found = remote.layer_for(diff_id) if remote is not None else None
        if found is not None and (found.media_type == wanted or not content.has(diff_id)):
            out[diff_id] = LayerBlob(found.blob, found.media_type or wanted, found.size)
        elif content.has(diff_id):
            local.append(diff_id)
        else:
            raise BuildError(f"cache export: layer {diff_id} is not in the store",
                             hint="the store was pruned during the build; build again",
                             reference="cache-export")
    if local:
        infos = compress_layers(content, tuple(local), Compression(compression),
                                max_workers=max_workers)
        for diff_id, info in zip(local, infos, strict=True):
            out[diff_id] = LayerBlob(info.digest, wanted, info.size)
    return out


def cache_manifest(config: bytes, cache: CacheConfig) -> bytes:
    """The image-manifest layout: the cache config as the config, the blobs as layers."""
    import hashlib

    seen: dict[str, dict[str, Any]] = {}
    for layer in cache.layers:
        if layer.blob in seen:
            continue
        annotations = {"containerd.io/uncompressed": layer.diff_id}
        if layer.created_at:
            annotations["buildkit/createdat"] = layer.created_at
        seen[layer.blob] = {"mediaType": layer.media_type, "digest": layer.blob,
                            "size": layer.size, "annotations": annotations}
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.BUILDKIT_CACHE_CONFIG,
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                   "size": len(config)},
        "layers": list(seen.values()),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


class _Blobs:
    """Blobs for a push: the store, or fetched from an imported cache when first opened
    (the push HEADs first, so a blob the target already has is never fetched)."""

    def __init__(self, content: ContentStore, remote: RemoteResults | None,
                 sizes: Mapping[str, int]) -> None:
        self.content = content
        self.remote = remote
        self.sizes = dict(sizes)

    def open(self, digest: str) -> BinaryIO:
        if not self.content.has(digest) and self.remote is not None:
            self.remote.fetch_blob(digest)
        return self.content.open(digest)

    def size(self, digest: str) -> int:
        if digest in self.sizes:
            return self.sizes[digest]
        return self.content.size(digest)


def _mount_from(remote: RemoteResults | None, target_registry: str,
                digests: Sequence[str]) -> dict[str, list[str]]:
    """Repositories on the target registry that imported caches saw holding a blob."""
    out: dict[str, list[str]] = {}
    if remote is None:
        return out
    for digest in digests:
        for source in remote.sources_of(digest):
            # RegistryBlobSource, or the worker's lazily connected one: both have a ref.
            ref = source.ref if isinstance(source, RegistryBlobSource) else \
                getattr(source, "ref", None)
            if ref is not None and getattr(ref, "registry", None) == target_registry:
                out.setdefault(digest, []).append(str(ref.repository))
    return out


def export_cache(
    spec: CacheToSpec, records: Sequence[ExportRecord], content: ContentStore, *,
    remote: RemoteResults | None = None, client: RegistryClient | None = None,
    max_workers: int | None = None,
) -> CacheExport:
    """Write ``records`` where ``spec`` says (registry or local; inline is done by the
    image commit through :func:`with_inline_cache`)."""
    result = CacheExport(spec)
    try:
        blobs = layer_blobs(records, content, remote, spec.compression,
                            max_workers=max_workers)
        cache = encode_records(records, blobs)
        config = cache.to_json()
        manifest = cache_manifest(config, cache)
        result.records, result.layers = len(cache.records), len(cache.layers)
        sizes = {b.digest: b.size for b in blobs.values()}
        if spec.type == "registry":
            result.digest, result.uploaded = _to_registry(spec, manifest, config, content,
                                                          remote, sizes, client)
        elif spec.type == "local":
            result.digest = _to_layout(spec, manifest, config, content, remote, sizes)
        else:
            raise BuildError("internal: inline cache is written by the image commit",
                             reference="cache-bug")
    except Exception as e:
        if not spec.ignore_error:
            raise
        message = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
        result.warning = f"cache export failed (ignored): {message}"
    return result


def _to_registry(
    spec: CacheToSpec, manifest: bytes, config: bytes, content: ContentStore,
    remote: RemoteResults | None, sizes: Mapping[str, int], client: RegistryClient | None,
) -> tuple[str, list[str]]:
    from layerkit.registry.push import push_image
    from layerkit.registry.reference import parse_reference

    assert spec.ref is not None
    ref = parse_reference(spec.ref)
    provider = _Blobs(content, remote, sizes)
    pushed = push_image(ref, manifest, config, provider, client,
                        mount_from=_mount_from(remote, ref.registry, list(sizes)))
    return pushed.digest, pushed.uploaded


def _to_layout(
    spec: CacheToSpec, manifest: bytes, config: bytes, content: ContentStore,
    remote: RemoteResults | None, sizes: Mapping[str, int],
) -> str:
    import hashlib

    assert spec.dest is not None
    root = spec.dest
    blobs_dir = root / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    provider = _Blobs(content, remote, sizes)

    def put(digest: str, data: bytes | None = None) -> None:
        target = blobs_dir / digest.removeprefix("sha256:")
        if target.exists():
            return
        fd, tmp = tempfile.mkstemp(dir=blobs_dir, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                if data is not None:
                    out.write(data)
                else:
                    with provider.open(digest) as src:
                        while chunk := src.read(1 << 20):
                            out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    for digest in sizes:
        put(digest)
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    put(config_digest, config)
    put(manifest_digest, manifest)
    _write_atomic(root / "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    index = {
        "schemaVersion": 2, "mediaType": mt.OCI_INDEX,
        "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": manifest_digest,
                       "size": len(manifest),
                       "annotations": {mt.ANNOTATION_REF_NAME: spec.tag}}],
    }
    _write_atomic(root / "index.json", json.dumps(index, separators=(",", ":")).encode())
    return manifest_digest


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def inline_cache_value(records: Sequence[ExportRecord], blobs: Mapping[str, LayerBlob]) -> str:
    """The ``moby.buildkit.cache.v0`` value: the cache config JSON, base64-encoded (as Go
    marshals a ``[]byte``)."""
    return base64.b64encode(encode_records(records, blobs).to_json()).decode()


def with_inline_cache(config: bytes, value: str) -> bytes:
    """The image config bytes with the inline cache key set (canonical serialisation)."""
    from layerkit.content.oci import ImageConfig

    doc = json.loads(config)
    doc[INLINE_CACHE_KEY] = value
    return ImageConfig.from_json(json.dumps(doc)).to_json()
