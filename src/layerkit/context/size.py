"""Context size summaries: turns a walked context into sizes for hints and lint rules."""

from __future__ import annotations

import heapq
import os
from pathlib import Path

from layerkit.context.dockerignore import IgnoreRules
from layerkit.context.walk import walk_context

__all__ = ["context_size", "largest_entries", "top_level_names"]


def context_size(context_dir: Path, rules: IgnoreRules) -> tuple[int, int]:
    """(total bytes of regular files, number of entries) that COPY can see."""
    total = count = 0
    for entry in walk_context(context_dir, rules):
        total += entry.size
        count += 1
    return total, count


def largest_entries(context_dir: Path, rules: IgnoreRules, n: int = 5) -> list[tuple[str, int]]:
    """The ``n`` biggest top-level names, a directory counting everything kept below it."""
    sizes: dict[str, int] = {}
    for entry in walk_context(context_dir, rules):
        top = entry.rel.partition("/")[0]
        sizes[top] = sizes.get(top, 0) + entry.size
    return heapq.nlargest(n, sizes.items(), key=lambda item: (item[1], item[0]))


def top_level_names(context_dir: Path) -> list[str]:
    """Names directly in the context directory, ignore rules not applied."""
    return sorted(os.listdir(context_dir))
