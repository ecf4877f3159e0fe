"""BuildKit's cache config document (``application/vnd.buildkit.cacheconfig.v0``) ⇄ typed data.

The JSON shape is BuildKit's ``cache/remotecache/v1`` spec::

    {"layers":  [{"blob": "sha256:…", "parent": -1, "annotations": {…}}, …],
     "records": [{"digest": "sha256:…", "layers": [{"layer": 1, "createdAt": "…"}],
                  "inputs": [[{"link": 0, "selector": "…"}]]}, …]}

A layer points at its parent layer by index (-1: none), so a record's result
is a whole layer *chain* named by its top layer. Our solver's own record
(key, content key, plain inputs, origin, result meta) travels in one extra
field per record, ``"layerkit"``, which BuildKit's decoder ignores (Go's
``encoding/json`` skips unknown fields); see docs/remote-cache.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from layerkit.errors import BuildError
from layerkit.fastclass import dataclass, field

__all__ = [
    "CacheConfig",
    "CacheConfigError",
    "CacheInput",
    "CacheLayer",
    "CacheRecord",
    "CacheResult",
    "parse_cache_config",
]

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class CacheConfigError(BuildError):
    """A cache config document that is not valid BuildKit cache JSON."""

    reference = "cache-import"


@dataclass(frozen=True)
class CacheLayer:
    """One layer blob, its parent layer (index, -1 for none) and its annotations."""

    blob: str
    parent: int = -1
    media_type: str = ""
    diff_id: str = ""
    size: int = 0
    created_at: str = ""

    def to_json(self) -> dict[str, Any]:
        ann: dict[str, Any] = {}
        if self.media_type:
            ann["mediaType"] = self.media_type
        if self.diff_id:
            ann["diffID"] = self.diff_id
        if self.size:
            ann["size"] = self.size
        if self.created_at:
            ann["createdAt"] = self.created_at
        out: dict[str, Any] = {"blob": self.blob, "parent": self.parent}
        if ann:
            out["annotations"] = ann
        return out


@dataclass(frozen=True)
class CacheResult:
    """A record's result: the top layer of its chain."""

    layer: int
    created_at: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"layer": self.layer}
        if self.created_at:
            out["createdAt"] = self.created_at
        return out


@dataclass(frozen=True)
class CacheInput:
    """A dependency of a record: another record (by index) and an optional selector."""

    link: int
    selector: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"link": self.link}
        if self.selector:
            out["selector"] = self.selector
        return out


@dataclass(frozen=True)
class CacheRecord:
    """One cache key: its digest, dependencies, results and our solver's record."""

    digest: str
    inputs: tuple[tuple[CacheInput, ...], ...] = ()
    results: tuple[CacheResult, ...] = ()
    layerkit: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.results:
            out["layers"] = [r.to_json() for r in self.results]
        out["digest"] = self.digest
        if self.inputs:
            out["inputs"] = [[i.to_json() for i in group] for group in self.inputs]
        if self.layerkit:
            out["layerkit"] = dict(self.layerkit)
        return out


@dataclass(frozen=True)
class CacheConfig:
    layers: tuple[CacheLayer, ...] = ()
    records: tuple[CacheRecord, ...] = ()

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {}
        if self.layers:
            doc["layers"] = [layer.to_json() for layer in self.layers]
        if self.records:
            doc["records"] = [r.to_json() for r in self.records]
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def chain(self, top: int) -> list[CacheLayer]:
        """The layers from the bottom of the chain up to (and including) ``top``."""
        out: list[CacheLayer] = []
        seen: set[int] = set()
        index = top
        while index >= 0:
            if index in seen or index >= len(self.layers):
                raise CacheConfigError(f"cache config: layer {top} has a broken parent chain")
            seen.add(index)
            out.append(self.layers[index])
            index = self.layers[index].parent
        out.reverse()
        return out


def _fail(what: str) -> CacheConfigError:
    return CacheConfigError(
        f"invalid BuildKit cache config: {what}",
        hint="the cache was written by a broken tool; export it again (--cache-to)",
    )


