"""Solver records ⇄ BuildKit cache config: which steps to export, and how they travel.

``collect_records`` walks a finished :class:`~layerkit.solver.SolveResult` and
turns each keyed step of the exported stages (``mode=min``: the final stage and
the stages it is ``FROM``; ``mode=max``: every stage built) into an
:class:`ExportRecord`: the step's key-store record plus its result as a layer
chain (the base image's layers, then each non-empty layer up to this step).

``encode_records`` lays those chains out as BuildKit layers (shared prefixes
shared, each pointing at its parent) and records (``digest`` = the key,
``inputs`` = a link to the parent step's record, ``layers`` = the top of the
chain). ``decode_records`` does the reverse for an importer.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from layerkit.cache.keystore import StepRecord
from layerkit.cache.remote.cacheconfig import (
    CacheConfig,
    CacheInput,
    CacheLayer,
    CacheRecord,
    CacheResult,
)
from layerkit.cache.remote.layers import RemoteLayer
from layerkit.fastclass import dataclass
from layerkit.solver.result import SolveResult
from layerkit.solver.worker import StepResult

__all__ = [
    "ChainLayer",
    "ExportRecord",
    "ImportedRecord",
    "LayerBlob",
    "collect_records",
    "decode_records",
    "encode_records",
    "key_digest",
]

Mode = Literal["min", "max"]
FORMAT = "layerkit.cache.v1"  # the version of our per-record extension


@dataclass(frozen=True)
class ChainLayer:
    diff_id: str
    created: str = ""  # RFC 3339, when the layer was made (empty for base layers)


@dataclass(frozen=True)
class ExportRecord:
    """One step to export: its record, its filesystem as a chain, its parent's key."""

    record: StepRecord
    chain: tuple[ChainLayer, ...] | None  # None: no filesystem (FROM scratch)
    parent: str | None = None


@dataclass(frozen=True)
class LayerBlob:
    """The compressed blob a diff_id travels as."""

    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class ImportedRecord:
    """A record read back: the solver's record (its result not yet named) and its chain."""

    key: str
    content_key: str | None
    step_id: str
    inputs: Mapping[str, Any]
    origin: str
    meta: Mapping[str, str]
    duration_s: float
    chain: tuple[RemoteLayer, ...] | None

    def to_step_record(self, ref: str | None) -> StepRecord:
        result: dict[str, Any] = {
            "result": None if ref is None else {"ref": ref, "meta": dict(self.meta)},
            "origin": self.origin,
        }
        now = time.time()
        return StepRecord(self.key, self.content_key, self.step_id, self.inputs, result,
                          self.duration_s, now, now)


def key_digest(key: str) -> str:
    """A cache key as a digest for BuildKit's ``digest`` field (``lk1:sha256:<hex>`` keeps
    its hex; anything else is hashed)."""
    _, _, rest = key.partition(":")
    if rest.startswith("sha256:") and len(rest) == 71:
        return rest
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _rfc3339(seconds: str | None) -> str:
    if not seconds or not seconds.isdigit():
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(seconds)))


# -- collecting -------------------------------------------------------------------------


def _stages_for(result: SolveResult, mode: Mode) -> list[int]:
    if mode == "max":
        return sorted(result.stages)
    chosen = [result.target]
    # The final image's layers include those of the stage it is FROM (recursively).
    while True:
        first = next((o for o in result.steps
                      if o.stage_index == chosen[-1] and o.index == 0), None)
        if first is None or first.number is not None:
            break
        base = next((i for i, s in result.stages.items()
                     if s.key == first.key and i != chosen[-1]), None)
        if base is None or base in chosen:
            break
        chosen.append(base)
    return sorted(chosen)


def collect_records(
    result: SolveResult,
    lookup: Callable[[str], StepRecord | None],
    base_layers: Callable[[StepResult | None], Sequence[str]],
    remote_chain: Callable[[StepResult], Sequence[RemoteLayer] | None],
    mode: Mode,
) -> list[ExportRecord]:
    """The records a cache export of ``mode`` carries, each with its layer chain.

    ``lookup`` finds a record by key (local store first, then imported caches);
    ``base_layers`` gives a FROM result's diff_ids; ``remote_chain`` the chain
    of a result that is still only remote (None for local results).
    """
    out: dict[str, ExportRecord] = {}
    for index in _stages_for(result, mode):
        stage = result.stages[index]
        steps = sorted((o for o in result.steps if o.stage_index == index),
                       key=lambda o: o.index)
        own = [o for o in steps if o.index > 0 and o.number is not None]
        base_chain = [ChainLayer(d) for d in base_layers(stage.base)]
        offset = len(stage.layers) - len(own)
        parent: str | None = None
        first = steps[0] if steps and steps[0].index == 0 else None
        if first is not None and first.number is not None and first.key:
            rec = lookup(first.key)
            if rec is not None:
                chain = tuple(base_chain) if stage.base is not None else None
                out.setdefault(rec.key, ExportRecord(rec, chain, None))
                parent = rec.key
        elif first is not None:
            parent = first.key
        if offset < 0:
            continue  # defensive: the layers do not line up; export nothing of this stage
        for p, outcome in enumerate(own):
            rec = lookup(outcome.key) if outcome.key else None
            if rec is None:
                parent = None
                continue
            layer_results = stage.layers[: offset + p + 1]
            chain = _chain(base_chain, layer_results, remote_chain)
            out.setdefault(rec.key, ExportRecord(rec, chain, parent))
            parent = rec.key
    return list(out.values())


