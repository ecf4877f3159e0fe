"""layerkit.content: the content-addressed blob store and the OCI document models.

Public API (pinned by tests/unit/test_content_api.py)."""

from __future__ import annotations

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
