"""layerkit.solver: cache keys, cache probes, stage scheduling and explanations.

Entry points: :func:`solve` (build) and :func:`plan` (predict, run nothing),
both over a frontend :class:`~layerkit.frontend.StageGraph`, a
:class:`Worker` that does the I/O, and the SQLite key store.
"""

from typing import TYPE_CHECKING, Any

from layerkit.solver.cachesource import CacheSource, LocalCache
from layerkit.solver.imageconfig import Healthcheck, ImageConfig, apply_change, scratch_config
from layerkit.solver.plan import Plan, StepPlan
from layerkit.solver.result import SolveResult, StageResult, StepOutcome
from layerkit.solver.solve import (
    LoweredBuild,
    SolveOptions,
    lower_build,
    plan,
    solve,
    solve_build,
)
from layerkit.solver.worker import (
    BaseState,
    ExecContext,
    ExecFailed,
    InputValue,
    StepResult,
    Worker,
)

__all__ = [
    "BaseState",
    "CacheSource",
    "ExecContext",
    "ExecFailed",
    "FakeBuild",
    "FakeWorker",
    "Healthcheck",
    "ImageConfig",
    "InputValue",
    "LocalCache",
    "LoweredBuild",
    "Plan",
    "SolveOptions",
    "SolveResult",
    "StageResult",
    "StepOutcome",
    "StepPlan",
    "StepResult",
    "Worker",
    "apply_change",
    "lower_build",
    "plan",
    "scratch_config",
    "solve",
    "solve_build",
]

if TYPE_CHECKING:
    from layerkit.solver.fake import FakeBuild, FakeWorker


def __getattr__(name: str) -> Any:
    # The fakes (for tests) parse Dockerfiles: imported on first use, so a build that
    # reuses a lowered build never loads the parser.
    if name in ("FakeBuild", "FakeWorker"):
        from layerkit.solver import fake

        return getattr(fake, name)
    raise AttributeError(f"module 'layerkit.solver' has no attribute {name!r}")
