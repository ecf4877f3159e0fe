"""Counters the hardening suites fill in (fuzz cases run, hostile inputs refused or
neutralised), printed by tests/hardening/conftest.py at the end of the run and
written to $LAYERKIT_FIGURES (JSON) when that is set."""

from __future__ import annotations

from collections import Counter

FIGURES: Counter[str] = Counter()


def bump(name: str, n: int = 1) -> None:
    FIGURES[name] += n
