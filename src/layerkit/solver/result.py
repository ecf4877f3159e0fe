"""Solve results: per-step outcomes and per-stage final states, for the exporter and
``--metadata-file``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from layerkit.fastclass import dataclass
from layerkit.solver.imageconfig import ImageConfig
from layerkit.solver.worker import StepResult

Status = Literal["cached", "ran"]


@dataclass(frozen=True)
class StepOutcome:
    """What happened to one instruction. Metadata-only instructions have ``number``
    None and status ``cached`` (they never execute)."""

    stage: str
    stage_index: int
    index: int
    text: str
    status: Status
    reason: str
    duration_s: float
    number: int | None = None
    key: str | None = None
    source: str | None = None  # where a cached result came from ("local cache")

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage, "index": self.index, "instruction": self.text,
            "status": self.status, "reason": self.reason,
            "duration_s": round(self.duration_s, 3), "number": self.number,
            "key": self.key, "source": self.source,
        }


@dataclass(frozen=True)
class StageResult:
    """A stage's final state: its filesystem result, output key and image config."""

    index: int
    name: str | None
    key: str
    result: StepResult | None  # None: an empty (scratch) filesystem
    config: ImageConfig
    layers: tuple[StepResult, ...] = ()  # each layer-making step's result, in order
    base: StepResult | None = None  # the root FROM's result; layers[0] is a diff against it


@dataclass(frozen=True)
class SolveResult:
    target: int
    stages: Mapping[int, StageResult]
    steps: tuple[StepOutcome, ...]
    duration_s: float = 0.0

    @property
    def final(self) -> StageResult:
        return self.stages[self.target]

    def metadata(self) -> dict[str, Any]:
        """The ``layerkit.steps`` part of ``--metadata-file``."""
        return {"steps": [s.to_json() for s in self.steps]}
