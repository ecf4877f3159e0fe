"""layerkit.content: the content-addressed blob store and the OCI document models.

Public API (pinned by tests/unit/test_content_api.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from layerkit.content import mediatypes
    from layerkit.content.compression_index import CompressionIndex
    from layerkit.content.digest import BlobInfo, check_sha256_digest, sha256_digest
    from layerkit.content.errors import (
        BlobNotFoundError,
        ContentError,
        DigestMismatchError,
        ExportError,
        InvalidDigestError,
        InvalidDocumentError,
        LockTimeoutError,
        UnsafeLayerError,
        UnsupportedCompressionError,
    )
    from layerkit.content.layers import (
        Compression,
        HashingReader,
        compress_stream,
        detect_compression,
        hash_stream,
        open_decompressed,
    )
    from layerkit.content.locks import exclusive_lock, named_lock, shared_lock
    from layerkit.content.oci import (
        ContainerConfig,
        Descriptor,
        History,
        ImageConfig,
        ImageIndex,
        ImageManifest,
        OCILayout,
        Platform,
        RootFS,
        canonical_json,
        parse_document,
    )
    from layerkit.content.store import BlobWriter, ContentStore

# Imported on first use: a no-op rebuild needs the blob store, not zstd, isal or
# the OCI models (see docs/build.md, "Speed").
_WHERE = {
    "BlobInfo": "layerkit.content.digest",
    "BlobNotFoundError": "layerkit.content.errors",
    "BlobWriter": "layerkit.content.store",
    "Compression": "layerkit.content.layers",
    "CompressionIndex": "layerkit.content.compression_index",
    "ContainerConfig": "layerkit.content.oci",
    "ContentError": "layerkit.content.errors",
    "ContentStore": "layerkit.content.store",
    "Descriptor": "layerkit.content.oci",
    "DigestMismatchError": "layerkit.content.errors",
    "ExportError": "layerkit.content.errors",
    "HashingReader": "layerkit.content.layers",
    "History": "layerkit.content.oci",
    "ImageConfig": "layerkit.content.oci",
    "ImageIndex": "layerkit.content.oci",
    "ImageManifest": "layerkit.content.oci",
    "InvalidDigestError": "layerkit.content.errors",
    "InvalidDocumentError": "layerkit.content.errors",
    "LockTimeoutError": "layerkit.content.errors",
    "OCILayout": "layerkit.content.oci",
    "Platform": "layerkit.content.oci",
    "RootFS": "layerkit.content.oci",
    "UnsafeLayerError": "layerkit.content.errors",
    "UnsupportedCompressionError": "layerkit.content.errors",
    "canonical_json": "layerkit.content.oci",
    "check_sha256_digest": "layerkit.content.digest",
    "compress_stream": "layerkit.content.layers",
    "detect_compression": "layerkit.content.layers",
    "exclusive_lock": "layerkit.content.locks",
    "hash_stream": "layerkit.content.layers",
    "mediatypes": "layerkit.content.mediatypes",
    "named_lock": "layerkit.content.locks",
    "open_decompressed": "layerkit.content.layers",
    "parse_document": "layerkit.content.oci",
    "sha256_digest": "layerkit.content.digest",
    "shared_lock": "layerkit.content.locks",
}

__all__ = [
    "BlobInfo",
    "BlobNotFoundError",
    "BlobWriter",
    "Compression",
    "CompressionIndex",
    "ContainerConfig",
    "ContentError",
    "ContentStore",
    "Descriptor",
    "DigestMismatchError",
    "ExportError",
    "HashingReader",
    "History",
    "ImageConfig",
    "ImageIndex",
    "ImageManifest",
    "InvalidDigestError",
    "InvalidDocumentError",
    "LockTimeoutError",
    "OCILayout",
    "Platform",
    "RootFS",
    "UnsafeLayerError",
    "UnsupportedCompressionError",
    "canonical_json",
    "check_sha256_digest",
    "compress_stream",
    "detect_compression",
    "exclusive_lock",
    "hash_stream",
    "mediatypes",
    "named_lock",
    "open_decompressed",
    "parse_document",
    "sha256_digest",
    "shared_lock",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'layerkit.content' has no attribute {name!r}")
    import importlib

    if module == f"layerkit.content.{name}":
        return importlib.import_module(module)
    return getattr(importlib.import_module(module), name)
