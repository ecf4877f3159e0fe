"""Chooses the snapshot driver: overlayfs when the kernel and filesystem allow
it, else the naive copying driver. Decided once per process and store root;
``LAYERKIT_SNAPSHOTTER=naive|overlayfs`` forces the choice."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Literal

from layerkit.errors import BuildError
from layerkit.snapshot.mount import Mount, mount, unmount

Driver = Literal["overlayfs", "naive"]
ENV = "LAYERKIT_SNAPSHOTTER"

_lock = threading.Lock()
_detected: dict[str, Driver] = {}


def overlay_extra_options() -> tuple[str, ...]:
    """Options that keep the upperdir a plain diff: no index, no metacopy
    (metadata-only copy-ups), no redirects (renamed directories)."""
    params = Path("/sys/module/overlay/parameters")
    out = []
    for name in ("index", "metacopy", "redirect_dir"):
        if (params / name).exists():
            out.append(f"{name}=off")
    return tuple(out)


def _probe(root: Path) -> bool:
    if os.geteuid() != 0:
        return False
    root.mkdir(parents=True, exist_ok=True)
    # The owner's pid is in the name so a build killed mid-probe can be cleaned up
    # (worker/cleanup.py) without touching another live process's probe.
    base = Path(tempfile.mkdtemp(prefix=f".probe-{os.getpid()}-", dir=root))
    try:
        for d in ("l1", "l2", "u", "w", "m"):
            (base / d).mkdir()
        (base / "l1" / "f").write_bytes(b"x")
        opts = (*overlay_extra_options(),
                f"lowerdir={base / 'l2'}:{base / 'l1'}",
                f"upperdir={base / 'u'}", f"workdir={base / 'w'}")
        try:
            mount(Mount("overlay", "overlay", opts), base / "m")
        except BuildError:
            return False
        try:
            os.unlink(base / "m" / "f")  # must leave a whiteout in the upperdir
            return (base / "u" / "f").is_char_device()
        finally:
            unmount(base / "m")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def choose_driver(root: Path) -> Driver:
    """The driver for snapshots stored under ``root``."""
    forced = os.environ.get(ENV, "").strip().lower()
    if forced in ("overlay", "overlayfs"):
        return "overlayfs"
    if forced == "naive":
        return "naive"
    if forced:
        raise BuildError(
            f"unknown snapshotter {forced!r} in ${ENV}",
            hint=f"set {ENV}=overlayfs or {ENV}=naive, or unset it",
            reference="snapshot-driver",
        )
    key = str(root.resolve())
    with _lock:
        if key not in _detected:
            _detected[key] = "overlayfs" if _probe(root) else "naive"
        return _detected[key]
