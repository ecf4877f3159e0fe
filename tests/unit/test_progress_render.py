"""Progress renderers: plain lines, JSON lines, the tty view, and ``auto``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from layerkit.progress import (
    BuildDone,
    Event,
    JsonRenderer,
    PlainRenderer,
    Recorder,
    StepCached,
    StepDone,
    StepError,
    StepOutput,
    StepRunning,
    StepStarted,
    make_renderer,
)
from layerkit.progress.tty import TtyRenderer
from layerkit.solver import FakeBuild, FakeWorker

EVENTS: list[Event] = [
    StepStarted(1, "[1/3] FROM busybox", "stage-0", 0),
    StepCached(1),
    StepStarted(3, "[deps 2/3] RUN pip install", "deps", 2),
    StepRunning(3, "requirements.txt changed"),
    StepOutput(3, "Collecting flask", 0.25),
    StepDone(3, 4.23),
    BuildDone(True, 5.0, 2, 1),
]


def test_plain_lines_look_like_buildkit() -> None:
    out = io.StringIO()
    r = PlainRenderer(out)
    for e in EVENTS:
        r.emit(e)
    assert out.getvalue().splitlines() == [
        "#1 [1/3] FROM busybox",
        "#1 CACHED",
        "",
        "#3 [deps 2/3] RUN pip install",
        "#3 reason: requirements.txt changed",
        "#3 0.250 Collecting flask",
        "#3 DONE 4.2s",
        "",
        "built: 2 steps, 1 cached, 5.0s total",
    ]


def test_plain_error_shows_command_exit_code_and_tail() -> None:
    out = io.StringIO()
    r = PlainRenderer(out)
    r.emit(StepStarted(4, "[3/3] RUN make", "s", 3))
    tail = tuple(f"line {i}" for i in range(15))
    r.emit(StepError(4, "process did not complete successfully", "/bin/sh -c make", 2, tail))
    text = out.getvalue()
    assert "#4 ERROR: process did not complete successfully" in text
    assert " > [3/3] RUN make:" in text
    assert "line 14" in text and "line 4" not in text  # only the last lines
    assert "/bin/sh -c make: exit code 2" in text


def test_cached_from_a_remote_source_says_where() -> None:
    r = PlainRenderer(io.StringIO())
    assert r.lines(StepCached(2, "registry ghcr.io/x/cache"))[0] == (
        "#2 CACHED (from registry ghcr.io/x/cache)")


def test_json_lines() -> None:
    out = io.StringIO()
    r = JsonRenderer(out)
    for e in EVENTS:
        r.emit(e)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [row["event"] for row in rows] == [
        "step_started", "step_cached", "step_started", "step_running", "step_output",
        "step_done", "build_done"]
    assert rows[3] == {"event": "step_running", "number": 3,
                       "reason": "requirements.txt changed"}


def test_tty_renders_collapsed_rows() -> None:
    out = io.StringIO()
    r = TtyRenderer(out)
    for e in EVENTS:
        r.emit(e)
    r.emit(StepStarted(5, "[4/4] RUN false", "s", 4))
    r.emit(StepError(5, "exit code: 1", "false", 1, ("boom",)))
    r.close()
    text = out.getvalue()
    assert "#1 [1/3] FROM busybox  CACHED" in text
    assert "#3 [deps 2/3] RUN pip install  4.2s" in text
    assert "why: requirements.txt changed" in text
    assert "boom" in text and "ERROR" in text


def test_auto_is_plain_when_not_a_terminal() -> None:
    assert isinstance(make_renderer("auto", io.StringIO()), PlainRenderer)
    assert isinstance(make_renderer("json", io.StringIO()), JsonRenderer)
    with pytest.raises(ValueError, match="unknown progress mode"):
        make_renderer("fancy", io.StringIO())


def test_a_real_solve_emits_events_in_order(tmp_path: Path) -> None:
    worker = FakeWorker(images={"busybox": {}})
    b = FakeBuild("FROM busybox\nRUN one\n", worker, tmp_path / "c.db")
    rec = Recorder()
    b.build(sink=rec)
    kinds = [type(e).__name__ for e in rec.events]
    assert kinds == ["StepStarted", "StepRunning", "StepDone", "StepStarted", "StepRunning",
                     "StepOutput", "StepDone", "BuildDone"]
    rec2 = Recorder()
    b.build(sink=rec2)
    assert [type(e).__name__ for e in rec2.events] == [
        "StepStarted", "StepCached", "StepStarted", "StepCached", "BuildDone"]
