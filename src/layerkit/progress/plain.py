"""Plain progress: turns events into BuildKit-style ``#N`` lines, one per event (for CI).

::

    #3 [deps 2/3] RUN pip install -r requirements.txt
    #3 reason: requirements.txt changed
    #3 0.412 Collecting flask
    #3 DONE 4.2s

    #4 [deps 3/3] COPY . .
    #4 CACHED
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from layerkit.progress.events import (
    BuildDone,
    Event,
    StepCached,
    StepCanceled,
    StepDone,
    StepError,
    StepOutput,
    StepRunning,
    StepStarted,
)

ERROR_TAIL_LINES = 10


class PlainRenderer:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._labels: dict[int, str] = {}

    def emit(self, event: Event) -> None:
        with self._lock:
            for line in self.lines(event):
                self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        pass

    def lines(self, event: Event) -> list[str]:
        if isinstance(event, StepStarted):
            self._labels[event.number] = event.label
            return [f"#{event.number} {event.label}"]
        if isinstance(event, StepCached):
            suffix = "" if event.source == "local cache" else f" (from {event.source})"
            return [f"#{event.number} CACHED{suffix}", ""]
        if isinstance(event, StepRunning):
            return [f"#{event.number} reason: {event.reason}"]
        if isinstance(event, StepOutput):
            return [f"#{event.number} {event.elapsed_s:.3f} {event.line}"]
        if isinstance(event, StepDone):
            return [f"#{event.number} DONE {event.duration_s:.1f}s", ""]
        if isinstance(event, StepCanceled):
            return [f"#{event.number} CANCELED", ""]
        if isinstance(event, StepError):
            return self._error(event)
        if isinstance(event, BuildDone):
            if not event.ok:
                return []
            return [f"built: {event.steps} steps, {event.cached} cached, "
                    f"{event.duration_s:.1f}s total"]
        return []

    def _error(self, event: StepError) -> list[str]:
        out = [f"#{event.number} ERROR: {event.message}"]
        label = self._labels.get(event.number, f"step #{event.number}")
        out += ["------", f" > {label}:"]
        out += [f" {line}" for line in event.output_tail[-ERROR_TAIL_LINES:]]
        out.append("------")
        if event.exit_code is not None:
            out.append(f"{event.command or label}: exit code {event.exit_code}")
        out.append("")
        return out
