"""``--cache-from`` → a cache source for the solver (BuildKit: "the importer returns an
ordinary cache manager, so a remote cache is just one more source of keys").

Three places a cache can come from:

* ``type=registry,ref=REF`` (or a plain ``REF``): whatever the reference holds is
  recognised by its media types: a cache manifest (image-manifest layout, config
  ``application/vnd.buildkit.cacheconfig.v0``), BuildKit's older index layout
  (the cache config as one entry of an index), or an image whose config carries
  inline cache (``moby.buildkit.cache.v0``);
* ``type=local,src=DIR``: an OCI layout written by ``--cache-to type=local``.

Only documents are read here (a manifest and a small JSON config). Layers are
registered with :class:`~layerkit.cache.remote.layers.RemoteResults` and fetched
only when a build needs them. A cache that cannot be read is a warning and an
empty source, never a failed build: the cache is an optimisation.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from layerkit.cache.keystore import StepRecord
from layerkit.cache.remote.cacheconfig import (
    CacheConfigError,
    CacheLayer,
    parse_cache_config,
)
from layerkit.cache.remote.layers import (
    BlobSource,
    LayoutBlobSource,
    RegistryBlobSource,
    RemoteResults,
)
from layerkit.cache.remote.records import ImportedRecord, decode_records
from layerkit.cache.remote.spec import CacheFromSpec
from layerkit.content import mediatypes as mt
from layerkit.content.errors import DigestMismatchError
from layerkit.errors import LayerkitError

__all__ = [
    "INLINE_CACHE_KEY",
    "RemoteCache",
    "import_cache",
    "load_local_cache",
    "load_registry_cache",
]

INLINE_CACHE_KEY = "moby.buildkit.cache.v0"


class RemoteCache:
    """An imported cache as a :class:`~layerkit.solver.CacheSource`."""

    def __init__(self, name: str, records: Sequence[StepRecord] = (),
                 problem: str | None = None) -> None:
        self.name = name
        self.problem = problem  # why nothing could be imported (a warning to show)
        self._by_key = {r.key: r for r in records}
        self._by_content: dict[str, StepRecord] = {}
        for r in records:
            if r.content_key:
                self._by_content.setdefault(r.content_key, r)

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: str) -> StepRecord | None:
        return self._by_key.get(key)

    def get_by_content(self, content_key: str) -> StepRecord | None:
        return self._by_content.get(content_key)

    def records(self) -> list[StepRecord]:
        return list(self._by_key.values())


def _register(name: str, imported: Sequence[ImportedRecord], results: RemoteResults,
              source: BlobSource) -> RemoteCache:
    records = []
    for rec in imported:
        ref = None if rec.chain is None else results.register(rec.chain, source)
        records.append(rec.to_step_record(ref))
    return RemoteCache(name, records)


class _MemorySink:
    """A blob sink that keeps a small blob in memory, verified like the store does."""

    def __init__(self) -> None:
        self.data = b""

    def has(self, digest: str) -> bool:
        return False

    @contextlib.contextmanager
    def writer(self, expected_digest: str | None = None,
               expected_size: int | None = None) -> Iterator[_Buffer]:
        buf = _Buffer()
        yield buf
        data = bytes(buf.parts)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if (expected_digest and digest != expected_digest) or (
                expected_size is not None and len(data) != expected_size):
            raise DigestMismatchError(f"blob {expected_digest}: received {digest}, "
                                      f"{len(data)} bytes")
        self.data = data


class _Buffer:
    def __init__(self) -> None:
        self.parts = bytearray()

    def write(self, data: bytes) -> int:
        self.parts += data
        return len(data)


def _cache_name(kind: str, where: str) -> str:
    return f"{kind} {where}"


def registry_cache_name(ref_text: str) -> str:
    from layerkit.registry.reference import parse_reference

    ref = parse_reference(ref_text)
    where = f"{ref.registry}/{ref.repository}"
    if ref.tag not in (None, "latest"):
        where += f":{ref.tag}"
    return _cache_name("registry cache", where)


def load_registry_cache(ref_text: str, client: Any, results: RemoteResults, *,
                        platform: str | None = None) -> RemoteCache:
    """Read a cache (or an image with inline cache) at ``ref_text`` in a registry."""
    from layerkit.registry.errors import NotFoundError
    from layerkit.registry.reference import parse_reference

    name = registry_cache_name(ref_text)
    try:
        ref = parse_reference(ref_text)
        source = RegistryBlobSource(client, ref, name)
        fetched = client.get_manifest(ref)
        doc = json.loads(fetched.data)
        if fetched.media_type in mt.INDEX_TYPES:
            entries = doc.get("manifests") or []
            cache = [m for m in entries if m.get("mediaType") == mt.BUILDKIT_CACHE_CONFIG]
            if cache:
                config = parse_cache_config(_blob(source, cache[0]))
                return _register(name, decode_records(config), results, source)
            from layerkit.content.oci import ImageIndex
            from layerkit.registry.platforms import select_manifest

            chosen = select_manifest(ImageIndex.from_json(fetched.data), platform,
                                     what=str(ref))
            fetched = client.get_manifest(ref.with_digest(chosen.digest))
            doc = json.loads(fetched.data)
        config_desc = doc.get("config") or {}
        if config_desc.get("mediaType") == mt.BUILDKIT_CACHE_CONFIG:
            config = parse_cache_config(_blob(source, config_desc))
            return _register(name, decode_records(config), results, source)
        image_config = json.loads(_blob(source, config_desc))
        inline_name = _cache_name("inline cache in", str(ref_text))
        source.name = inline_name
        return _inline(inline_name, doc, image_config, results, source)
    except NotFoundError:
        return RemoteCache(name, problem=f"{name}: not found (nothing to import yet)")
    except (LayerkitError, ValueError, KeyError, TypeError) as e:
        message = e.message if isinstance(e, LayerkitError) else f"{type(e).__name__}: {e}"
        return RemoteCache(name, problem=f"{name}: cannot import: {message}")


def _blob(source: BlobSource, desc: dict[str, Any]) -> bytes:
    sink = _MemorySink()
    size = desc.get("size")
    source.fetch(str(desc["digest"]), int(size) if size is not None else None, sink)
    return sink.data


def _inline(name: str, manifest: dict[str, Any], image_config: dict[str, Any],
            results: RemoteResults, source: BlobSource) -> RemoteCache:
    raw = image_config.get(INLINE_CACHE_KEY)
    if not raw:
        return RemoteCache(name, problem=f"{name}: the image carries no inline cache "
                                         "(build it with --cache-to type=inline)")
    config = parse_cache_config(base64.b64decode(raw))
    layers = [str(layer.get("digest")) for layer in manifest.get("layers") or []]
    diff_ids = list((image_config.get("rootfs") or {}).get("diff_ids") or [])

    def diff_id_of(layer: CacheLayer) -> str:
        if layer.blob in layers and len(diff_ids) == len(layers):
            return str(diff_ids[layers.index(layer.blob)])
        return ""

    return _register(name, decode_records(config, diff_id_of), results, source)


def load_local_cache(src: Path, results: RemoteResults, *, tag: str = "latest") -> RemoteCache:
    """Read a cache directory written by ``--cache-to type=local,dest=DIR``."""
    name = _cache_name("cache directory", str(src))
    source = LayoutBlobSource(src, name)
    try:
        index = json.loads((Path(src) / "index.json").read_bytes())
        entries = index.get("manifests") or []
        named = [m for m in entries
                 if (m.get("annotations") or {}).get(mt.ANNOTATION_REF_NAME) == tag]
        entries = named or entries
        if not entries:
            return RemoteCache(name, problem=f"{name}: index.json lists no cache")
        top = entries[0]
        if top.get("mediaType") == mt.BUILDKIT_CACHE_CONFIG:
            config = parse_cache_config(_blob(source, top))
        else:
            manifest = json.loads(_blob(source, top))
            if manifest.get("mediaType") in mt.INDEX_TYPES:
                cache = [m for m in manifest.get("manifests") or []
                         if m.get("mediaType") == mt.BUILDKIT_CACHE_CONFIG]
                if not cache:
                    raise CacheConfigError("the index holds no cache config")
                config = parse_cache_config(_blob(source, cache[0]))
            else:
                config = parse_cache_config(_blob(source, manifest["config"]))
        return _register(name, decode_records(config), results, source)
    except FileNotFoundError:
        return RemoteCache(name, problem=f"{name}: not found (nothing to import yet)")
    except (LayerkitError, ValueError, KeyError, TypeError, OSError) as e:
        message = e.message if isinstance(e, LayerkitError) else f"{type(e).__name__}: {e}"
        return RemoteCache(name, problem=f"{name}: cannot import: {message}")


def import_cache(spec: CacheFromSpec, results: RemoteResults, client: Any = None, *,
                 platform: str | None = None) -> RemoteCache:
    """One ``--cache-from`` → a cache source (empty, with a ``problem``, on failure)."""
    if spec.type == "local":
        assert spec.src is not None
        return load_local_cache(spec.src, results, tag=spec.tag)
    assert spec.ref is not None
    if client is None:
        from layerkit.registry.client import RegistryClient

        client = RegistryClient()
    return load_registry_cache(spec.ref, client, results, platform=platform)


