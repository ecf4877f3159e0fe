"""The order builders run in, repetition by repetition.

Input: the builders' names, the one that ran last before the first repetition
and the number of repetitions. Output: one order per repetition.

A build leaves the machine in a state the next build pays for: dirty pages
still being written back, a daemon's post-build work, page cache evicted by
the VM's proactive reclaim. A plain rotation keeps the builders' cyclic order,
so with three builders each one always follows the same neighbour, and
whatever that neighbour leaves behind lands on it in every repetition (until
2026-11-24 layerkit always followed buildah). Here the orders are chosen so
that the "who ran just before whom" pairs, counted across repetition
boundaries too, are spread as evenly as possible (least sum of squared pair
counts): searched exhaustively when that is cheap, greedily otherwise.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence

EXHAUSTIVE_LIMIT = 50_000  # sequences of permutations scored (6**6 for 3 builders, 6 reps)
MAX_PERMUTED = 6  # more builders than this: plain rotation


def _pairs(orders: Sequence[Sequence[str]], before: str | None) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    previous = before
    for order in orders:
        for name in order:
            if previous is not None:
                pairs.append((previous, name))
            previous = name
    return pairs


def follower_counts(orders: Sequence[Sequence[str]],
                    before: str | None = None) -> Counter[tuple[str, str]]:
    """How often each (predecessor, builder) pair occurs in ``orders``."""
    return Counter(_pairs(orders, before))


def _spread(orders: Sequence[Sequence[str]], before: str | None) -> int:
    return sum(c * c for c in follower_counts(orders, before).values())


def balanced_orders(names: Sequence[str], reps: int,
                    before: str | None = None) -> list[list[str]]:
    """``reps`` orders of ``names``; ``before``: the builder that ran just before."""
    names = list(names)
    if len(names) > MAX_PERMUTED:
        return [names[r % len(names):] + names[:r % len(names)] for r in range(reps)]
    perms = [list(p) for p in itertools.permutations(names)]
    if len(perms) ** reps <= EXHAUSTIVE_LIMIT:
        # min() keeps the first of equals, so the schedule is deterministic.
        best = min(itertools.product(perms, repeat=reps), key=lambda s: _spread(s, before))
        return [list(order) for order in best]
    orders: list[list[str]] = []
    for _ in range(reps):
        orders.append(min(perms, key=lambda p: _spread([*orders, p], before)))
    return orders
