"""TTY progress: turns events into a live rich display, like BuildKit's terminal view.

Running steps show their label, elapsed time and last output lines; finished
steps collapse to one line (``CACHED`` or ``DONE 4.2s`` with the reason). A
failed step keeps its command, exit code and last lines of output.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from layerkit.fastclass import dataclass, field
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

_TAIL = 6


@dataclass
class _Row:
    number: int
    label: str
    started: float
    state: str = "running"  # running | cached | done | error | canceled
    reason: str = ""
    duration_s: float = 0.0
    tail: list[str] = field(default_factory=list)
    error: str = ""


class TtyRenderer:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.console = Console(file=stream or sys.stderr)
        self._rows: dict[int, _Row] = {}
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._summary = ""
        self._live = Live(self._render(), console=self.console, refresh_per_second=8,
                          transient=False)
        self._live.start()

    def emit(self, event: Event) -> None:
        with self._lock:
            self._apply(event)
            self._live.update(self._render())

    def close(self) -> None:
        with self._lock:
            self._live.update(self._render())
            self._live.stop()

    def _apply(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self._rows[event.number] = _Row(event.number, event.label, time.monotonic())
            return
        if isinstance(event, BuildDone):
            self._summary = (
                f"built in {event.duration_s:.1f}s: {event.steps} steps, {event.cached} cached"
                if event.ok else f"build failed after {event.duration_s:.1f}s"
            )
            return
        row = self._rows.get(event.number)
        if row is None:
            return
        if isinstance(event, StepCached):
            row.state = "cached"
        elif isinstance(event, StepRunning):
            row.reason = event.reason
        elif isinstance(event, StepOutput):
            row.tail = [*row.tail, event.line][-_TAIL:]
        elif isinstance(event, StepDone):
            row.state, row.duration_s = "done", event.duration_s
        elif isinstance(event, StepCanceled):
            row.state = "canceled"
        elif isinstance(event, StepError):
            row.state, row.error = "error", event.message
            if event.output_tail:
                row.tail = list(event.output_tail)[-_TAIL * 2:]

    def _render(self) -> Group:
        now = time.monotonic()
        parts: list[Text] = [Text(f"[+] Building {now - self._start:.1f}s", style="bold")]
        for row in sorted(self._rows.values(), key=lambda r: r.number):
            head = Text(f" => #{row.number} {row.label}")
            if row.state == "cached":
                head.append("  CACHED", style="cyan")
            elif row.state == "done":
                head.append(f"  {row.duration_s:.1f}s", style="green")
            elif row.state == "canceled":
                head.append("  CANCELED", style="yellow")
            elif row.state == "error":
                head.append("  ERROR", style="bold red")
            else:
                head.append(f"  {now - row.started:.1f}s", style="blue")
            parts.append(head)
            if row.reason and row.state in ("running", "done", "error"):
                parts.append(Text(f"    why: {row.reason}", style="dim"))
            if row.state in ("running", "error"):
                parts.extend(Text(f"    {line}", style="dim") for line in row.tail)
            if row.error:
                parts.append(Text(f"    {row.error}", style="red"))
        if self._summary:
            parts.append(Text(self._summary, style="bold"))
        return Group(*parts)
