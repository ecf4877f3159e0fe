"""Extracts a local tar archive for ``ADD``, as moby's ``chrootarchive.Untar`` does.

Detection is by content, never by name: gzip, bzip2, xz and zstd streams are
decompressed and the first 512 bytes must be a valid tar header (an empty or
corrupt tar is therefore copied as a plain file, like Docker).

Safety, with the extraction directory treated as the root (moby chroots into
it before unpacking):

* member names lose a leading '/'; a name that climbs above the root with
  '..' is refused, and so is a hardlink whose target does;
* a relative symlink whose target climbs out of the extraction directory is
  refused ("breakout"); absolute targets are data and kept;
* every member path is resolved in scope (``snapshot.scope.resolve_in_root``),
  so a symlink planted by an earlier member can never redirect a write
  outside the root;
* device nodes are never created (skipped with a warning; docs/reliability.md
  says why), sparse entries are refused, sockets and unknown types are skipped
  with a warning;
* ``.wh.`` names are ordinary files here (ADD is not a layer).

Ownership is the tar's uid/gid, or the ``--chown`` owner for every entry;
directories implied by a member but missing from the tar are created 0755 and
owned by that owner (or 0:0). Times come from the tar (clamped to
SOURCE_DATE_EPOCH when set); directory times are set last.
"""

from __future__ import annotations

import bz2
import contextlib
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final, Literal

from layerkit.fileops.errors import FileOpError
from layerkit.fileops.owner import Owner
from layerkit.fileops.result import FileOpResult
from layerkit.snapshot.scope import ScopeError, clean, escapes, resolve_in_root

Compression = Literal["gzip", "bzip2", "xz", "zstd", "none"]

_MAGICS: Final[tuple[tuple[bytes, Compression], ...]] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_CHUNK: Final = 1 << 20


@contextlib.contextmanager
def open_decompressed(path: Path, kind: Compression) -> Iterator[IO[bytes]]:
    """``path``'s bytes after undoing ``kind`` of compression."""
    stream: Any  # the decompressors' file types share no declared base class
    with open(path, "rb") as raw:
        if kind == "gzip":
            try:
                from isal import igzip

                stream = igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[no-untyped-call]
            except ImportError:  # pragma: no cover - isal is a declared dependency
                import gzip

                stream = gzip.GzipFile(fileobj=raw, mode="rb")
        elif kind == "bzip2":
            stream = bz2.BZ2File(raw, "rb")
        elif kind == "xz":
            stream = lzma.LZMAFile(raw, "rb")  # noqa: SIM115 - closed by the with below
        elif kind == "zstd":
            import zstandard

            stream = zstandard.ZstdDecompressor().stream_reader(raw)
        else:
            stream = raw
        with stream:
            yield stream


