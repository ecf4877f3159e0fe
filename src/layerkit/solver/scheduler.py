"""The scheduler: runs stages in dependency order, independent ones in parallel.

A stage starts as soon as every stage it needs is done (not in strict waves),
with at most ``jobs`` stages at once. The first failure sets the shared
``cancelled`` event (running steps see it and stop), nothing new starts, and
that failure is raised once the running stages have returned.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping

from layerkit.errors import BuildError
from layerkit.graph.model import BuildDef, StageDef
from layerkit.solver.engine import Canceled, StageState
from layerkit.solver.result import StepOutcome

RunStage = Callable[[StageDef, Mapping[int, StageState]], tuple[StageState, list[StepOutcome]]]
# A stage's thread reports (stage index, its result, or the exception it raised).
_Finished = tuple[int, tuple[StageState, list[StepOutcome]] | None, BaseException | None]


def run_stages(
    build: BuildDef, run: RunStage, *, jobs: int, cancelled: threading.Event
) -> tuple[dict[int, StageState], dict[int, list[StepOutcome]]]:
    """Run every stage of ``build``; returns the final states and outcomes by stage."""
    if len(build.stages) == 1:
        return _run_alone(build, run, cancelled)
    # Plain threads and a queue, not concurrent.futures: importing it (and the logging
    # it pulls in) was ~5 ms of a one-line rebuild of a multi-stage Dockerfile.
    states: dict[int, StageState] = {}
    outcomes: dict[int, list[StepOutcome]] = {}
    waiting = dict(build.stages)
    running: dict[int, threading.Thread] = {}
    finished: queue.SimpleQueue[_Finished] = queue.SimpleQueue()
    failure: BaseException | None = None
    limit = max(1, jobs)

    def work(index: int, stage: StageDef, deps: dict[int, StageState]) -> None:
        try:
            finished.put((index, run(stage, deps), None))
        except BaseException as exc:  # handed to the scheduling thread
            finished.put((index, None, exc))

    try:
        while waiting or running:
            if failure is None:
                for index in sorted(waiting):
                    if len(running) >= limit:
                        break
                    stage = waiting[index]
                    unknown = [d for d in stage.deps if d not in build.stages]
                    if unknown:
                        raise BuildError(f"stage {stage.label} needs stage {unknown[0]}, which "
                                         "is not part of this build", reference="solver-bug")
                    if all(d in states for d in stage.deps):
                        # Snapshot of finished states: a stage reads only its deps.
                        thread = threading.Thread(target=work, args=(index, stage, dict(states)),
                                                  name=f"stage-{index}")
                        running[index] = thread
                        del waiting[index]
                        thread.start()
            else:
                waiting.clear()
            if not running:
                break
            index, result, exc = finished.get()
            running.pop(index).join()
            if result is not None:
                states[index], outcomes[index] = result
            elif failure is None and not isinstance(exc, Canceled):
                failure = exc
                cancelled.set()
    except BaseException:
        # Interrupted here (SIGTERM, a solver bug): stop the running stages and wait for
        # them, so their containers and snapshots are cleaned up before we unwind.
        cancelled.set()
        for thread in running.values():
            thread.join()
        raise
    if failure is not None:
        raise failure
    return states, outcomes


def _run_alone(build: BuildDef, run: RunStage, cancelled: threading.Event
               ) -> tuple[dict[int, StageState], dict[int, list[StepOutcome]]]:
    """One stage (most builds): run it here, as a stage thread would, without a thread."""
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
