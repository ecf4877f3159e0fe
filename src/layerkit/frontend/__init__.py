"""layerkit.frontend: turns typed instructions into the stage graph (no I/O).

Stages, ``--target`` and pruning, dependencies between stages, build-arg
scoping with the predefined args, and a pure dispatch that expands every
instruction with the environment in effect (see docs/frontend.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from layerkit.frontend.args import MetaArg
    from layerkit.frontend.dispatch import BaseImageConfig, Step, dispatch_stage
    from layerkit.frontend.format import format_stages, format_stages_json, stages_to_json
    from layerkit.frontend.platform import Platform, host_platform, parse_platform
    from layerkit.frontend.stages import Dependency, Stage, StageGraph, build_stage_graph

# Names are imported on first use: ``frontend.platform`` alone must not pull in the
# dispatcher and the parser's instruction types.
_WHERE = {
    "MetaArg": "args", "BaseImageConfig": "dispatch", "Step": "dispatch",
    "dispatch_stage": "dispatch", "format_stages": "format", "format_stages_json": "format",
    "stages_to_json": "format", "Platform": "platform", "host_platform": "platform",
    "parse_platform": "platform", "Dependency": "stages", "Stage": "stages",
    "StageGraph": "stages", "build_stage_graph": "stages",
}

__all__ = [
    "BaseImageConfig",
    "Dependency",
    "MetaArg",
    "Platform",
    "Stage",
    "StageGraph",
    "Step",
    "build_stage_graph",
    "dispatch_stage",
    "format_stages",
    "format_stages_json",
    "host_platform",
    "parse_platform",
    "stages_to_json",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'layerkit.frontend' has no attribute {name!r}")
    return getattr(importlib.import_module(f"layerkit.frontend.{module}"), name)
