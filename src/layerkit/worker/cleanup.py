"""Cleaning up after killed builds, at the start of every build.

A SIGKILLed build can leave its runc container, the container's rootfs mount,
view mounts (``<root>/executor/layerkit-*``) and the mount of a snapshot it was
filling (``<root>/snapshots/<id>/mnt``). Nothing a later build trusts depends on
them (keys are recorded only after commit), but they hold disk and mount-table
entries. Every build, the no-op fast path included, first looks for them with
one read of ``/proc/self/mountinfo`` and one directory listing; only when
something is there does it pay for the runtime and the snapshotter to remove
what no live process owns.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["clean_leftovers", "has_leftovers"]


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    found: list[str] = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                point = line.split()[4].replace("\\040", " ")
                if point.startswith(prefix):
                    found.append(point)
    except OSError:
        return []
    return found


def has_leftovers(root: Path) -> bool:
    """Cheap: is anything mounted under the store, or is an executor dir left?"""
    if _mounts_under(root):
        return True
    try:
        if any(os.scandir(root / "executor")):
            return True
    except OSError:
        pass
    try:
        with os.scandir(root) as entries:
            return any(e.name.startswith((".probe-", ".driver-")) for e in entries)
    except OSError:
        return False


def clean_leftovers(root: Path) -> None:
    """Remove containers, mounts and bundles whose owning process is gone.

    Anything a live build holds is left alone: containers and executor dirs carry
    their owner's pid, and an active snapshot is flock-ed by its owner.
    """
    if os.geteuid() != 0 or not has_leftovers(root):
        return
    from layerkit.errors import LayerkitError
    from layerkit.executor import ExecutorConfig, reap

    with contextlib.suppress(LayerkitError, OSError):
        reap(ExecutorConfig(root=root))
    from layerkit.snapshot.mount import remove_tree, unmount

    _clean_probes(root, remove_tree)
    snapshots = root / "snapshots"
    if not snapshots.is_dir():
        return

    for point in sorted(_mounts_under(snapshots), key=len, reverse=True):
        rel = Path(point).relative_to(snapshots)
        if not rel.parts or _held(snapshots / rel.parts[0]):
            continue
        with contextlib.suppress(LayerkitError, OSError):
            unmount(Path(point))
    # Abandoned active snapshots (no marker, lock free) are removed by the
    # snapshotter when it opens the root.
    from layerkit.snapshot import Snapshotter

    with contextlib.suppress(LayerkitError, OSError):
        Snapshotter(root)


def _clean_probes(root: Path, remove_tree: Callable[[Path], bool]) -> None:
    """The overlayfs probe (``.probe-<pid>-*``) of a build killed mid-probe, and the
    half-written record of its answer (``.driver-<pid>-*.json``)."""
    try:
        entries = [p for p in root.iterdir() if p.name.startswith((".probe-", ".driver-"))]
    except OSError:
        return
    for path in entries:
        pid_text = path.name.split("-")[1] if path.name.count("-") >= 2 else ""
        if pid_text.isdigit() and _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            if path.name.startswith(".driver-"):
                path.unlink()
            else:
                remove_tree(path)  # unmounts first, refuses to delete through a mount


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _held(snapshot_dir: Path) -> bool:
    """Does a live process hold this snapshot's lock (it is being filled)?"""
    from layerkit.content.locks import lock_is_free

    return not lock_is_free(snapshot_dir / "lock")
