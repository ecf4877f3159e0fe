"""Progress events: what the solver reports while it works, as plain immutable records.

Renderers (plain, tty, json) turn them into text; the solver only emits them
through a :class:`ProgressSink`. ``number`` is the step's ``#N`` as printed,
fixed before the build starts so that parallel stages never renumber.
"""

from __future__ import annotations

import threading
from typing import Protocol

from layerkit.fastclass import dataclass, field


@dataclass(frozen=True)
class StepStarted:
    number: int
    label: str  # "[deps 2/3] RUN pip install -r requirements.txt"
    stage: str
    index: int


@dataclass(frozen=True)
class StepCached:
    number: int
    source: str = "local cache"


@dataclass(frozen=True)
class StepRunning:
    """The step will run; ``reason`` says why (printed before its output)."""

    number: int
    reason: str


@dataclass(frozen=True)
class StepOutput:
    number: int
    line: str
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class StepDone:
    number: int
    duration_s: float


@dataclass(frozen=True)
class StepError:
    number: int
    message: str
    command: str = ""
    exit_code: int | None = None
    output_tail: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepCanceled:
    number: int


@dataclass(frozen=True)
class BuildDone:
    ok: bool
    duration_s: float
    steps: int = 0
    cached: int = 0
    error: str = ""


Event = (
    StepStarted | StepCached | StepRunning | StepOutput | StepDone | StepError | StepCanceled
    | BuildDone
)


class ProgressSink(Protocol):
    def emit(self, event: Event) -> None: ...


@dataclass
class Recorder:
    """A sink that keeps every event (tests, and the JSON metadata)."""

    events: list[Event] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def emit(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)


class NullSink:
    def emit(self, event: Event) -> None:
        pass
