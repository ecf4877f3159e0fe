"""Shared fixtures: where the conformance corpora live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The conformance data is read in place, never copied into the project.
SHARED = Path(os.environ.get("LAYERKIT_SHARED", REPO_ROOT.parent / "shared"))
CONFORMANCE = SHARED / "conformance"


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.skip(
            f"conformance data not found at {CONFORMANCE}: these tests read "
            "../shared/conformance in place (set LAYERKIT_SHARED to point elsewhere)"
        )
    return CONFORMANCE

# Registries and busybox base images for integration tests (tests/support/fixtures.py).
# "support" rather than "tests.support": pytest puts tests/ (this file's folder) on sys.path.
pytest_plugins = ["support.fixtures"]
