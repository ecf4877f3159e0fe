"""Canonical digests: turns plain data (dicts, lists, strings, numbers) into sha256 digests.

Canonical form is JSON with sorted keys, no whitespace and UTF-8 text, with a
schema version as the first element, so that a change to an op's fields or to
the key rules can never make an old digest match a new one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

# Bump when an op's canonical form changes meaning.
OP_SCHEMA: Final = "layerkit.op.v1"


def canonical_json(value: Any) -> str:
    """The one text form of ``value`` that is hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest_of(*parts: Any) -> str:
    """``sha256:<hex>`` over the canonical JSON of ``[OP_SCHEMA, *parts]``."""
    text = canonical_json([OP_SCHEMA, *parts])
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
