"""Shared helpers (not tests) for the snapshot and executor integration tests:
a busybox base layer built in memory, and the root/runc skip checks."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

BUSYBOX = Path("/bin/busybox")
PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "app:x:1234:2345:app:/home/app:/bin/sh\n"
)
GROUP = "root:x:0:\napp:x:2345:\nextra:x:3456:app\n"


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("SKIPPED LOUDLY: needs root (overlayfs mounts, namespaces, runc)")


def require_runc() -> None:
    require_root()
    if shutil.which("runc") is None and shutil.which("crun") is None:
        pytest.skip("SKIPPED LOUDLY: no OCI runtime (apt-get install runc)")
    if not BUSYBOX.is_file():
        pytest.skip("SKIPPED LOUDLY: /bin/busybox missing (apt-get install busybox-static)")


def _add(tf: tarfile.TarFile, name: str, *, data: bytes | None = None, mode: int = 0o644,
         kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 1_600_000_000
    info.linkname = link
    if data is not None:
        info.size = len(data)
    tf.addfile(info, io.BytesIO(data) if data is not None else None)


def busybox_layer(path: Path) -> Path:
    """Write a base layer tar: busybox with its applets, /etc/passwd, /etc/x."""
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        _add(tf, "bin", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tf, "bin/busybox", data=BUSYBOX.read_bytes(), mode=0o755)
        for applet in sorted(set(applets) - {"busybox"}):
            _add(tf, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        _add(tf, "etc", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tf, "etc/passwd", data=PASSWD.encode())
        _add(tf, "etc/group", data=GROUP.encode())
        _add(tf, "etc/x", data=b"to be removed\n")
        _add(tf, "tmp", kind=tarfile.DIRTYPE, mode=0o1777)
        _add(tf, "home", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tf, "var", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tf, "var/lib", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tf, "var/lib/data", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tf, "var/lib/data/keep", data=b"old\n")
    return path


def layer_names(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tf:
        return {m.name: m for m in tf.getmembers()}
