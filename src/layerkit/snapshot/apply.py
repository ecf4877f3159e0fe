"""Unpacks an OCI layer tar into a snapshot directory, safely.

The tar is untrusted (it comes from a registry). Every member name is checked
and every path is resolved inside the destination (`scope.resolve_in_root`),
so nothing is ever written outside it, even through a symlink the same tar
planted earlier (the CVE-2019-14271 / "tar-slip" class). The rules are listed
in docs/executor.md; in short:

* absolute names lose their leading '/'; names that climb above the root with
  '..' and hardlinks whose target does are refused with a BuildError;
* symlinks are created as they are (they are data) but never followed out of
  the root while unpacking;
* char/block device nodes are skipped with a warning: the only device nodes we
  ever create are overlay whiteouts (char 0/0) converted from ``.wh.`` names;
* duplicate names: the last entry wins, as with Docker;
* whiteouts become overlay whiteouts / opaque xattrs (``whiteouts="overlay"``,
  for an upperdir) or are applied by deleting (``whiteouts="delete"``, for the
  naive snapshotter, where the destination already holds the parent's files).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, Literal

from layerkit.errors import BuildError
from layerkit.fastclass import dataclass, field
from layerkit.snapshot.scope import ScopeError, clean, escapes, resolve_in_root

WH_PREFIX = ".wh."
WH_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_CHUNK = 1 << 20

Whiteouts = Literal["overlay", "delete"]


@dataclass
class ApplyResult:
    """What an unpack did: member count and the warnings it raised."""

    entries: int = 0
    warnings: list[str] = field(default_factory=list)


def open_layer(source: BinaryIO) -> tarfile.TarFile:
    """Open a layer tar for streaming, uncompressed, gzip or zstd (by magic)."""
    buffered = source if isinstance(source, io.BufferedReader) else io.BufferedReader(
        _Raw(source))
    magic = buffered.peek(4)[:4]
    if magic[:2] == b"\x1f\x8b":
        return tarfile.open(fileobj=buffered, mode="r|gz")
    if magic == b"\x28\xb5\x2f\xfd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(buffered)
        return tarfile.open(fileobj=reader, mode="r|")
    return tarfile.open(fileobj=buffered, mode="r|")


class _Raw(io.RawIOBase):
    """Adapts any binary file object so BufferedReader can peek at its magic."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def apply_layer(
    source: Path | BinaryIO,
    dest: Path,
    *,
    whiteouts: Whiteouts,
    lowers: Sequence[Path] = (),
    on_warning: Callable[[str], None] | None = None,
) -> ApplyResult:
    """Unpack the layer ``source`` into ``dest``.

    ``lowers`` (top first) are the parent layers' directories in overlay mode:
    they give metadata to parent directories the tar does not list, and let a
    hardlink refer to a file from an earlier layer (it is copied up first).
    """
    unpacker = _Unpacker(dest, whiteouts, list(lowers), on_warning)
    with contextlib.ExitStack() as stack:
        fh = stack.enter_context(open(source, "rb")) if isinstance(source, Path) else source
        tf = stack.enter_context(open_layer(fh))
        for member in tf:
            unpacker.entry(tf, member)
    unpacker.finish()
    return unpacker.result


def _fail(member: str, problem: str, hint: str) -> BuildError:
    return BuildError(
        f"unsafe layer entry {member!r}: {problem}", hint=hint, reference="layer-unsafe"
    )


