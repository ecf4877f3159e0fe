"""layerkit.context: the build context.

``.dockerignore`` rules (moby/patternmatcher semantics), the context walker,
and content checksums of COPY/ADD sources backed by a persistent stat cache.
"""

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
