"""Hardening suites: hypothesis profiles for the fuzzers and the figures summary.

``LAYERKIT_FUZZ_EXAMPLES=N`` sets how many examples each fuzz property runs
(CI default: 300 per property; the long run in docs/reliability.md uses
100000). The figures every suite counts are printed at the end of the run.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import FIGURES

FUZZ_EXAMPLES = int(os.environ.get("LAYERKIT_FUZZ_EXAMPLES", "300"))
settings.register_profile(
    "layerkit-fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=os.environ.get("LAYERKIT_FUZZ_SEED") is None and FUZZ_EXAMPLES <= 1000,
)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("layerkit hardening figures")
    for name, count in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{name:<48} {count}")
    out = os.environ.get("LAYERKIT_FIGURES")
    if out:
        Path(out).write_text(json.dumps(dict(sorted(FIGURES.items())), indent=2) + "\n")
