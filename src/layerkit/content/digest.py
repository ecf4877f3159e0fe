"""Turns bytes and digest strings into checked ``sha256:<hex>`` digests.

The store only holds sha256 content. Other algorithms are accepted by the OCI
models (the spec allows them) but never by :class:`ContentStore`.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

from layerkit.content.errors import InvalidDigestError

SHA256 = "sha256"
_SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
# OCI content-descriptor grammar, plus go-digest's stricter rules for the two
# algorithms it knows (lower-case hex of the right length).
_ANY_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_KNOWN_ENCODED = {
    "sha256": re.compile(r"^[a-f0-9]{64}$"),
    "sha512": re.compile(r"^[a-f0-9]{128}$"),
}


class BlobInfo(NamedTuple):
    """What the store knows about a blob: its digest and its size in bytes."""

    digest: str
    size: int


def sha256_digest(data: bytes) -> str:
    """Return ``sha256:<hex>`` of ``data``."""
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def is_sha256_digest(value: str) -> bool:
    return bool(_SHA256_RE.match(value))


def check_sha256_digest(value: str) -> str:
    """Return the hex part of a ``sha256:<hex>`` digest, or raise InvalidDigestError."""
    if not isinstance(value, str) or not _SHA256_RE.match(value):
        raise InvalidDigestError(
            f"invalid digest {value!r}: expected 'sha256:' followed by 64 lower-case hex digits",
            hint="the content store only holds sha256 blobs",
        )
    return value[7:]


def digest_problem(value: object) -> str | None:
    """Explain why ``value`` is not a valid OCI digest, or return None when it is."""
    if not isinstance(value, str):
        return f"expected a digest string, got {type(value).__name__}"
    if not _ANY_DIGEST_RE.match(value):
        return f"{value!r} does not match '<algorithm>:<encoded>'"
    algorithm, _, encoded = value.partition(":")
    pattern = _KNOWN_ENCODED.get(algorithm)
    if pattern is not None and not pattern.match(encoded):
        return f"{value!r}: {algorithm} needs lower-case hex of the right length"
    return None
