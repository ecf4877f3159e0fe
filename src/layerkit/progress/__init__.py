"""layerkit.progress: build progress events and their renderers (plain, tty, json).

``make_renderer("auto")`` picks the tty view when stderr is a terminal and
plain text otherwise. A renderer is a :class:`ProgressSink` with ``close()``.
"""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

from layerkit.progress.events import (
    BuildDone,
    Event,
    NullSink,
    ProgressSink,
    Recorder,
    StepCached,
    StepCanceled,
    StepDone,
    StepError,
    StepOutput,
    StepRunning,
    StepStarted,
)
from layerkit.progress.jsonlines import JsonRenderer, event_json
from layerkit.progress.plain import PlainRenderer

__all__ = [
    "MODES",
    "BuildDone",
    "Event",
    "JsonRenderer",
    "NullSink",
    "PlainRenderer",
    "ProgressSink",
    "Recorder",
    "Renderer",
    "StepCached",
    "StepCanceled",
    "StepDone",
    "StepError",
    "StepOutput",
    "StepRunning",
    "StepStarted",
    "event_json",
    "make_renderer",
]

MODES = ("auto", "plain", "tty", "json")


class Renderer(Protocol):
    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


def make_renderer(mode: str = "auto", stream: TextIO | None = None) -> Renderer:
    """The renderer for ``--progress=<mode>``; ``auto`` = tty on a terminal, else plain."""
    out = stream or sys.stderr
    if mode == "auto":
        mode = "tty" if out.isatty() else "plain"
    if mode == "plain":
        return PlainRenderer(out)
    if mode == "json":
        return JsonRenderer(out)
    if mode == "tty":
        from layerkit.progress.tty import TtyRenderer

        return TtyRenderer(out)
    raise ValueError(f"unknown progress mode {mode!r} (choose from {', '.join(MODES)})")
