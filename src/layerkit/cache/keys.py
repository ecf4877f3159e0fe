"""Cache keys: turns an op's cache map plus its inputs' keys or checksums into key strings.

Every step has up to two keys (DESIGN.md "Cache-key rules"):

- the **definition key** covers the op's own fields (its cache-map base) and,
  for every input, that input's key: the parent step's key, another stage's
  result key, an image digest, or the checksum of the selected context files;
- the **content key** is computed only when the definition key misses and the
  op reads paths from another stage's result (``COPY --from``, ``--mount
  from=``): there the input's key is replaced by a checksum of the selected
  paths, so a source stage that re-ran but produced the same files still hits.

Key strings start with the key schema version (``lk1:``) so that a change to
these rules never silently matches an old record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final, Literal

from layerkit.fastclass import dataclass
from layerkit.graph.digest import canonical_json
from layerkit.graph.ops import CacheMap

KEY_VERSION: Final = "lk1"

KeyKind = Literal["definition", "content", "source", "forced"]


def make_key(kind: KeyKind, *parts: str) -> str:
    """``lk1:sha256:<hex>`` over the canonical JSON of the version, the kind and ``parts``."""
    text = canonical_json([KEY_VERSION, kind, *parts])
    return f"{KEY_VERSION}:sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def definition_key(cache_map: CacheMap, dep_keys: Sequence[str]) -> str:
    """The key probed first: op digest plus one key per dep (aligned with ``cache_map.deps``)."""
    _check(cache_map, dep_keys)
    return make_key("definition", cache_map.base, *dep_keys)


def content_key(cache_map: CacheMap, dep_values: Sequence[str]) -> str:
    """The key probed second: content checksums in place of the content deps' keys."""
    _check(cache_map, dep_values)
    tagged = [
        ("content=" if dep.by_content else "key=") + value
        for dep, value in zip(cache_map.deps, dep_values, strict=True)
    ]
    return make_key("content", cache_map.base, *tagged)


def image_key(digest: str) -> str:
    """The key of an external image used as a ``--from`` source."""
    return make_key("source", "image", digest)


def forced_key(definition: str, nonce: str) -> str:
    """The output key of a step re-run by ``--no-cache``: later steps must not reuse
    results built on the previous output."""
    return make_key("forced", definition, nonce)


def has_content_deps(cache_map: CacheMap) -> bool:
    return any(d.by_content for d in cache_map.deps)


@dataclass(frozen=True)
class StepKeys:
    """The keys of one step, once known."""

    definition: str
    content: str | None = None


def _check(cache_map: CacheMap, values: Sequence[str]) -> None:
    if len(values) != len(cache_map.deps):
        raise ValueError(f"{len(cache_map.deps)} deps but {len(values)} values")
    for v in values:
        if not isinstance(v, str) or not v:
            raise ValueError("every dep value must be a non-empty string")
