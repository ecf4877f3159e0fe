"""layerkit: a daemonless container image builder with an explainable layer cache."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
