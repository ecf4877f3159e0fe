"""Stage scheduling: dependency order, bounded parallelism, pruning and clean failure."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from layerkit.graph import ExecOp
from layerkit.progress import Recorder, StepCanceled, StepError
from layerkit.solver import ExecContext, ExecFailed, FakeBuild, FakeWorker
from layerkit.solver.fake import Files

IMAGES = {"busybox": {"/bin/sh": "sh"}}

FOUR = """FROM busybox AS a
RUN work-a
FROM busybox AS b
RUN work-b
FROM busybox AS c
RUN work-c
FROM busybox AS unused
RUN work-unused
FROM busybox
COPY --from=a /random /a
COPY --from=b /random /b
COPY --from=c /random /c
"""


def test_independent_stages_run_in_parallel_bounded_by_jobs(tmp_path: Path) -> None:
    worker = FakeWorker(images=IMAGES, delay_s=0.2)
    b = FakeBuild(FOUR, worker, tmp_path / "c.db")
    b.build(jobs=2)
    assert worker.max_parallel == 2
    assert "work-unused" not in worker.ran  # the target does not need it


def test_one_job_runs_stages_one_at_a_time(tmp_path: Path) -> None:
    worker = FakeWorker(images=IMAGES, delay_s=0.05)
    FakeBuild(FOUR, worker, tmp_path / "c.db").build(jobs=1)
    assert worker.max_parallel == 1
    assert sorted(worker.ran) == ["work-a", "work-b", "work-c"]


def test_a_stage_starts_when_its_own_deps_are_done(tmp_path: Path) -> None:
    """Not strict waves: 'late' needs only 'fast', so it need not wait for 'slow'."""
    df = """FROM busybox AS slow
RUN slow
FROM busybox AS fast
RUN fast
FROM busybox AS late
COPY --from=fast /random /f
RUN late
FROM busybox
COPY --from=slow /random /s
COPY --from=late /random /l
"""
    order: list[str] = []
    release = threading.Event()

    def slow(files: Files, op: ExecOp, ctx: ExecContext) -> None:
        release.wait(5)
        order.append("slow")

    def late(files: Files, op: ExecOp, ctx: ExecContext) -> None:
        order.append("late")
        release.set()

    worker = FakeWorker(images=IMAGES)
    worker.on("slow", slow)
    worker.on("late", late)
    FakeBuild(df, worker, tmp_path / "c.db").build(jobs=3)
    assert order == ["late", "slow"]


def test_first_failure_cancels_the_rest_and_names_the_step(tmp_path: Path) -> None:
    df = """FROM busybox AS bad
RUN false
FROM busybox AS slow
RUN slow
FROM busybox
COPY --from=bad /x /x
COPY --from=slow /y /y
RUN after
"""

    slow_started = threading.Event()

    def fail(files: Files, op: ExecOp, ctx: ExecContext) -> None:
        slow_started.wait(5)  # fail while the other stage is mid-step
        raise ExecFailed("process did not complete successfully: exit code: 1",
                         command="/bin/sh -c false", exit_code=1,
                         output_tail=["line 1", "boom"])

    def slow(files: Files, op: ExecOp, ctx: ExecContext) -> None:
        slow_started.set()
        ctx.cancelled.wait(5)  # a well-behaved worker stops when told
        if ctx.cancelled.is_set():
            raise ExecFailed("canceled")

    worker = FakeWorker(images=IMAGES)
    worker.on("false", fail)
    worker.on("slow", slow)
    rec = Recorder()
    b = FakeBuild(df, worker, tmp_path / "c.db")
    start = time.monotonic()
    with pytest.raises(ExecFailed) as info:
        b.build(jobs=2, sink=rec)
    assert time.monotonic() - start < 4  # the slow stage was cancelled, not waited out
    err = info.value
    assert "[bad 2/2] RUN false" in err.message
    assert err.exit_code == 1 and err.output_tail == ["line 1", "boom"]
    assert err.location is not None and err.location.line == 2
    assert "after" not in worker.ran
    errors = [e for e in rec.events if isinstance(e, StepError)]
    assert len(errors) == 1 and errors[0].command == "/bin/sh -c false"
    assert any(isinstance(e, StepCanceled) for e in rec.events)


def test_failed_step_is_not_recorded_in_the_cache(tmp_path: Path) -> None:
    worker = FakeWorker(images=IMAGES)

    def fail(files: Files, op: ExecOp, ctx: ExecContext) -> None:
        raise ExecFailed("exit code: 2", exit_code=2)

    worker.on("flaky", fail)
    b = FakeBuild("FROM busybox\nRUN flaky\n", worker, tmp_path / "c.db")
    with pytest.raises(ExecFailed):
        b.build()
    worker.behaviours.clear()
    result = b.build()
    assert [s.status for s in result.steps] == ["cached", "ran"]
