"""layerkit.store: the store root as a whole: where it is, what it holds, what is
reachable from tagged images and cache records, and pruning the rest.

Public API (pinned by tests/unit/test_store_api.py)."""

from __future__ import annotations

from layerkit.store.paths import StorePaths, default_root, resolve_root
from layerkit.store.pruning import (
    CacheMountNode,
    PruneOptions,
    PrunePlan,
    disk_usage,
    execute_plan,
    gc_lock,
    plan_prune,
    prune,
)
from layerkit.store.reachability import (
    ChainNode,
    ImageNode,
    Reachable,
    RecordNode,
    StoreGraph,
    chain_ids,
    walk,
)
from layerkit.store.units import human_duration, human_size, parse_size
from layerkit.store.usage import KindUsage, Usage

__all__ = [
    "CacheMountNode",
    "ChainNode",
    "ImageNode",
    "KindUsage",
    "PruneOptions",
    "PrunePlan",
    "Reachable",
    "RecordNode",
    "StoreGraph",
    "StorePaths",
    "Usage",
    "chain_ids",
    "default_root",
    "disk_usage",
    "execute_plan",
    "gc_lock",
    "human_duration",
    "human_size",
    "parse_size",
    "plan_prune",
    "prune",
    "resolve_root",
    "walk",
]
