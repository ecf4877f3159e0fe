"""Plan: per-step predictions (cached or run, why, how long) and their text/JSON views."""

from __future__ import annotations

import json
from typing import Any, Literal

from layerkit.fastclass import dataclass


@dataclass(frozen=True)
class StepPlan:
    number: int
    stage: str
    index: int
    text: str  # as written
    label: str  # "[deps 2/3] RUN pip install ..." as the build would print it
    action: Literal["cached", "run"]
    reason: str
    estimated_s: float | None  # from the closest earlier record; None when never built
    uncertain: bool = False  # only running the build can tell (e.g. source stage output)

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number, "stage": self.stage, "index": self.index,
            "instruction": self.text, "prediction": self.action, "reason": self.reason,
            "estimated_s": None if self.estimated_s is None else round(self.estimated_s, 3),
            "uncertain": self.uncertain,
        }


@dataclass(frozen=True)
class Plan:
    steps: tuple[StepPlan, ...]

    @property
    def to_run(self) -> list[StepPlan]:
        return [s for s in self.steps if s.action == "run"]

    @property
    def estimated_s(self) -> float:
        return sum(s.estimated_s or 0.0 for s in self.to_run)

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": [s.to_json() for s in self.steps],
            "summary": {"steps": len(self.steps), "run": len(self.to_run),
                        "estimated_s": round(self.estimated_s, 3)},
        }

    def render_json(self) -> str:
        return json.dumps(self.to_json(), indent=2)

    def render_text(self) -> str:
        lines = []
        for s in self.steps:
            if s.action == "cached":
                lines.append(f"#{s.number} {s.label}\n    cached")
                continue
            est = f" (~{s.estimated_s:.1f}s)" if s.estimated_s is not None else ""
            mark = "run?" if s.uncertain else "run"
            lines.append(f"#{s.number} {s.label}\n    {mark}{est}: {s.reason}")
        unknown = sum(1 for s in self.to_run if s.estimated_s is None)
        summary = (f"{len(self.to_run)} of {len(self.steps)} steps will run, "
                   f"about {self.estimated_s:.1f}s")
        if unknown:
            summary += f" plus {unknown} never built before"
        lines.append(summary)
        return "\n".join(lines)
