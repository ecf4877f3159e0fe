"""The benchmark's run order: every builder follows every other about equally often."""

from __future__ import annotations

from collections import Counter

import pytest
from benchmarks.schedule import balanced_orders, follower_counts

BUILDERS = ["layerkit", "docker", "buildah"]


def _predecessors(orders: list[list[str]], before: str) -> dict[str, Counter[str]]:
    seen: dict[str, Counter[str]] = {name: Counter() for name in BUILDERS}
    for (previous, name), count in follower_counts(orders, before).items():
        seen[name][previous] += count
    return seen


@pytest.mark.parametrize("reps", [3, 5, 6, 8])
def test_each_rep_runs_every_builder_once(reps: int) -> None:
    orders = balanced_orders(BUILDERS, reps, before="buildah")
    assert len(orders) == reps
    assert all(sorted(order) == sorted(BUILDERS) for order in orders)


def test_the_old_rotation_had_layerkit_always_follow_buildah() -> None:
    rotation = [BUILDERS[r:] + BUILDERS[:r] for r in range(3)]
    assert _predecessors(rotation, "buildah")["layerkit"] == Counter({"buildah": 3})


@pytest.mark.parametrize("reps", [3, 5, 6, 8])
def test_no_builder_always_follows_the_same_one(reps: int) -> None:
    for name, previous in _predecessors(balanced_orders(BUILDERS, reps, "buildah"),
                                        "buildah").items():
        assert max(previous.values()) <= reps // 2 + 1, (name, previous)
        assert len(previous) >= 2, (name, previous)


def test_six_reps_spread_every_pair_evenly() -> None:
    counts = follower_counts(balanced_orders(BUILDERS, 6, "buildah"), "buildah")
    assert set(counts.values()) == {2}
    assert len(counts) == 9


def test_many_builders_fall_back_to_rotation() -> None:
    names = [f"b{i}" for i in range(8)]
    orders = balanced_orders(names, 3)
    assert orders[1] == names[1:] + names[:1]
