"""layerkit.graph: the immutable op graph and its canonical digests.

Ops (:mod:`~layerkit.graph.ops`) say what a step does and how it is keyed;
vertices and stages (:mod:`~layerkit.graph.model`) say how steps connect;
:func:`lower_stage` turns the frontend's dispatched steps into vertices.
"""

from typing import TYPE_CHECKING, Any

from layerkit.graph.digest import OP_SCHEMA, canonical_json, digest_of
from layerkit.graph.model import (
    BuildDef,
    ContextInput,
    HistoryEntry,
    ImageInput,
    Input,
    ParentInput,
    StageDef,
    StageInput,
    UrlInput,
    Vertex,
)
from layerkit.graph.ops import (
    AddUrlAction,
    CacheMap,
    ConfigChange,
    ConfigOp,
    CopyAction,
    Dep,
    ExecMount,
    ExecOp,
    FileAction,
    FileOp,
    MkdirAction,
    MkfileAction,
    Op,
    SourceOp,
)

__all__ = [
    "OP_SCHEMA",
    "AddUrlAction",
    "BuildDef",
    "CacheMap",
    "ConfigChange",
    "ConfigOp",
    "ContextInput",
    "CopyAction",
    "Dep",
    "ExecMount",
    "ExecOp",
    "FileAction",
    "FileOp",
    "HistoryEntry",
    "ImageInput",
    "Input",
    "MkdirAction",
    "MkfileAction",
    "Op",
    "ParentInput",
    "SourceOp",
    "StageDef",
    "StageInput",
    "UrlInput",
    "Vertex",
    "canonical_json",
    "digest_of",
    "lower_stage",
]

if TYPE_CHECKING:
    from layerkit.graph.lower import lower_stage


def __getattr__(name: str) -> Any:
    # The lowering imports the frontend and the parser's types: only when used.
    if name == "lower_stage":
        from layerkit.graph.lower import lower_stage

        return lower_stage
    raise AttributeError(f"module 'layerkit.graph' has no attribute {name!r}")
