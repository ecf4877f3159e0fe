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
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from layerkit.fastclass import dataclass, field

OVERLAY_XATTR_PREFIX = "trusted.overlay."


# A regular-file entry of a layer: where its bytes are (header block(s) to the end of
# the padding) and what its header says. Kept so an incremental COPY can copy it into
# the next layer without parsing this one again (see LayerReuse).
EntryRecord = tuple[int, int, int, int, int, int, int, dict[str, str]]
# offset, length, mode, uid, gid, mtime, size, xattrs


@dataclass(frozen=True)
class DiffResult:
    """The layer tar written: ``diff_id`` is "sha256:<hex>" of its bytes; ``entries``
    its regular files (not hardlinks) by name."""

    path: Path
    diff_id: str
    size: int
    entries: dict[str, EntryRecord] = field(default_factory=dict, compare=False, repr=False)
    count: int = 0  # entries written (0: an empty layer)


class _HashingFile:
    """A write-only file object that hashes and counts what passes through."""

    def __init__(self, fh: os.PathLike[str] | str) -> None:
        self._fh = open(fh, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in close()
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


def read_xattrs(path: str | Path) -> dict[str, bytes]:
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


_XATTR_PAX = "SCHILY.xattr."


@dataclass(frozen=True)
class _OldEntry:
    offset: int  # where its first header block starts (a PAX header included)
    length: int  # headers + data + padding
    header: tuple[int, int, int, int, int]  # mode, uid, gid, mtime, size
    xattrs: dict[str, str]


class LayerReuse:
    """An earlier layer tar whose regular-file entries may be copied byte for byte.

    An entry is copied only when the file now being written is the **same inode** as
    the file the old layer was made from (``old_fs``, a committed snapshot's own files,
    hardlinked into the new snapshot) and its name, mode, owner, clamped mtime, size and
    xattrs equal the old header's: the header bytes are a function of exactly those, and
    the data is that inode's content, so the bytes are those a fresh ``add`` writes.
    """

    def __init__(self, blob: Path, old_fs: Path,
                 entries: Mapping[str, EntryRecord] | None = None) -> None:
        """``entries``: the old layer's :attr:`DiffResult.entries`, when kept; otherwise
        the layer is parsed to find them."""
        self.blob = blob
        self.old_fs = old_fs
        self.spliced = 0  # entries copied (for tests and the worker's report)
        self._index: dict[str, _OldEntry] | None = None
        if entries is not None:
            self._index = {name: _OldEntry(e[0], e[1], (e[2], e[3], e[4], e[5], e[6]), e[7])
                           for name, e in entries.items()}
        self._fh: BinaryIO | None = None

    def _entries(self) -> dict[str, _OldEntry]:
        if self._index is None:
            index: dict[str, _OldEntry] = {}
            with tarfile.open(self.blob) as tar:
                for m in tar:
                    if not m.isreg():
                        continue
                    end = m.offset_data + -(-m.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
                    xattrs = {k[len(_XATTR_PAX):]: v for k, v in m.pax_headers.items()
                              if k.startswith(_XATTR_PAX)}
                    index[m.name] = _OldEntry(m.offset, end - m.offset,
                                              (m.mode, m.uid, m.gid, int(m.mtime), m.size),
                                              xattrs)
            self._index = index
        return self._index

    def span(self, name: str, path: str | Path, st: os.stat_result,
             mtime: int) -> tuple[int, int] | None:
        """(offset, length) of the old bytes for this entry, or None: encode it afresh."""
        old = self._entries().get(name)
        if old is None or old.header != (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                                          mtime, st.st_size):
            return None
        try:
            ost = os.lstat(self.old_fs / name)
        except OSError:
            return None
        if (ost.st_dev, ost.st_ino) != (st.st_dev, st.st_ino):
            return None
        xattrs = {k: v.decode("utf-8", "surrogateescape")
                  for k, v in read_xattrs(path).items()}
        if xattrs != old.xattrs:
            return None
        return old.offset, old.length

    def entry(self, name: str) -> _OldEntry:
        return self._entries()[name]

    def read(self, offset: int, length: int) -> bytes:
        if self._fh is None:
            self._fh = open(self.blob, "rb")  # noqa: SIM115 - closed in close()
        return os.pread(self._fh.fileno(), length, offset)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


_NUL_BLOCK = bytes(tarfile.BLOCKSIZE)
# uid/gid fit 7 octal digits, size and mtime 11: beyond that tarfile adds PAX records.
_MAX_ID = 8 ** 7
_MAX_11 = 8 ** 11


def ustar_header(name: str, mode: int, uid: int, gid: int, size: int, mtime: int,
                 typeflag: bytes, linkname: str = "") -> bytes | None:
    """The header block ``tarfile`` writes in PAX format for an entry that needs no
    PAX record (ASCII names that fit, small ids, no xattrs, not a device), or None.

    The bytes are tarfile's own (tests/unit/test_tarwriter_headers.py compares them);
    building them directly skips its per-entry ``copy``, dict and PAX checks, which
    were most of the cost of writing a layer of many small files.
    """
    if (len(name) > 100 or len(linkname) > 100 or not name.isascii()
            or not linkname.isascii() or not 0 <= uid < _MAX_ID or not 0 <= gid < _MAX_ID
            or not 0 <= size < _MAX_11 or not 0 <= mtime < _MAX_11):
        return None
    block = bytearray(tarfile.BLOCKSIZE)
    raw = name.encode("ascii")
    block[0:len(raw)] = raw
    block[100:108] = b"%07o\0" % (mode & 0o7777)
    block[108:116] = b"%07o\0" % uid
    block[116:124] = b"%07o\0" % gid
    block[124:136] = b"%011o\0" % size
    block[136:148] = b"%011o\0" % mtime
    block[148:156] = b"        "  # the checksum counts its own field as spaces
    block[156:157] = typeflag
    link = linkname.encode("ascii")
    block[157:157 + len(link)] = link
    block[257:265] = tarfile.POSIX_MAGIC
    checksum = sum(block)
    block[148:155] = b"%06o\0" % checksum
    return bytes(block)


class LayerWriter:
    """Context manager: ``add`` entries, then the result is in ``.result``.

    Headers of ordinary entries are encoded by :func:`ustar_header`; the rest (long
    or non-ASCII names, xattrs, devices) by ``tarfile.TarInfo.tobuf``: either way
    the bytes of ``tarfile.open(mode="w|", format=PAX_FORMAT)``.
    """

    def __init__(self, out: Path, source_date_epoch: int | None = None,
                 reuse: LayerReuse | None = None, *, record_entries: bool = False) -> None:
        """``record_entries``: fill :attr:`DiffResult.entries` (an incremental COPY keeps
        them); off by default, a RUN layer can hold 100,000 files."""
        self.out = out
        self.record_entries = record_entries
        self.reuse = reuse
        self.epoch = source_date_epoch
        self._tmp = out.with_name(out.name + ".tmp")
        self._file = _HashingFile(self._tmp)
        self._offset = 0  # bytes of the archive so far, spliced ones not yet copied included
        self._pending: tuple[int, int] | None = None  # a run of old bytes still to copy
        self._links: dict[tuple[int, int], str] = {}
        self._entries: dict[str, EntryRecord] = {}
        self._count = 0
        self.result: DiffResult | None = None

    def __enter__(self) -> LayerWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.reuse is not None:
            self.reuse.close()
        if exc_type is None:
            self._finish()
            self._file.close()
            os.replace(self._tmp, self.out)
            digest = "sha256:" + self._file.sha.hexdigest()
            self.result = DiffResult(self.out, digest, self._file.size, self._entries,
                                     self._count)
        else:
            self._file.close()
            self._tmp.unlink(missing_ok=True)

    def _write(self, data: bytes) -> None:
        if self._pending is not None:
            self._copy_pending()
        self._file.write(data)
        self._offset += len(data)

    def _copy_pending(self) -> None:
        assert self._pending is not None and self.reuse is not None
        offset, length = self._pending
        self._pending = None
        while length > 0:
            chunk = self.reuse.read(offset, min(length, 1 << 20))
            if not chunk:
                raise OSError(f"{self.reuse.blob}: truncated layer")
            self._file.write(chunk)
            offset += len(chunk)
            length -= len(chunk)

    def _finish(self) -> None:
        """The end of the archive as ``TarFile.close`` writes it: two zero blocks, then
        zeros up to a whole record."""
        self._write(_NUL_BLOCK * 2)
        remainder = self._offset % tarfile.RECORDSIZE
        if remainder:
            self._write(bytes(tarfile.RECORDSIZE - remainder))

    def _header(self, info: tarfile.TarInfo) -> None:
        self._count += 1
        fast = None
        if not info.pax_headers and info.type not in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            name = info.name + "/" if info.type == tarfile.DIRTYPE and not info.name.endswith(
                "/") else info.name
            fast = ustar_header(name, info.mode, info.uid, info.gid, info.size,
                                int(info.mtime), info.type, info.linkname)
        self._write(fast if fast is not None else info.tobuf(
            tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _data(self, path: str | Path, size: int) -> None:
        """The file's bytes, then zeros to a whole block; exactly ``size`` bytes, as
        tarfile insists (a file that shrank meanwhile is an error, not a short entry)."""
        left = size
        with open(path, "rb", buffering=0) as fh:
            while left:
                chunk = fh.read(min(left, 1 << 20))
                if not chunk:
                    raise OSError(f"{path}: unexpected end of data (the file changed while "
                                  "its layer was written)")
                self._write(chunk)
                left -= len(chunk)
        remainder = size % tarfile.BLOCKSIZE
        if remainder:
            self._write(bytes(tarfile.BLOCKSIZE - remainder))

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

    def add(self, name: str, path: str | Path, st: os.stat_result) -> None:
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
                self._header(info)
                return
            if st.st_nlink > 1:
                self._links[key] = name
            if self.reuse is not None and self._splice(name, path, st, int(info.mtime)):
                return
            info.size = st.st_size
            start = self._offset
            self._header(info)
            self._data(path, st.st_size)
            if self.record_entries:
                self._entries[name] = (start, self._offset - start, info.mode, info.uid, info.gid,
                                       int(info.mtime), info.size,
                                       {k[len(_XATTR_PAX):]: v
                                        for k, v in info.pax_headers.items()})
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
        self._header(info)

    def _splice(self, name: str, path: str | Path, st: os.stat_result, mtime: int) -> bool:
        """Copy this entry's bytes from the reused layer, when they are the same."""
        assert self.reuse is not None
        span = self.reuse.span(name, path, st, mtime)
        if span is None:
            return False
        offset, length = span  # the entry's header, data and padding, already encoded
        self._count += 1
        if self.record_entries:
            old = self.reuse.entry(name)
            self._entries[name] = (self._offset, length, *old.header, old.xattrs)
        # Entries that follow each other in the old layer are copied as one run.
        if self._pending is not None and sum(self._pending) == offset and \
                self._pending[1] + length <= 8 << 20:
            self._pending = (self._pending[0], self._pending[1] + length)
        else:
            if self._pending is not None:
                self._copy_pending()
            self._pending = (offset, length)
        self._offset += length
        self.reuse.spliced += 1
        return True

    def add_marker(self, name: str, mtime: float) -> None:
        """Add an empty ``.wh.*`` marker file (whiteout or opaque)."""
        info = tarfile.TarInfo(name)
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = self._mtime(mtime)
        self._header(info)
