"""layerkit.snapshot: snapshots (overlayfs or naive copies), layer diffs and safe unpacking."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Eager: light, and ``mount`` is also a submodule's name (a lazy lookup could return
# the module once the submodule is loaded).
from layerkit.snapshot.mount import Mount, mount, mounted, unmount

if TYPE_CHECKING:
    from layerkit.snapshot.apply import ApplyResult, apply_layer
    from layerkit.snapshot.diff import diff_naive, diff_overlay
    from layerkit.snapshot.driver import Driver, choose_driver
    from layerkit.snapshot.snapshotter import Snapshotter
    from layerkit.snapshot.tarwriter import DiffResult

# Names are imported on first use: a build whose bases are unpacked never needs the
# layer unpacker (apply).
_WHERE = {
    "ApplyResult": "apply", "apply_layer": "apply", "diff_naive": "diff",
    "diff_overlay": "diff", "Driver": "driver", "choose_driver": "driver",
    "Snapshotter": "snapshotter", "DiffResult": "tarwriter",
}

__all__ = [
    "ApplyResult",
    "DiffResult",
    "Driver",
    "Mount",
    "Snapshotter",
    "apply_layer",
    "choose_driver",
    "diff_naive",
    "diff_overlay",
    "mount",
    "mounted",
    "unmount",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'layerkit.snapshot' has no attribute {name!r}")
    return getattr(importlib.import_module(f"layerkit.snapshot.{module}"), name)
