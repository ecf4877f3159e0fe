"""The Worker protocol: the one narrow seam through which the solver touches the world.

"Decide, then do": the solver decides (keys, cache probes, order) and asks a
worker to do (resolve a tag, checksum files, run a RUN, apply a COPY). The
solver has no I/O of its own besides the key store. The real worker (snapshots,
runc, blob store) and :class:`~layerkit.solver.fake.FakeWorker` (in memory,
with call counters) both implement it.

Results are opaque to the solver: a :class:`StepResult` ``ref`` names whatever
the worker stores (a snapshot, a layer chain). ``has_result`` tells whether a
result recorded in the key store still exists: a key whose result is gone is a
cache MISS, never an error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from layerkit.context.checksum import SourceChecksum
from layerkit.errors import BuildError
from layerkit.fastclass import dataclass, field
from layerkit.graph.model import ContextInput, UrlInput
from layerkit.graph.ops import ExecOp, FileOp, SourceOp
from layerkit.solver.imageconfig import ImageConfig

__all__ = [
    "BaseState",
    "ExecContext",
    "ExecFailed",
    "InputValue",
    "SourceChecksum",
    "StepResult",
    "Worker",
]


@dataclass(frozen=True)
class BaseState:
    """A resolved base image: normalised ref, manifest digest and its config."""

    ref: str
    digest: str
    config: ImageConfig = field(default_factory=ImageConfig)
    platform: str = ""


@dataclass(frozen=True)
class StepResult:
    """What a step produced, as the worker names it. ``meta`` is stored with the key."""

    ref: str
    meta: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "meta": dict(self.meta)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepResult:
        return cls(str(data["ref"]), dict(data.get("meta") or {}))


# What an op's input index resolves to when the worker runs it: the result of
# the parent, a stage or an image; the context or URL itself; None for scratch.
InputValue = StepResult | ContextInput | UrlInput | None


@dataclass
class ExecContext:
    """Per-step information and callbacks passed to ``run_*``."""

    label: str  # e.g. "[deps 2/3] RUN pip install -r requirements.txt"
    config: ImageConfig  # the image config in effect (env, user, workdir of the base)
    on_output: Callable[[str], None] = lambda line: None
    cancelled: threading.Event = field(default_factory=threading.Event)
    no_cache: bool = False  # cache mounts start empty, as BuildKit does under no-cache


class ExecFailed(BuildError):
    """A RUN exited non-zero (or a file op failed): the command, code and last output."""

    reference = "step-failed"

    def __init__(
        self,
        message: str,
        *,
        command: str = "",
        exit_code: int | None = None,
        output_tail: Sequence[str] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.command = command
        self.exit_code = exit_code
        self.output_tail = list(output_tail)


@runtime_checkable
class Worker(Protocol):
    """Everything the solver needs done. Implementations must be thread-safe:
    independent stages call them from several threads."""

    def resolve_base(self, ref: str, platform: str) -> BaseState:
        """Resolve an image tag to its digest and config (metadata only, no layers)."""
        ...

    def load_source(self, op: SourceOp) -> StepResult | None:
        """Make a FROM's filesystem available (pull and unpack); None for scratch."""
        ...

    def checksum_context(
        self, sources: Sequence[str], excludes: Sequence[str], *, follow_links: bool = True,
        context: str = "context",
    ) -> SourceChecksum:
        """Content checksum of the build-context paths a COPY/ADD/bind mount selects."""
        ...

    def checksum_paths(
        self, result: StepResult | None, paths: Sequence[str], excludes: Sequence[str]
    ) -> SourceChecksum:
        """Content checksum of paths inside a result (``COPY --from``, ``--mount from=``)."""
        ...

    def checksum_url(self, url: str) -> str:
        """Digest of a remote file's content (``ADD <url>`` without ``--checksum``)."""
        ...

    def run_exec(
        self, parent: StepResult | None, op: ExecOp, inputs: Sequence[InputValue],
        ctx: ExecContext,
    ) -> StepResult:
        """Run a RUN on top of ``parent``; raise :class:`ExecFailed` on failure."""
        ...

    def run_file(
        self, parent: StepResult | None, op: FileOp, inputs: Sequence[InputValue],
        ctx: ExecContext,
    ) -> StepResult:
        """Apply COPY/ADD/mkdir actions on top of ``parent``."""
        ...

    def has_result(self, result: StepResult) -> bool:
        """True if the result is still in the store (else the cache record is a miss)."""
        ...
