"""New files and directories under unique names, created exclusively.

What ``tempfile.mkstemp`` and ``mkdtemp`` do for the store's hot paths (every step
writes a marker, a staging directory and blobs), without importing ``tempfile``
and ``random`` (~3 ms of every CLI build). Names are ``<prefix><12 hex><suffix>``
from ``os.urandom``; creation uses ``O_EXCL`` / ``mkdir``, so two processes never
share one, and the modes are ``tempfile``'s (0600 files, 0700 directories).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["create_dir", "create_file"]

_ATTEMPTS = 100


def create_file(directory: Path, prefix: str, suffix: str = "") -> tuple[int, Path]:
    """A new empty file in ``directory``: (open read-write descriptor, path)."""
    for _ in range(_ATTEMPTS):
        path = directory / f"{prefix}{os.urandom(6).hex()}{suffix}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        return fd, path
    raise FileExistsError(f"no unused name for {prefix}* in {directory}")


def create_dir(directory: Path, prefix: str) -> Path:
    """A new empty directory in ``directory``."""
    for _ in range(_ATTEMPTS):
        path = directory / f"{prefix}{os.urandom(6).hex()}"
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no unused name for {prefix}* in {directory}")
