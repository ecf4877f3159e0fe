"""Writes deterministic tar archives (image archives and flattened root filesystems).

Every entry gets fixed metadata: uid/gid 0, no user/group names, mode 0644 for
files and 0755 for directories, and one mtime, which is ``SOURCE_DATE_EPOCH``
when set and 0 otherwise. Entry order is the caller's, so callers sort.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from layerkit.content.errors import ExportError


def source_date_epoch(environ: Mapping[str, str] | None = None) -> int | None:
    """``SOURCE_DATE_EPOCH`` as an int, None when unset; raise on garbage."""
    value = (os.environ if environ is None else environ).get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return None
    try:
        epoch = int(value)
    except ValueError:
        raise ExportError(
            f"SOURCE_DATE_EPOCH={value!r} is not an integer",
            hint="set it to seconds since 1970, e.g. $(git log -1 --format=%ct)",
        ) from None
    if epoch < 0:
        raise ExportError(f"SOURCE_DATE_EPOCH={value!r} is negative")
    return epoch


class ArchiveWriter:
    """Append-only deterministic tar writer over a binary file object."""

    def __init__(self, fileobj: IO[bytes], mtime: int | None = None) -> None:
        self.mtime = 0 if mtime is None else mtime
        self._tar = tarfile.TarFile(fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT)
        self._dirs: set[str] = set()

    def _info(self, name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.size = size
        info.mtime = self.mtime
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def add_dir(self, name: str) -> None:
        name = name.rstrip("/")
        if name in self._dirs:
            return
        self._dirs.add(name)
        self._tar.addfile(self._info(name + "/", tarfile.DIRTYPE, 0o755))

    def add_parents(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.add_dir("/".join(parts[:i]))

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add_parents(name)
        self._tar.addfile(self._info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))

    def add_file(self, name: str, path: Path) -> None:
        self.add_parents(name)
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self._tar.addfile(self._info(name, tarfile.REGTYPE, 0o644, size), f)

    def add_member(self, info: tarfile.TarInfo, data: IO[bytes] | None = None) -> None:
        """Add a prepared entry verbatim (used for root filesystem tars)."""
        self._tar.addfile(info, data)

    def close(self) -> None:
        self._tar.close()
