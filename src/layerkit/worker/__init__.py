"""layerkit.worker: the real build worker (snapshots, runc, layer blobs), base image
resolution, image commit and outputs, and the build/plan session that ties them together.

The submodules are imported lazily by their users; this package only names them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from layerkit.worker.local import LocalWorker
    from layerkit.worker.options import BuildOptions
    from layerkit.worker.session import BuildResult, run_build, run_plan
    from layerkit.worker.store import Store, default_root

__all__ = ["BuildOptions", "BuildResult", "LocalWorker", "Store", "default_root", "run_build",
           "run_plan"]

_WHERE = {
    "BuildOptions": "options", "BuildResult": "session", "LocalWorker": "local",
    "Store": "store", "default_root": "store", "run_build": "session", "run_plan": "session",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"layerkit.worker.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'layerkit.worker' has no attribute {name!r}")
