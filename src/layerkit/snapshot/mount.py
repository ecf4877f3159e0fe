"""Turns a `Mount` description into a real mount on the host, and back.

A `Mount` is data (type, source, options), like containerd's: the snapshotter
describes what to mount and the caller decides where. Overlay option strings
are limited to one page by mount(2); when the absolute lowerdir paths do not
fit, the snapshotter emits paths relative to ``chdir`` and the mount is done in
a short-lived child process whose working directory is ``chdir`` (the same
trick as containerd's overlay snapshotter, without changing our own cwd, which
other threads share).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from layerkit.errors import BuildError
from layerkit.fastclass import dataclass, field

MS_RDONLY = 1
MS_BIND = 4096
MS_REC = 16384
MS_REMOUNT = 32
MNT_DETACH = 2

# mount(2) copies at most one page of option data; keep one byte for the NUL.
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Mount:
    """What to mount: ``type`` is "overlay" or "bind"; ``chdir`` is set when
    ``options`` hold paths relative to that directory."""

    type: str
    source: str
    options: tuple[str, ...] = ()
    chdir: str | None = field(default=None)

    @property
    def readonly(self) -> bool:
        return "ro" in self.options

    def data(self) -> str:
        """The option string passed to mount(2) (flags such as ro/rbind removed)."""
        return ",".join(o for o in self.options if o not in _FLAG_OPTIONS)


_FLAG_OPTIONS = {"ro", "rw", "bind", "rbind"}


@functools.cache
def _libc() -> ctypes.CDLL:
    # The running interpreter's own symbols include libc's mount/umount2. (The
    # ctypes.util.find_library("c") used before ran ldconfig in a subprocess on
    # every mount and unmount: several ms each.)
    return ctypes.CDLL(None, use_errno=True)


def _sys_mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    libc = _libc()
    rc = libc.mount(
        source.encode(), target.encode(), fstype.encode() if fstype else None,
        ctypes.c_ulong(flags), data.encode() if data else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype or 'bind'} on {target}: {os.strerror(err)}")


# A tiny program run with cwd=Mount.chdir so relative lowerdir paths resolve there.
_CHILD = (
    "import ctypes,os,sys\n"
    "l=ctypes.CDLL(None,use_errno=True)\n"
    "a=sys.argv[1:]\n"
    "r=l.mount(a[0].encode(),a[1].encode(),a[2].encode(),ctypes.c_ulong(int(a[3])),"
    "a[4].encode())\n"
    "e=ctypes.get_errno()\n"
    "sys.exit(0 if r==0 else (sys.stderr.write(os.strerror(e)+'\\n') or 1))\n"
)


def mount(m: Mount, target: Path) -> None:
    """Mount ``m`` on the existing directory ``target``."""
    flags = MS_RDONLY if m.readonly else 0
    try:
        if m.type == "bind":
            bflags = MS_BIND | (MS_REC if "rbind" in m.options else 0)
            _sys_mount(m.source, str(target), "", bflags, "")
            if m.readonly:
                # A bind mount ignores MS_RDONLY until it is remounted.
                _sys_mount("", str(target), "", MS_REMOUNT | MS_BIND | MS_RDONLY, "")
            return
        data = m.data()
        if len(data) >= PAGE_SIZE:
            raise OSError(7, f"mount options are {len(data)} bytes, over one page")
        if m.chdir is None:
            _sys_mount(m.source, str(target), m.type, flags, data)
            return
        import subprocess  # only mounts with many layers need the child (and its import)

        proc = subprocess.run(
            [sys.executable, "-S", "-c", _CHILD, m.source, str(target), m.type,
             str(flags), data],
            cwd=m.chdir, capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise OSError(0, f"mount {m.type} on {target}: {proc.stderr.strip()}")
    except OSError as exc:
        raise BuildError(
            f"cannot mount {m.type} snapshot at {target}: {exc.strerror or exc}",
            hint="layerkit needs root and a kernel with overlayfs; "
            "set LAYERKIT_SNAPSHOTTER=naive to copy files instead",
            reference="snapshot-mount",
        ) from exc


def unmount(target: Path) -> None:
    """Unmount ``target``; fall back to a lazy detach when it is busy."""
    libc = _libc()
    if libc.umount2(str(target).encode(), 0) == 0:
        return
    err = ctypes.get_errno()
    if err == 22:  # EINVAL: not a mount point (already gone)
        return
    if libc.umount2(str(target).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err != 22:
            raise BuildError(
                f"cannot unmount {target}: {os.strerror(err)}",
                hint="a process may still use it; check `fuser -m` and retry",
                reference="snapshot-mount",
            )


def syncfs(path: Path) -> None:
    """Write everything dirty on the filesystem holding ``path`` to disk (syncfs(2)),
    or raise: a write-back error means data that was written is not on disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _libc().syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise BuildError(
                f"writing {path} to disk failed: {os.strerror(err)}",
                hint="check the disk under the layerkit root (dmesg, free space); the step "
                     "was not committed and runs again next time",
                reference="snapshot-sync")
    finally:
        os.close(fd)


@contextlib.contextmanager
def mounted(m: Mount, target: Path) -> Iterator[Path]:
    """Mount ``m`` on ``target`` (created if needed) for the ``with`` block."""
    target.mkdir(parents=True, exist_ok=True)
    mount(m, target)
    try:
        yield target
    finally:
        unmount(target)


def mount_points_under(prefix: Path) -> list[Path]:
    """Mount points at or below ``prefix``, deepest first (for cleanup)."""
    found: list[Path] = []
    root = str(prefix).rstrip("/") + "/"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            point = line.split()[4].replace("\\040", " ")
            if point == root.rstrip("/") or point.startswith(root):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_tree(path: Path) -> bool:
    """Unmount whatever is mounted under ``path``, then delete it. Refuses (and
    returns False) when a mount survives, so we never delete through a mount."""
    for point in mount_points_under(path):
        with contextlib.suppress(BuildError):
            unmount(point)
    if mount_points_under(path):
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True
