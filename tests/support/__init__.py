"""Test support: real registries and tiny base images built with no internet.

The modules here never import pytest, so the benchmark harness and
``scripts/bench-setup.sh`` reuse them; ``fixtures`` is the pytest layer.
"""