class _Unpacker:
    def __init__(
        self,
        dest: Path,
        whiteouts: Whiteouts,
        lowers: list[Path],
        on_warning: Callable[[str], None] | None,
    ) -> None:
        self.dest = dest
        self.whiteouts = whiteouts
        self.lowers = lowers
        self.on_warning = on_warning
        self.result = ApplyResult()
        self.unpacked: set[str] = set()
        self.dir_times: list[tuple[str, int]] = []
        self.is_root = os.geteuid() == 0

    def warn(self, text: str) -> None:
        self.result.warnings.append(text)
        if self.on_warning is not None:
            self.on_warning(text)

    # -- dispatch ---------------------------------------------------------

    def entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        self.result.entries += 1
        if escapes(m.name):
            raise _fail(m.name, "its path climbs out of the layer root with '..'",
                        "the image layer is malformed or malicious; do not use it")
        rel = clean(m.name)
        if rel == "":
            return  # the root directory itself keeps the snapshot's metadata
        parent, base = posixpath.split(rel)
        try:
            if base.startswith(WH_PREFIX):
                self.whiteout(m.name, parent, base)
                return
            if m.ischr() or m.isblk():
                self.warn(f"skipped device node {m.name!r} in layer (devices are not unpacked)")
                return
            if m.issparse():
                # Expanding a sparse entry writes its holes as zeros: a 512-byte
                # entry could fill the disk. Registries' layers never hold them.
                raise _fail(m.name, "GNU/PAX sparse entries are not supported",
                            "re-create the layer without sparse files (tar without -S)")
            if not (m.isreg() or m.isdir() or m.issym() or m.islnk() or m.isfifo()):
                self.warn(f"skipped {m.name!r}: unsupported tar entry type {m.type!r}")
                return
            host_parent = self.ensure_dir(parent)
            path = host_parent / base
            self.replace_existing(path, m.isdir())
            self.create(tf, m, path)
        except ScopeError as exc:
            raise _fail(m.name, str(exc), "the layer has a symlink loop") from exc
        except NotADirectoryError as exc:
            raise _fail(m.name, f"a parent is not a directory ({exc.filename})",
                        "the layer replaces a directory with a file it then writes into") from exc
        self.unpacked.add(rel)

    # -- paths --------------------------------------------------------------

    def ensure_dir(self, rel: str) -> Path:
        """The host directory for ``rel``, created (in scope) when missing."""
        host = resolve_in_root(self.dest, rel, follow_final=True)
        if host.is_dir() and not host.is_symlink():
            return host
        relative = host.relative_to(self.dest)
        current = self.dest
        for part in relative.parts:
            current = current / part
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                os.mkdir(current, 0o755)
                self.copy_lower_dir_meta(current)
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(current))
        return current

    def copy_lower_dir_meta(self, path: Path) -> None:
        """A parent directory created in an upperdir takes the lower one's
        mode and owner, as an overlay copy-up would (else /tmp loses 1777)."""
        rel = str(path.relative_to(self.dest))
        for lower in self.lowers:
            try:
                st = os.lstat(lower / rel)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if self.is_root:
                    os.lchown(path, st.st_uid, st.st_gid)
                os.chmod(path, stat.S_IMODE(st.st_mode))
            return

    def replace_existing(self, path: Path, new_is_dir: bool) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if new_is_dir:
                return  # keep the directory and its contents; metadata is updated
            shutil.rmtree(path)
        else:
            os.unlink(path)

    # -- creation -----------------------------------------------------------

    def create(self, tf: tarfile.TarFile, m: tarfile.TarInfo, path: Path) -> None:
        if m.isdir():
            if not path.exists():
                os.mkdir(path, 0o700)
        elif m.isreg():
            self.write_file(tf, m, path)
        elif m.issym():
            os.symlink(m.linkname, path)
        elif m.islnk():
            self.hardlink(m, path)
            return  # a hardlink shares its target's inode and metadata
        elif m.isfifo():
            os.mkfifo(path, 0o600)
        self.set_metadata(m, path)

    def write_file(self, tf: tarfile.TarFile, m: tarfile.TarInfo, path: Path) -> None:
        src = tf.extractfile(m)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "wb") as out:
            if src is not None:
                shutil.copyfileobj(src, out, _CHUNK)

    def hardlink(self, m: tarfile.TarInfo, path: Path) -> None:
        if escapes(m.linkname):
            raise _fail(m.name, f"hardlink target {m.linkname!r} is outside the layer root",
                        "the image layer is malformed or malicious; do not use it")
        target_rel = clean(m.linkname)
        target = resolve_in_root(self.dest, target_rel)
        if not os.path.lexists(target):
            target = self.copy_up(m.name, target_rel)
        if os.path.isdir(target) and not os.path.islink(target):
            raise _fail(m.name, f"hardlink to directory {m.linkname!r}",
                        "directories cannot be hardlinked; the layer is malformed")
        os.link(target, path, follow_symlinks=False)

    def copy_up(self, member: str, rel: str) -> Path:
        """Bring a hardlink's target from a lower layer into this one."""
        for lower in self.lowers:
            src = resolve_in_root(lower, rel)
            if os.path.lexists(src):
                parent, base = posixpath.split(rel)
                dst = self.ensure_dir(parent) / base
                shutil.copy2(src, dst, follow_symlinks=False)
                st = os.lstat(src)
                if self.is_root:
                    os.lchown(dst, st.st_uid, st.st_gid)
                    if not stat.S_ISLNK(st.st_mode):
                        os.chmod(dst, stat.S_IMODE(st.st_mode))
                return dst
        raise _fail(member, "hardlink target does not exist in this or an earlier layer",
                    "the layer is malformed: a hardlink must follow the file it links to")

    def set_metadata(self, m: tarfile.TarInfo, path: Path) -> None:
        link = m.issym()
        if self.is_root:
            os.lchown(path, m.uid, m.gid)
        if not link:
            # chmod after chown: chown clears the setuid/setgid bits.
            os.chmod(path, m.mode & 0o7777)
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                self.set_xattr(m.name, path, key[len("SCHILY.xattr."):], value)
        if m.isdir():
            self.dir_times.append((str(path.relative_to(self.dest)), int(m.mtime)))
        else:
            ns = int(m.mtime) * 1_000_000_000
            os.utime(path, ns=(ns, ns), follow_symlinks=False)

    def set_xattr(self, member: str, path: Path, name: str, value: str) -> None:
        if name.startswith("trusted.overlay."):
            self.warn(f"ignored overlay xattr {name} on {member!r} (layers may not set it)")
            return
        try:
            os.setxattr(path, name, value.encode("utf-8", "surrogateescape"),
                        follow_symlinks=False)
        except OSError as exc:
            self.warn(f"could not set xattr {name} on {member!r}: {exc.strerror}")

    # -- whiteouts ----------------------------------------------------------

    def whiteout(self, member: str, parent: str, base: str) -> None:
        if base == WH_OPAQUE:
            directory = self.ensure_dir(parent)
            if self.whiteouts == "overlay":
                os.setxattr(directory, OPAQUE_XATTR, b"y", follow_symlinks=False)
            else:
                for child in os.listdir(directory):
                    if posixpath.join(parent, child) not in self.unpacked:
                        _remove(directory / child)
            return
        if base.startswith(WH_PREFIX + WH_PREFIX):
            return  # other aufs metadata (.wh..wh.plnk, ...) has no meaning here
        name = base[len(WH_PREFIX):]
        if name in ("", ".", "..") or "/" in name:
            raise _fail(member, "whiteout with an invalid name",
                        "the image layer is malformed; rebuild or re-pull it")
        rel = posixpath.join(parent, name)
        if rel in self.unpacked:
            return  # the same layer also adds it: the addition wins
        if self.whiteouts == "delete":
            target = resolve_in_root(self.dest, rel)
            if os.path.lexists(target):
                _remove(target)
            return
        path = self.ensure_dir(parent) / name
        if os.path.lexists(path):
            _remove(path)
        os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))

    def finish(self) -> None:
        # Directory mtimes last: creating their children changed them. Paths are
        # resolved again: a later entry may have replaced a parent by a symlink.
        for rel, mtime in reversed(self.dir_times):
            path = resolve_in_root(self.dest, rel)
            try:
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    continue
            except (FileNotFoundError, NotADirectoryError):
                continue
            ns = mtime * 1_000_000_000
            os.utime(path, ns=(ns, ns), follow_symlinks=False)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        os.unlink(path)
