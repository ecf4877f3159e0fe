"""The scheduler: runs stages in dependency order, independent ones in parallel.

A stage starts as soon as every stage it needs is done (not in strict waves),
with at most ``jobs`` stages at once. The first failure sets the shared
``cancelled`` event (running steps see it and stop), nothing new starts, and
that failure is raised once the running stages have returned.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from layerkit.errors import BuildError
from layerkit.graph.model import BuildDef, StageDef
from layerkit.solver.engine import Canceled, StageState
from layerkit.solver.result import StepOutcome

if TYPE_CHECKING:
    from concurrent.futures import Future

RunStage = Callable[[StageDef, Mapping[int, StageState]], tuple[StageState, list[StepOutcome]]]


def run_stages(
    build: BuildDef, run: RunStage, *, jobs: int, cancelled: threading.Event
) -> tuple[dict[int, StageState], dict[int, list[StepOutcome]]]:
    """Run every stage of ``build``; returns the final states and outcomes by stage."""
    if len(build.stages) == 1:
        return _run_alone(build, run, cancelled)
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    states: dict[int, StageState] = {}
    outcomes: dict[int, list[StepOutcome]] = {}
    waiting = dict(build.stages)
    running: dict[Future[tuple[StageState, list[StepOutcome]]], int] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="stage") as pool:
        while waiting or running:
            if failure is None:
                for index in sorted(waiting):
                    stage = waiting[index]
                    unknown = [d for d in stage.deps if d not in build.stages]
                    if unknown:
                        raise BuildError(f"stage {stage.label} needs stage {unknown[0]}, which "
                                         "is not part of this build", reference="solver-bug")
                    if all(d in states for d in stage.deps):
                        # Snapshot of finished states: a stage reads only its deps.
                        running[pool.submit(run, stage, dict(states))] = index
                        del waiting[index]
            else:
                waiting.clear()
            if not running:
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                index = running.pop(fut)
                exc = fut.exception()
                if exc is None:
                    states[index], outcomes[index] = fut.result()
                elif failure is None and not isinstance(exc, Canceled):
                    failure = exc
                    cancelled.set()
    if failure is not None:
        raise failure
    return states, outcomes


def _run_alone(build: BuildDef, run: RunStage, cancelled: threading.Event
               ) -> tuple[dict[int, StageState], dict[int, list[StepOutcome]]]:
    """One stage (most builds): run it here, as the pool would, without the pool (whose
    import, with logging's, is ~5 ms of a one-line rebuild) or a thread."""
    (index, stage), = build.stages.items()
    if stage.deps:
        raise BuildError(f"stage {stage.label} needs stage {stage.deps[0]}, which "
                         "is not part of this build", reference="solver-bug")
    try:
        state, outcomes = run(stage, {})
    except Canceled:
        return {}, {}
    except BaseException:
        cancelled.set()
        raise
    return {index: state}, {index: outcomes}
