"""The op graph: vertices (one per instruction) grouped into stages, with their inputs.

A :class:`Vertex` is what the solver consumes: an op, the inputs the op refers
to by index, the image-config changes and history entry it contributes, and
the plain explanation inputs (args, env, user, ...) recorded with its key. The
solver never looks at Dockerfile syntax; ``text`` and ``expanded`` are only
shown to the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from layerkit.fastclass import dataclass, field
from layerkit.graph.ops import ConfigChange, ConfigOp, Op, SourceOp


@dataclass(frozen=True)
class ParentInput:
    """The stage's previous step (or, for the first step, the FROM result)."""


@dataclass(frozen=True)
class ContextInput:
    """The build context, or a named local context."""

    name: str = "context"


@dataclass(frozen=True)
class StageInput:
    """The final result of another stage of the same build."""

    stage: int
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"stage-{self.stage}"


@dataclass(frozen=True)
class ImageInput:
    """An external image used by ``COPY --from`` or ``--mount from=``."""

    ref: str
    platform: str = ""


@dataclass(frozen=True)
class UrlInput:
    """A remote file for ``ADD <url>``; ``checksum`` when the user pinned one."""

    url: str
    checksum: str = ""


Input = ParentInput | ContextInput | StageInput | ImageInput | UrlInput


@dataclass(frozen=True)
class HistoryEntry:
    """One image-config history entry, as BuildKit writes it."""

    created_by: str
    empty_layer: bool
    comment: str = "buildkit.dockerfile.v0"


@dataclass(frozen=True)
class Vertex:
    """One instruction of a stage, lowered to an op.

    ``index`` is the instruction's position in its stage: 0 is the FROM, ONBUILD
    triggers inherited from a base stage come first after it.
    """

    stage: int
    index: int
    text: str  # the instruction as written
    expanded: str  # after variable expansion
    op: Op
    inputs: tuple[Input, ...] = (ParentInput(),)
    config: tuple[ConfigChange, ...] = ()
    history: HistoryEntry | None = None
    line: int = 0
    # Plain inputs recorded with the key for explanations (never secrets).
    record: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def makes_layer(self) -> bool:
        """True when the step produces (or pulls) a filesystem result: it has a key."""
        return not isinstance(self.op, ConfigOp)

    @property
    def is_from(self) -> bool:
        return isinstance(self.op, SourceOp)


@dataclass(frozen=True)
class StageDef:
    """One stage: its vertices (FROM first) and the stages it needs."""

    index: int
    name: str | None
    vertices: tuple[Vertex, ...]
    deps: tuple[int, ...] = ()
    platform: str = ""

    @property
    def label(self) -> str:
        return self.name or f"stage-{self.index}"

    @property
    def base_stage(self) -> int | None:
        op = self.vertices[0].op
        if isinstance(op, SourceOp) and op.kind == "stage":
            inp = self.vertices[0].inputs[0]
            return inp.stage if isinstance(inp, StageInput) else None
        return None


@dataclass(frozen=True)
class BuildDef:
    """The whole build: the needed stages by index, and which one is the target."""

    dockerfile: str  # absolute path: part of every step's identity
    stages: Mapping[int, StageDef]
    target: int

    def order(self) -> list[int]:
        """Stage indices in a dependency-respecting order (indices only grow)."""
        return sorted(self.stages)
