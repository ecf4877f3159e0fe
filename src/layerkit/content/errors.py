"""Errors raised by the content store, the OCI models and the exporters.

Tree (all are ``BuildError`` subclasses, so the CLI renders them uniformly)::

    ContentError
     ├── BlobNotFoundError       a digest that is not in the store
     ├── DigestMismatchError     bytes that do not hash (or size) to what was promised
     ├── LockTimeoutError        a store lock held too long by another process
     ├── InvalidDigestError      a digest string that is not ``sha256:<64 hex>``
     ├── InvalidDocumentError    an OCI/Docker JSON document that fails validation
     └── UnsupportedCompressionError
    ExportError
     └── UnsafeLayerError        a layer entry that would escape the destination
"""

from __future__ import annotations

from layerkit.errors import BuildError


class ContentError(BuildError):
    reference = "content-store"


class BlobNotFoundError(ContentError):
    reference = "blob-not-found"


class DigestMismatchError(ContentError):
    reference = "digest-mismatch"


class LockTimeoutError(ContentError):
    reference = "store-locked"


class InvalidDigestError(ContentError):
    reference = "invalid-digest"


class InvalidDocumentError(ContentError):
    reference = "invalid-oci-document"


class UnsupportedCompressionError(ContentError):
    reference = "unsupported-compression"


class ExportError(BuildError):
    reference = "export-failed"


class UnsafeLayerError(ExportError):
    reference = "unsafe-layer-entry"
