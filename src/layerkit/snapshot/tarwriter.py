"""Writes filesystem entries as a deterministic OCI layer tar, hashing as it goes.

Entries are written in the order the caller gives (the differs walk in sorted
order). Headers carry numeric uid/gid only, no user or group names, integer
mtimes (clamped to SOURCE_DATE_EPOCH when given), and xattrs as PAX
``SCHILY.xattr.*`` records, so the same tree always gives the same bytes and
the same diff_id. The tar is written beside its destination and renamed into
place, so a crash never leaves a half-written layer under the final name.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

OVERLAY_XATTR_PREFIX = "trusted.overlay."


@dataclass(frozen=True)
class DiffResult:
    """The layer tar written: ``diff_id`` is "sha256:<hex>" of its bytes."""

    path: Path
    diff_id: str
    size: int


class _HashingFile:
    """A write-only file object that hashes and counts what passes through."""

    def __init__(self, fh: os.PathLike[str] | str) -> None:
        self._fh = open(fh, "wb")  # noqa: SIM115 - closed in close()
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self._fh.write(data)
        return len(data)

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


def read_xattrs(path: Path) -> dict[str, bytes]:
    """The xattrs a layer should carry (overlay's own bookkeeping removed)."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out: dict[str, bytes] = {}
    for name in sorted(names):
        if name.startswith(OVERLAY_XATTR_PREFIX):
            continue
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return out


class LayerWriter:
    """Context manager: ``add`` entries, then the result is in ``.result``."""

    def __init__(self, out: Path, source_date_epoch: int | None = None) -> None:
        self.out = out
        self.epoch = source_date_epoch
        self._tmp = out.with_name(out.name + ".tmp")
        self._file = _HashingFile(self._tmp)
        self._tar = tarfile.open(  # noqa: SIM115 - closed in __exit__
            fileobj=self._file, mode="w|", format=tarfile.PAX_FORMAT  # type: ignore[call-overload]
        )
        self._links: dict[tuple[int, int], str] = {}
        self.result: DiffResult | None = None

    def __enter__(self) -> LayerWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._tar.close()
            self._file.close()
            os.replace(self._tmp, self.out)
            digest = "sha256:" + self._file.sha.hexdigest()
            self.result = DiffResult(self.out, digest, self._file.size)
        else:
            self._file.close()
            self._tmp.unlink(missing_ok=True)

    def _mtime(self, mtime: float) -> int:
        value = int(mtime)
        if self.epoch is not None and value > self.epoch:
            return self.epoch
        return value

    def _info(self, name: str, st: os.stat_result) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = self._mtime(st.st_mtime)
        return info

    def add(self, name: str, path: Path, st: os.stat_result) -> None:
        """Add the entry at host ``path`` under tar ``name`` (no leading '/')."""
        info = self._info(name, st)
        xattrs = read_xattrs(path)
        if xattrs:
            info.pax_headers = {
                "SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape")
                for k, v in xattrs.items()
            }
        mode = st.st_mode
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self._links:
                info.type = tarfile.LNKTYPE
                info.linkname = self._links[key]
                self._tar.addfile(info)
                return
            if st.st_nlink > 1:
                self._links[key] = name
            info.size = st.st_size
            with open(path, "rb") as fh:
                self._tar.addfile(info, fh)
            return
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(path)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        else:
            return  # sockets and the like have no place in a layer
        self._tar.addfile(info)

    def add_marker(self, name: str, mtime: float) -> None:
        """Add an empty ``.wh.*`` marker file (whiteout or opaque)."""
        info = tarfile.TarInfo(name)
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = self._mtime(mtime)
        self._tar.addfile(info)