def _chain(
    base: Sequence[ChainLayer], results: Sequence[StepResult],
    remote_chain: Callable[[StepResult], Sequence[RemoteLayer] | None],
) -> tuple[ChainLayer, ...]:
    top = results[-1] if results else None
    if top is not None:
        remote = remote_chain(top)
        if remote is not None:
            return tuple(ChainLayer(r.diff_id, r.created) for r in remote)
    chain = list(base)
    for r in results:
        if r.meta.get("empty") != "1" and r.meta.get("diff_id"):
            chain.append(ChainLayer(r.meta["diff_id"], _rfc3339(r.meta.get("created"))))
    return tuple(chain)



# -- encoding ---------------------------------------------------------------------------


def encode_records(
    records: Sequence[ExportRecord], blobs: Mapping[str, LayerBlob]
) -> CacheConfig:
    """Lay records and their chains out as a BuildKit cache config.

    ``blobs`` maps every diff_id of every chain to the blob it travels as.
    """
    layers: list[CacheLayer] = []
    index_of: dict[tuple[int, str], int] = {}

    def top_of(chain: Sequence[ChainLayer]) -> int:
        parent = -1
        for layer in chain:
            key = (parent, layer.diff_id)
            if key not in index_of:
                blob = blobs[layer.diff_id]
                index_of[key] = len(layers)
                layers.append(CacheLayer(blob.digest, parent, blob.media_type, layer.diff_id,
                                         blob.size, layer.created))
            parent = index_of[key]
        return parent

    position = {r.record.key: i for i, r in enumerate(records)}
    out: list[CacheRecord] = []
    for r in records:
        rec = r.record
        raw = rec.result.get("result")
        meta = dict((raw or {}).get("meta") or {})
        results: tuple[CacheResult, ...] = ()
        if r.chain is not None and raw is not None and r.chain:
            created = meta.get("created")
            results = (CacheResult(top_of(r.chain), _rfc3339(created)),)
        inputs: tuple[tuple[CacheInput, ...], ...] = ()
        if r.parent is not None and r.parent in position:
            inputs = ((CacheInput(position[r.parent]),),)
        ours: dict[str, Any] = {
            "format": FORMAT, "key": rec.key, "step_id": rec.step_id,
            "inputs": dict(rec.inputs), "origin": str(rec.result.get("origin") or rec.key),
            "duration_s": round(rec.duration_s, 3),
            "result": None if raw is None else {"meta": meta},
        }
        if rec.content_key:
            ours["content_key"] = rec.content_key
        if r.chain is not None and raw is not None and not r.chain:
            ours["empty_chain"] = True  # a filesystem with no layers at all
        out.append(CacheRecord(key_digest(rec.key), inputs, results, ours))
    return CacheConfig(tuple(layers), tuple(out))


def decode_records(
    config: CacheConfig,
    diff_ids: Callable[[CacheLayer], str] | None = None,
) -> list[ImportedRecord]:
    """Our records in a cache config; records other tools wrote (no ``layerkit`` part,
    or a format we do not know) are skipped. ``diff_ids`` supplies a layer's diff_id
    when its annotations lack one (inline cache: from the image config)."""
    out: list[ImportedRecord] = []
    for rec in config.records:
        ours = rec.layerkit
        if ours.get("format") != FORMAT or not isinstance(ours.get("key"), str):
            continue
        result = ours.get("result")
        chain: tuple[RemoteLayer, ...] | None = None
        if isinstance(result, dict):
            if rec.results:
                layers = config.chain(rec.results[0].layer)
                remote = []
                for layer in layers:
                    diff_id = layer.diff_id or (diff_ids(layer) if diff_ids else "")
                    if not diff_id:
                        break
                    remote.append(RemoteLayer(diff_id, layer.blob, layer.media_type,
                                              layer.size, layer.created_at))
                if len(remote) != len(layers):
                    continue  # a layer we could not identify: unusable, a miss
                chain = tuple(remote)
            elif ours.get("empty_chain"):
                chain = ()
            else:
                continue
        meta = result.get("meta") if isinstance(result, dict) else None
        inputs = ours.get("inputs")
        content_key = ours.get("content_key")
        out.append(ImportedRecord(
            key=ours["key"],
            content_key=content_key if isinstance(content_key, str) else None,
            step_id=str(ours.get("step_id") or ""),
            inputs=inputs if isinstance(inputs, dict) else {},
            origin=str(ours.get("origin") or ours["key"]),
            meta={str(k): str(v) for k, v in (meta or {}).items()},
            duration_s=float(ours.get("duration_s") or 0.0),
            chain=chain,
        ))
    return out
