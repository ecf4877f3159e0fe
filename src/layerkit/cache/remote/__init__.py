"""layerkit.cache.remote: the build cache in BuildKit's formats, in a registry, a local
directory, or inline in an image config; imported as one more source of cache keys.

See docs/remote-cache.md. Public API pinned by tests/unit/test_remote_cache_format.py.
"""

from __future__ import annotations

from layerkit.cache.remote.cacheconfig import (
    CacheConfig,
    CacheConfigError,
    CacheInput,
    CacheLayer,
    CacheRecord,
    CacheResult,
    parse_cache_config,
)
from layerkit.cache.remote.exporter import (
    CacheExport,
    cache_manifest,
    export_cache,
    inline_cache_value,
    layer_blobs,
    with_inline_cache,
)
from layerkit.cache.remote.importer import (
    INLINE_CACHE_KEY,
    RemoteCache,
    import_cache,
    load_local_cache,
    load_registry_cache,
)
from layerkit.cache.remote.layers import (
    REMOTE_PREFIX,
    BlobSource,
    LayoutBlobSource,
    RegistryBlobSource,
    RemoteLayer,
    RemoteResults,
    is_remote,
)
from layerkit.cache.remote.records import (
    ChainLayer,
    ExportRecord,
    ImportedRecord,
    LayerBlob,
    collect_records,
    decode_records,
    encode_records,
)
from layerkit.cache.remote.session import RemoteCaches
from layerkit.cache.remote.spec import (
    CacheFromSpec,
    CacheToSpec,
    parse_cache_flags,
    parse_cache_from,
    parse_cache_to,
)

__all__ = [
    "INLINE_CACHE_KEY",
    "REMOTE_PREFIX",
    "BlobSource",
    "CacheConfig",
    "CacheConfigError",
    "CacheExport",
    "CacheFromSpec",
    "CacheInput",
    "CacheLayer",
    "CacheRecord",
    "CacheResult",
    "CacheToSpec",
    "ChainLayer",
    "ExportRecord",
    "ImportedRecord",
    "LayerBlob",
    "LayoutBlobSource",
    "RegistryBlobSource",
    "RemoteCache",
    "RemoteCaches",
    "RemoteLayer",
    "RemoteResults",
    "cache_manifest",
    "collect_records",
    "decode_records",
    "encode_records",
    "export_cache",
    "import_cache",
    "inline_cache_value",
    "is_remote",
    "layer_blobs",
    "load_local_cache",
    "load_registry_cache",
    "parse_cache_config",
    "parse_cache_flags",
    "parse_cache_from",
    "parse_cache_to",
    "with_inline_cache",
]
