"""layerkit.snapshot: snapshots (overlayfs or naive copies), layer diffs and safe unpacking."""

from __future__ import annotations

from layerkit.snapshot.apply import ApplyResult, apply_layer
from layerkit.snapshot.diff import diff_naive, diff_overlay
from layerkit.snapshot.driver import Driver, choose_driver
from layerkit.snapshot.mount import Mount, mount, mounted, unmount
from layerkit.snapshot.snapshotter import Snapshotter
from layerkit.snapshot.tarwriter import DiffResult

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
