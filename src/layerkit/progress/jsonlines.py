"""JSON progress: turns each event into one JSON object on its own line (for machines).

Every object has ``"event"`` (``step_started``, ``step_cached``, ``step_running``,
``step_output``, ``step_done``, ``step_error``, ``step_canceled``, ``build_done``)
and the event's fields.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from typing import TextIO

from layerkit.fastclass import asdict
from layerkit.progress.events import Event


def event_name(event: Event) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()


def event_json(event: Event) -> str:
    data = {"event": event_name(event), **asdict(event)}
    return json.dumps(data, ensure_ascii=False)


class JsonRenderer:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        with self._lock:
            self.stream.write(event_json(event) + "\n")
            self.stream.flush()

    def close(self) -> None:
        pass
