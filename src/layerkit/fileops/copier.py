"""Copies one selected source entry (a file, link or whole tree) to a host path.

This is fsutil's ``copier`` in Python: ``os.scandir`` walks, file contents go
through ``os.copy_file_range`` (reflinks where the filesystem has them) with a
``sendfile`` fallback, and every entry gets its metadata in this order:
owner, mode (chown clears setuid/setgid), xattrs (chown also clears
security.capability), then times. Directories get theirs after their
children, because creating the children changes the directory's mtime.

Filters, all evaluated incrementally per directory level:

* ``ignore``: .dockerignore rules on paths relative to the context root (only
  for context copies); an ignored directory is still walked when a '!'
  pattern could re-include something below it, and is created only if it is;
* ``excludes``: ``--exclude`` patterns on paths relative to the copied source;
* ``includes``: ``--parents`` patterns on paths relative to the pivot.

Inside a copied tree symlinks are copied as links (dangling ones too) and
files sharing an inode are recreated as hardlinks to each other.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from typing import Final

from layerkit.context.dockerignore import IgnoreRules
from layerkit.context.patternmatcher import MatchInfo, PatternMatcher, has_wildcards
from layerkit.fastclass import dataclass, field
from layerkit.fileops.chmod import ModeSpec
from layerkit.fileops.errors import FileOpError
from layerkit.fileops.owner import Owner
from layerkit.fileops.result import FileOpResult

_CHUNK: Final = 1 << 30
_FALLBACK_ERRNOS: Final = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP,
                           errno.EBADF, errno.EPERM}
# Overlay's own bookkeeping and the host's labels are not file data.
_SKIPPED_XATTR_PREFIXES: Final = ("trusted.overlay.", "security.selinux", "user.overlay.")
_NOFOLLOW: Final = os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class CopyOptions:
    """How entries are written. ``context`` normalises uid/gid to 0 (context copies)."""

    owner: Owner | None = None
    context: bool = False
    mode: ModeSpec | None = None
    epoch: int | None = None
    ignore: IgnoreRules | None = None
    excludes: PatternMatcher | None = None
    includes: PatternMatcher | None = None
    include_prefixes: Sequence[tuple[tuple[str, ...], bool]] = field(default=())


@dataclass(frozen=True)
class _State:
    ignore: MatchInfo = ()
    exclude: MatchInfo = ()
    include: MatchInfo = ()


def include_prefixes(patterns: Sequence[str]) -> list[tuple[tuple[str, ...], bool]]:
    """Per include pattern: its literal leading components and whether more follows."""
    out = []
    for pattern in patterns:
        parts = pattern.strip("/").split("/")
        literal: list[str] = []
        for part in parts:
            if has_wildcards(part):
                break
            literal.append(part)
        out.append((tuple(literal), len(literal) < len(parts)))
    return out


def ignore_info(ignore: IgnoreRules | None, rel: str) -> MatchInfo:
    """The incremental match info of ``rel`` (so its children can be matched)."""
    info: MatchInfo = ()
    if not ignore or rel == "":
        return info
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        _, info = ignore.match_incremental("/".join(parts[:i]), info)
    return info


class Copier:
    """Copies entries for one action; remembers inodes so hardlinks stay hardlinks."""

    def __init__(self, options: CopyOptions, result: FileOpResult) -> None:
        self.opts = options
        self.result = result
        self.links: dict[tuple[int, int], str] = {}
        self.is_root = os.geteuid() == 0

    # -- entry points -----------------------------------------------------

    def copy(self, src: str, ctx_rel: str, dst: str) -> None:
        """Copy the entry at host path ``src`` (context path ``ctx_rel``) to ``dst``.

        An existing directory at ``dst`` keeps its own metadata (only directories
        below it take the source's), as BuildKit does for the copy target.
        """
        st = os.lstat(src)
        if stat.S_ISDIR(st.st_mode):
            state = _State(ignore=ignore_info(self.opts.ignore, ctx_rel))
            self._copy_dir(src, dst, st, "", ctx_rel, state, overwrite_meta=False,
                           descend_only=False)
        else:
            self._copy_leaf(src, dst, st)

    # -- filtering ----------------------------------------------------------

    def _decide(
        self, rel: str, ctx_rel: str, is_dir: bool, parent: _State
    ) -> tuple[str, _State]:
        """"keep", "descend" (walk a directory, create it only if something in it
        is kept) or "skip", with the state the entry's children start from."""
        o = self.opts
        verdict = "keep"
        ign, exc, inc = parent.ignore, parent.exclude, parent.include
        if o.ignore:
            hit, ign = o.ignore.match_incremental(ctx_rel, parent.ignore)
            if hit:
                if not (is_dir and o.ignore.may_reinclude_below(ctx_rel)):
                    return "skip", parent
                verdict = "descend"
        if o.excludes is not None:
            hit, exc = o.excludes.matches_using_parent_results(rel, parent.exclude)
            if hit:
                if not (is_dir and o.excludes.may_reinclude_below(rel)):
                    return "skip", parent
                verdict = "descend"
        if o.includes is not None:
            hit, inc = o.includes.matches_using_parent_results(rel, parent.include)
            if not hit:
                if not (is_dir and self._include_below(rel)):
                    return "skip", parent
                verdict = "descend"
        return verdict, _State(ign, exc, inc)

    def _include_below(self, rel: str) -> bool:
        parts = tuple(rel.split("/"))
        for literal, more in self.opts.include_prefixes:
            n = min(len(parts), len(literal))
            if parts[:n] == literal[:n] and (len(parts) < len(literal) or more):
                return True
        return False

    # -- directories ----------------------------------------------------------

    def _copy_dir(
        self, src: str, dst: str, st: os.stat_result, rel: str, ctx_rel: str, state: _State,
        *, overwrite_meta: bool, descend_only: bool,
    ) -> bool:
        try:
            dst_st: os.stat_result | None = os.lstat(dst)
        except FileNotFoundError:
            dst_st = None
        created = False
        if dst_st is None:
            os.mkdir(dst, 0o700)
            created = True
            self.result.entries += 1
        elif not stat.S_ISDIR(dst_st.st_mode):
            raise FileOpError(
                f"cannot copy to non-directory: {dst}",
                hint="the destination already holds a file or symlink where the source "
                "has a directory; remove it first (RUN rm) or copy to another path",
                reference="copy-dest-not-dir",
            )
        kept = False
        with os.scandir(src) as it:
            children = sorted(it, key=lambda e: e.name)
        for child in children:
            child_rel = f"{rel}/{child.name}" if rel else child.name
            child_ctx = f"{ctx_rel}/{child.name}" if ctx_rel else child.name
            child_st = child.stat(follow_symlinks=False)
            is_dir = stat.S_ISDIR(child_st.st_mode)
            verdict, child_state = self._decide(child_rel, child_ctx, is_dir, state)
            if verdict == "skip":
                continue
            child_dst = os.path.join(dst, child.name)
            if is_dir:
                kept |= self._copy_dir(child.path, child_dst, child_st, child_rel, child_ctx,
                                       child_state, overwrite_meta=True,
                                       descend_only=verdict == "descend")
            else:
                self._copy_leaf(child.path, child_dst, child_st)
                kept = True
        if descend_only and not kept and created:
            os.rmdir(dst)
            self.result.entries -= 1
            return False
        if created or overwrite_meta:
            self.set_meta(dst, st, is_dir=True, src=src)
        return True

    # -- files, links, special files ------------------------------------------

    def _copy_leaf(self, src: str, dst: str, st: os.stat_result) -> None:
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            self.result.warn(f"skipped socket {src}")
            return
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and not stat.S_ISDIR(mode) and key in self.links:
            _clear_for_file(dst)
            os.link(self.links[key], dst, follow_symlinks=False)
            self.result.entries += 1
            return
        _clear_for_file(dst)
        if stat.S_ISREG(mode):
            copy_file_content(src, dst)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(dst, 0o600)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            if not self.is_root:
                self.result.warn(f"skipped device node {src} (creating devices needs root)")
                return
            os.mknod(dst, stat.S_IFMT(mode) | 0o600, st.st_rdev)
        else:
            self.result.warn(f"skipped {src}: unsupported file type")
            return
        self.result.entries += 1
        if st.st_nlink > 1:
            self.links[key] = dst
        self.set_meta(dst, st, is_dir=False, src=src)

    # -- metadata ---------------------------------------------------------------

    def set_meta(self, dst: str, st: os.stat_result, *, is_dir: bool, src: str | None) -> None:
        """Owner, mode, xattrs and times of ``dst`` from ``st`` and the options."""
        o = self.opts
        is_link = stat.S_ISLNK(st.st_mode)
        if o.owner is not None:
            uid, gid = o.owner.uid, o.owner.gid
        elif o.context:
            uid, gid = 0, 0
        else:
            uid, gid = st.st_uid, st.st_gid
        self.chown(dst, uid, gid)
        if not is_link:
            mode = (o.mode.apply(st.st_mode, is_dir=is_dir) if o.mode is not None
                    else stat.S_IMODE(st.st_mode))
            os.chmod(dst, mode)
        if src is not None:
            self._copy_xattrs(src, dst)
        self.set_times(dst, st.st_atime_ns, st.st_mtime_ns)

    def chown(self, path: str, uid: int, gid: int) -> None:
        try:
            os.chown(path, uid, gid, follow_symlinks=False)
        except PermissionError:
            self.result.warn(f"could not set owner {uid}:{gid} (not running as root)")

    def set_times(self, path: str, atime_ns: int, mtime_ns: int) -> None:
        epoch = self.opts.epoch
        if epoch is not None:
            limit = epoch * 1_000_000_000
            atime_ns, mtime_ns = min(atime_ns, limit), min(mtime_ns, limit)
        os.utime(path, ns=(atime_ns, mtime_ns), follow_symlinks=False)

    def _copy_xattrs(self, src: str, dst: str) -> None:
        try:
            names = os.listxattr(src, follow_symlinks=False)
        except OSError:
            return  # the source filesystem has none
        for name in names:
            if name.startswith(_SKIPPED_XATTR_PREFIXES):
                continue
            try:
                value = os.getxattr(src, name, follow_symlinks=False)
                os.setxattr(dst, name, value, follow_symlinks=False)
            except OSError as exc:
                self.result.warn(f"could not copy xattr {name} to {dst}: {exc.strerror}")


def _clear_for_file(dst: str) -> None:
    """Make room for a non-directory at ``dst``: a file or link there is replaced."""
    try:
        st = os.lstat(dst)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise FileOpError(
            f"cannot replace directory {dst} with a file",
            hint="the destination holds a directory where the source has a file; copy to "
            "another path or remove the directory first",
            reference="copy-dest-is-dir",
        )
    os.unlink(dst)


def copy_file_content(src: str, dst: str) -> None:
    """Copy the bytes of ``src`` to a new file ``dst`` (mode 0600 until set_meta)."""
    sfd = os.open(src, os.O_RDONLY | _NOFOLLOW)
    try:
        dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        try:
            _copy_fd(sfd, dfd)
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def _copy_fd(sfd: int, dfd: int) -> None:
    if hasattr(os, "copy_file_range"):
        try:
            while os.copy_file_range(sfd, dfd, _CHUNK) > 0:
                pass
            return
        except OSError as exc:
            if exc.errno not in _FALLBACK_ERRNOS:
                raise
    # Offsets advanced by a partial copy_file_range are kept: continue from there.
    try:
        while os.sendfile(dfd, sfd, None, _CHUNK) > 0:
            pass
        return
    except OSError as exc:
        if exc.errno not in _FALLBACK_ERRNOS:
            raise
    while chunk := os.read(sfd, 1 << 20):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dfd, view):]
