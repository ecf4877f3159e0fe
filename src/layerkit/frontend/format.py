"""Human and JSON views of a stage graph, for ``layerkit parse --stages``."""

from __future__ import annotations

import json
from typing import Any

from layerkit.frontend.stages import Stage, StageGraph

__all__ = ["format_stages", "format_stages_json", "stages_to_json"]


def _label(graph: StageGraph, index: int) -> str:
    return graph.stages[index].display_name


def _base_text(graph: StageGraph, stage: Stage) -> str:
    if stage.base_stage is not None:
        return f"stage {_label(graph, stage.base_stage)}"
    if stage.is_scratch:
        return "scratch (empty)"
    return f"image {stage.base}"


def _deps_text(graph: StageGraph, stage: Stage) -> str:
    parts = []
    for dep in stage.dependencies:
        what = _label(graph, dep.stage) if dep.stage is not None else f"image {dep.image}"
        parts.append(f"{what} ({dep.kind}, line {dep.line})")
    return ", ".join(parts) if parts else "none"


def format_stages(graph: StageGraph) -> str:
    """The stages, their dependencies, what the target needs, and the build waves."""
    lines = [
        f"target: {graph.target.display_name} (stage {graph.target.index})",
        f"platform: {graph.target_platform} (build platform {graph.build_platform})",
    ]
    if graph.meta_args:
        shown = ", ".join(
            f"{m.name}={m.value}" if m.value is not None else f"{m.name} (unset)"
            for m in graph.meta_args
        )
        lines.append(f"global args: {shown}")
    lines.append("")
    lines.append("stages:")
    for stage in graph.stages:
        name = stage.name or "(unnamed)"
        lines.append(
            f"  [{stage.index}] {name}  {graph.filename}:{stage.from_instruction.start_line}"
            f"  {stage.from_instruction.original}"
        )
        lines.append(f"      base: {_base_text(graph, stage)}")
        if stage.platform is not None:
            lines.append(f"      platform: {stage.platform}")
        lines.append(f"      depends on: {_deps_text(graph, stage)}")
        needed = "yes" if stage.needed else "no (pruned: the target does not use it)"
        lines.append(f"      needed: {needed}")
    lines.append("")
    lines.append("build order:")
    for number, wave in enumerate(graph.build_order, 1):
        names = ", ".join(_label(graph, i) for i in wave)
        suffix = "  (parallel)" if len(wave) > 1 else ""
        lines.append(f"  wave {number}: {names}{suffix}")
    if graph.unused_build_args:
        lines.append("")
        lines.append(
            "[Warning] One or more build-args "
            f"[{' '.join(graph.unused_build_args)}] were not consumed"
        )
    return "\n".join(lines)


def stages_to_json(graph: StageGraph) -> dict[str, Any]:
    """A JSON-ready dict with the same content as :func:`format_stages`."""
    return {
        "target": graph.target.index,
        "target_name": graph.target.name,
        "platform": str(graph.target_platform),
        "build_platform": str(graph.build_platform),
        "global_args": [
            {"name": m.name, "value": m.value, "line": m.location.line}
            for m in graph.meta_args
        ],
        "stages": [
            {
                "index": s.index,
                "name": s.name,
                "base": s.base,
                "base_stage": s.base_stage,
                "platform": str(s.platform) if s.platform else None,
                "line": s.from_instruction.start_line,
                "deps": list(s.deps),
                "dependencies": [
                    {"kind": d.kind, "stage": d.stage, "image": d.image, "line": d.line}
                    for d in s.dependencies
                ],
                "external_images": list(s.external_images),
                "needed": s.needed,
                "instructions": len(s.instructions),
            }
            for s in graph.stages
        ],
        "build_order": [list(w) for w in graph.build_order],
        "unused_build_args": list(graph.unused_build_args),
    }


def format_stages_json(graph: StageGraph) -> str:
    return json.dumps(stages_to_json(graph), indent=2)