def _read_full(stream: IO[bytes], size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def detect_archive(path: Path) -> Compression | None:
    """The compression of a tar archive at ``path``, or None if it is not one."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError:
        return None
    kind: Compression = "none"
    for prefix, name in _MAGICS:
        if magic.startswith(prefix):
            kind = name
            break
    try:
        with open_decompressed(path, kind) as stream:
            header = _read_full(stream, tarfile.BLOCKSIZE)
        tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
    except (tarfile.HeaderError, OSError, EOFError, ValueError, lzma.LZMAError):
        return None
    except Exception as exc:  # zstandard raises its own error type
        if type(exc).__module__.startswith("zstandard"):
            return None
        raise
    return kind


def _fail(archive: str, member: str, problem: str) -> FileOpError:
    return FileOpError(
        f"ADD {archive}: unsafe archive entry {member!r}: {problem}",
        hint="the archive would write outside the destination; fix the archive, or "
        "use COPY (or ADD --unpack=false) to add it without extracting",
        reference="add-archive-unsafe",
    )


class _Extractor:
    def __init__(
        self, root: Path, name: str, owner: Owner | None, epoch: int | None,
        result: FileOpResult,
    ) -> None:
        self.root = root
        self.name = name
        self.owner = owner
        self.epoch = epoch
        self.result = result
        self.dir_times: list[tuple[Path, int]] = []
        self.is_root = os.geteuid() == 0

    def parent_dir(self, member: str, rel: str) -> Path:
        """Host directory for ``rel`` inside the root, created 0755 when missing."""
        host = resolve_in_root(self.root, rel, follow_final=True)
        current = self.root
        for part in host.relative_to(self.root).parts:
            current = current / part
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                os.mkdir(current, 0o755)
                os.chmod(current, 0o755)
                uid, gid = (self.owner.uid, self.owner.gid) if self.owner else (0, 0)
                self.chown(current, uid, gid)
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise _fail(self.name, member, f"a parent ({part}) is not a directory")
        return current

    def chown(self, path: Path, uid: int, gid: int) -> None:
        try:
            os.chown(path, uid, gid, follow_symlinks=False)
        except PermissionError:
            self.result.warn(f"could not set owner {uid}:{gid} (not running as root)")

    def entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        if escapes(m.name):
            raise _fail(self.name, m.name, "its path climbs out of the destination with '..'")
        rel = clean(m.name)
        if rel == "" or posixpath.basename(rel).startswith(".wh..wh."):
            return  # the root keeps its metadata; aufs metadata is skipped like moby
        parent_rel, base = posixpath.split(rel)
        if m.issym() and not m.linkname.startswith("/") and escapes(
                posixpath.join(parent_rel, m.linkname)):
            raise _fail(self.name, m.name,
                            f"symlink target {m.linkname!r} points outside the destination")
        if m.ischr() or m.isblk():
            # Never created, even as root: a 0666 node for the host's disk in a
            # snapshot would be readable by anyone who can reach the store.
            self.result.warn(f"skipped device node {m.name!r} in {self.name} "
                             "(device nodes are not extracted)")
            return
        if m.issparse():
            raise _fail(self.name, m.name, "sparse entries are not supported (expanding "
                        "their holes could fill the disk); re-create the archive without -S")
        if not (m.isreg() or m.isdir() or m.issym() or m.islnk() or m.isfifo()):
            self.result.warn(f"skipped {m.name!r} in {self.name}: unsupported type {m.type!r}")
            return
        try:
            path = self.parent_dir(m.name, parent_rel) / base
        except ScopeError as exc:
            raise _fail(self.name, m.name, str(exc)) from exc
        self.replace(path, m.isdir())
        self.create(tf, m, path)
        self.result.entries += 1

    def replace(self, path: Path, new_is_dir: bool) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if not new_is_dir:
                shutil.rmtree(path)
        else:
            os.unlink(path)

    def create(self, tf: tarfile.TarFile, m: tarfile.TarInfo, path: Path) -> None:
        if m.isdir():
            if not path.exists():
                os.mkdir(path, 0o700)
        elif m.isreg():
            src = tf.extractfile(m)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                if src is not None:
                    shutil.copyfileobj(src, out, _CHUNK)
        elif m.issym():
            os.symlink(m.linkname, path)
        elif m.islnk():
            if escapes(m.linkname):
                raise _fail(self.name, m.name,
                            f"hardlink target {m.linkname!r} is outside the destination")
            target = resolve_in_root(self.root, clean(m.linkname))
            if not os.path.lexists(target) or (os.path.isdir(target)
                                               and not os.path.islink(target)):
                raise _fail(self.name, m.name,
                            f"hardlink target {m.linkname!r} is not an earlier file entry")
            os.link(target, path, follow_symlinks=False)
            return  # shares the target's inode and metadata
        elif m.isfifo():
            os.mkfifo(path, 0o600)
        uid, gid = (self.owner.uid, self.owner.gid) if self.owner else (m.uid, m.gid)
        self.chown(path, uid, gid)
        if not m.issym():
            os.chmod(path, m.mode & 0o7777)  # after chown, which clears setuid/setgid
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr.") and not key.startswith(
                    "SCHILY.xattr.trusted.overlay."):
                name = key[len("SCHILY.xattr."):]
                try:
                    os.setxattr(path, name, value.encode("utf-8", "surrogateescape"),
                                follow_symlinks=False)
                except OSError as exc:
                    self.result.warn(f"could not set xattr {name} on {m.name!r}: "
                                     f"{exc.strerror}")
        mtime = int(m.mtime)
        if self.epoch is not None:
            mtime = min(mtime, self.epoch)
        if m.isdir():
            self.dir_times.append((path, mtime))
        else:
            os.utime(path, ns=(mtime * 10**9, mtime * 10**9), follow_symlinks=False)

    def finish(self) -> None:
        for path, mtime in reversed(self.dir_times):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                if stat.S_ISDIR(os.lstat(path).st_mode):
                    os.utime(path, ns=(mtime * 10**9, mtime * 10**9), follow_symlinks=False)


def extract_archive(
    archive: Path, kind: Compression, dest: Path, *, display: str, owner: Owner | None,
    epoch: int | None, result: FileOpResult,
) -> None:
    """Unpack ``archive`` (compressed as ``kind``) into the existing directory ``dest``."""
    ex = _Extractor(dest, display, owner, epoch, result)
    try:
        with open_decompressed(archive, kind) as stream, tarfile.open(
            fileobj=stream, mode="r|", errors="surrogateescape"
        ) as tf:
            for member in tf:
                ex.entry(tf, member)
    except (tarfile.TarError, EOFError, lzma.LZMAError) as exc:
        raise FileOpError(
            f"ADD {display}: the archive is corrupt: {exc}",
            hint="check the file (tar -tf), or use ADD --unpack=false to add it as it is",
            reference="add-archive-corrupt",
        ) from exc
    ex.finish()