def _int(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(f"{what} must be an integer >= {minimum}")
    return int(value)


def _digest(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _DIGEST.match(value):
        raise _fail(f"{what} is not a sha256 digest: {value!r}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(f"{what} must be a list")
    return value


def _layer(raw: Any, i: int, count: int) -> CacheLayer:
    if not isinstance(raw, dict):
        raise _fail(f"layers[{i}] must be an object")
    parent = raw.get("parent", 0)  # Go's omitempty drops a 0 parent
    if isinstance(parent, bool) or not isinstance(parent, int) or not -1 <= parent < count:
        raise _fail(f"layers[{i}].parent {parent!r} is out of range")
    if parent == i:
        raise _fail(f"layers[{i}] is its own parent")
    ann = raw.get("annotations") or {}
    if not isinstance(ann, dict):
        raise _fail(f"layers[{i}].annotations must be an object")
    diff_id = ann.get("diffID") or ""
    if diff_id:
        _digest(diff_id, f"layers[{i}].annotations.diffID")
    size = ann.get("size") or 0
    return CacheLayer(
        blob=_digest(raw.get("blob"), f"layers[{i}].blob"), parent=parent,
        media_type=str(ann.get("mediaType") or ""), diff_id=diff_id,
        size=_int(size, f"layers[{i}].annotations.size", 0),
        created_at=str(ann.get("createdAt") or ""),
    )


def _record(raw: Any, i: int, layers: int, records: int) -> CacheRecord:
    if not isinstance(raw, dict):
        raise _fail(f"records[{i}] must be an object")
    results = []
    for j, r in enumerate(_list(raw.get("layers"), f"records[{i}].layers")):
        if not isinstance(r, dict):
            raise _fail(f"records[{i}].layers[{j}] must be an object")
        index = _int(r.get("layer", 0), f"records[{i}].layers[{j}].layer", 0)
        if index >= layers:
            raise _fail(f"records[{i}].layers[{j}].layer {index} is out of range")
        results.append(CacheResult(index, str(r.get("createdAt") or "")))
    groups = []
    for j, group in enumerate(_list(raw.get("inputs"), f"records[{i}].inputs")):
        items = []
        for k, inp in enumerate(_list(group, f"records[{i}].inputs[{j}]")):
            if not isinstance(inp, dict):
                raise _fail(f"records[{i}].inputs[{j}][{k}] must be an object")
            link = _int(inp.get("link", 0), f"records[{i}].inputs[{j}][{k}].link", 0)
            if link >= records:
                raise _fail(f"records[{i}].inputs[{j}][{k}].link {link} is out of range")
            items.append(CacheInput(link, str(inp.get("selector") or "")))
        groups.append(tuple(items))
    ours = raw.get("layerkit") or {}
    if not isinstance(ours, dict):
        raise _fail(f"records[{i}].layerkit must be an object")
    return CacheRecord(_digest(raw.get("digest"), f"records[{i}].digest"), tuple(groups),
                       tuple(results), ours)


def parse_cache_config(data: bytes | str | Mapping[str, Any]) -> CacheConfig:
    """Parse and check a cache config (bytes, text, or an already decoded object)."""
    if isinstance(data, Mapping):
        doc: Any = data
    else:
        try:
            doc = json.loads(data)
        except ValueError as e:
            raise _fail(f"not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise _fail("the document must be a JSON object")
    raw_layers = _list(doc.get("layers"), "layers")
    raw_records = _list(doc.get("records"), "records")
    layers = tuple(_layer(raw, i, len(raw_layers)) for i, raw in enumerate(raw_layers))
    records = tuple(_record(raw, i, len(layers), len(raw_records))
                    for i, raw in enumerate(raw_records))
    config = CacheConfig(layers, records)
    for i in range(len(layers)):
        config.chain(i)  # rejects cycles up front
    return config


def layer_chain_json(layers: Sequence[CacheLayer]) -> list[dict[str, Any]]:
    """For debugging and tests: a chain as plain JSON."""
    return [layer.to_json() for layer in layers]
