"""layerkit.context: the build context.

``.dockerignore`` rules (moby/patternmatcher semantics), the context walker,
and content checksums of COPY/ADD sources backed by a persistent stat cache.

Names are imported on first use: the no-op fast path walks the context and must
not pay for the checksum machinery it does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from layerkit.context.checksum import (
        ContextHasher,
        HasherStats,
        SourceChecksum,
        diff_files,
        resolve_in_root,
    )
    from layerkit.context.dockerignore import (
        IgnoreRule,
        IgnoreRules,
        load_ignore_rules,
        parse_ignore_file,
    )
    from layerkit.context.size import context_size, largest_entries, top_level_names
    from layerkit.context.walk import ContextEntry, walk_context

_WHERE = {
    "ContextHasher": "checksum", "HasherStats": "checksum", "SourceChecksum": "checksum",
    "diff_files": "checksum", "resolve_in_root": "checksum",
    "IgnoreRule": "dockerignore", "IgnoreRules": "dockerignore",
    "load_ignore_rules": "dockerignore", "parse_ignore_file": "dockerignore",
    "context_size": "size", "largest_entries": "size", "top_level_names": "size",
    "ContextEntry": "walk", "walk_context": "walk",
}

__all__ = [
    "ContextEntry",
    "ContextHasher",
    "HasherStats",
    "IgnoreRule",
    "IgnoreRules",
    "SourceChecksum",
    "context_size",
    "diff_files",
    "largest_entries",
    "load_ignore_rules",
    "parse_ignore_file",
    "resolve_in_root",
    "top_level_names",
    "walk_context",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"layerkit.context.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'layerkit.context' has no attribute {name!r}")
