"""Chooses the snapshot driver: overlayfs when the kernel and filesystem allow
it, else the naive copying driver. Decided once per process and store root;
``LAYERKIT_SNAPSHOTTER=naive|overlayfs`` forces the choice.

The probe (mount an overlay, make a whiteout, unmount) costs ~30 ms, a good part
of a one-line rebuild, so its answer is kept in ``<root>/driver.json`` for as
long as the things it depends on stay the same: this boot (modules may have
been loaded or unloaded since the last), the kernel, the overlay module's
parameters and the filesystem the store lives on.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Literal

from layerkit.errors import BuildError
from layerkit.snapshot.mount import Mount, mount, unmount
from layerkit.tmpnames import create_dir

Driver = Literal["overlayfs", "naive"]
ENV = "LAYERKIT_SNAPSHOTTER"

_lock = threading.Lock()
_detected: dict[str, tuple[Driver, bool]] = {}
VOLATILE_ENV = "LAYERKIT_OVERLAY_VOLATILE"


def overlay_extra_options() -> tuple[str, ...]:
    """Options that keep the upperdir a plain diff: no index, no metacopy
    (metadata-only copy-ups), no redirects (renamed directories)."""
    params = Path("/sys/module/overlay/parameters")
    out = []
    for name in ("index", "metacopy", "redirect_dir"):
        if (params / name).exists():
            out.append(f"{name}=off")
    return tuple(out)


def _probe(root: Path) -> tuple[bool, bool]:
    """(overlayfs works, its ``volatile`` option is accepted)."""
    if os.geteuid() != 0:
        return False, False
    root.mkdir(parents=True, exist_ok=True)
    # The owner's pid is in the name so a build killed mid-probe can be cleaned up
    # (worker/cleanup.py) without touching another live process's probe.
    base = create_dir(root, f".probe-{os.getpid()}-")
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
            return False, False
        try:
            os.unlink(base / "m" / "f")  # must leave a whiteout in the upperdir
            works = (base / "u" / "f").is_char_device()
        finally:
            unmount(base / "m")
        if not works:
            return False, False
        for d in ("u2", "w2"):
            (base / d).mkdir()
        try:  # Linux 5.10+
            mount(Mount("overlay", "overlay", (*opts[:-2], f"upperdir={base / 'u2'}",
                                               f"workdir={base / 'w2'}", "volatile")),
                  base / "m")
        except BuildError:
            return True, False
        unmount(base / "m")
        return True, True
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
    return _decided(root)[0]


def volatile_upper(root: Path) -> bool:
    """Whether writable overlays under ``root`` are mounted ``volatile``: the kernel
    then ignores fsync and sync inside the mount (a RUN's package manager syncs
    often), and the snapshotter makes the upperdir durable itself, once, before it
    commits (``Snapshotter.commit``). ``LAYERKIT_OVERLAY_VOLATILE=0`` turns it off."""
    if os.environ.get(VOLATILE_ENV, "").strip() == "0":
        return False
    return _decided(root)[1]


def _decided(root: Path) -> tuple[Driver, bool]:
    key = str(root.resolve())
    with _lock:
        if key not in _detected:
            _detected[key] = _remembered_or_probed(root)
        return _detected[key]


def _probe_conditions(root: Path) -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "?"
    return json.dumps([boot, os.uname().release, os.geteuid(), os.stat(root).st_dev,
                       overlay_extra_options()])


def _remembered_or_probed(root: Path) -> tuple[Driver, bool]:
    root.mkdir(parents=True, exist_ok=True)
    conditions = _probe_conditions(root)
    record = root / "driver.json"
    try:
        saved = json.loads(record.read_text())
        if saved.get("conditions") == conditions and saved.get("driver") in (
                "overlayfs", "naive") and isinstance(saved.get("volatile"), bool):
            driver: Driver = saved["driver"]
            return driver, saved["volatile"]
    except (OSError, ValueError, AttributeError):
        pass  # absent or unreadable: probe again
    works, volatile = _probe(root)
    chosen: Driver = "overlayfs" if works else "naive"
    # Written whole then renamed, so a concurrent or killed build never reads half.
    tmp = root / f".driver-{os.getpid()}-{threading.get_ident()}.json"
    with contextlib.suppress(OSError):
        tmp.write_text(json.dumps({"conditions": conditions, "driver": chosen,
                                   "volatile": volatile}))
        os.replace(tmp, record)
    with contextlib.suppress(OSError):
        tmp.unlink()
    return chosen, volatile
