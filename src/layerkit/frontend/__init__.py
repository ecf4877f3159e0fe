"""layerkit.frontend: turns typed instructions into the stage graph (no I/O).

Stages, ``--target`` and pruning, dependencies between stages, build-arg
scoping with the predefined args, and a pure dispatch that expands every
instruction with the environment in effect (see docs/frontend.md).
"""

from layerkit.frontend.args import MetaArg
from layerkit.frontend.dispatch import BaseImageConfig, Step, dispatch_stage
from layerkit.frontend.format import format_stages, format_stages_json, stages_to_json
from layerkit.frontend.platform import Platform, host_platform, parse_platform
from layerkit.frontend.stages import Dependency, Stage, StageGraph, build_stage_graph

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
