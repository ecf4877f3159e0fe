"""layerkit: a daemonless container image builder with an explainable layer cache.

    >>> import layerkit
    >>> report = layerkit.check("examples/python-service")
    >>> [f.rule for f in report.findings]
    []

The api functions are imported on first use, so ``import layerkit`` (and every
CLI start-up, which a no-op rebuild pays for) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from layerkit.errors import (
    BuildError,
    ContextError,
    DockerfileError,
    FrontendError,
    LayerkitError,
    LintError,
    Location,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from layerkit.api import BuildOptions, build, check, parse, plan, stages

_API = frozenset({"BuildOptions", "build", "check", "parse", "plan", "stages"})

__all__ = [
    "BuildError",
    "BuildOptions",
    "ContextError",
    "DockerfileError",
    "FrontendError",
    "LayerkitError",
    "LintError",
    "Location",
    "__version__",
    "build",
    "check",
    "parse",
    "plan",
    "stages",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        from layerkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'layerkit' has no attribute {name!r}")
