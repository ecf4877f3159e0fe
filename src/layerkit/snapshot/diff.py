"""Turns a snapshot's changes into an OCI layer tar (see `tarwriter`).

Two differs:

* `diff_overlay` reads an overlay upperdir: a char device 0/0 is a deleted
  entry (written as ``.wh.<name>``), ``trusted.overlay.opaque=y`` marks a
  directory whose lower contents are hidden (``.wh..wh..opq``). A directory
  that only exists in the upperdir because overlay copied it up (same mode,
  owner, mtime and xattrs as below) is not written, as BuildKit does.
* `diff_naive` compares a full copy with its parent's full copy.

Both walk in sorted byte order, a directory before its children.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from layerkit.snapshot.tarwriter import DiffResult, LayerReuse, LayerWriter, read_xattrs

OPAQUE_XATTR = "trusted.overlay.opaque"


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


# Paths are plain strings below: a layer of a thousand files made ~4,000 Path objects.
PathLike = str | Path


def is_opaque(path: PathLike) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _children(path: PathLike) -> list[str]:
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return []
    return sorted(names, key=os.fsencode)


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def lower_stat(lowers: Sequence[PathLike], rel: str) -> os.stat_result | None:
    """Stat of ``rel`` in the merged view of ``lowers`` (top first), or None."""
    parts = rel.split("/")
    for lower in lowers:
        hidden_below = False
        current = os.fspath(lower)
        for i, part in enumerate(parts):
            current = f"{current}/{part}"
            try:
                st = os.lstat(current)
            except (FileNotFoundError, NotADirectoryError):
                break
            if is_whiteout(st):
                return None
            if i == len(parts) - 1:
                return st
            if not stat.S_ISDIR(st.st_mode):
                return None  # a file here hides anything below it
            if is_opaque(current):
                hidden_below = True
        if hidden_below:
            return None
    return None


def _same_dir(upper: PathLike, st: os.stat_result, low: os.stat_result | None,
              lower: PathLike) -> bool:
    if low is None or not stat.S_ISDIR(low.st_mode):
        return False
    return (
        st.st_mode == low.st_mode
        and st.st_uid == low.st_uid
        and st.st_gid == low.st_gid
        and st.st_mtime_ns == low.st_mtime_ns
        and read_xattrs(upper) == read_xattrs(lower)
    )


def diff_overlay(
    upper: Path,
    lowers: Sequence[Path],
    out: Path,
    *,
    source_date_epoch: int | None = None,
    reuse: LayerReuse | None = None,
    record_entries: bool = False,
) -> DiffResult:
    """Write the layer for ``upper`` (on top of ``lowers``, top first) to ``out``;
    ``reuse``: an earlier layer whose unchanged file entries are copied, not re-encoded;
    ``record_entries``: see :class:`LayerWriter`."""
    with LayerWriter(out, source_date_epoch, reuse, record_entries=record_entries) as writer:
        _walk_upper(writer, os.fspath(upper), [os.fspath(lower) for lower in lowers], "")
    assert writer.result is not None
    return writer.result


def _lower_path(lowers: Sequence[str], rel: str) -> str:
    for lower in lowers:
        candidate = f"{lower}/{rel}"
        if os.path.lexists(candidate):
            return candidate
    return f"{lowers[0]}/{rel}" if lowers else rel


def _walk_upper(writer: LayerWriter, upper: str, lowers: Sequence[str], rel: str) -> None:
    directory = f"{upper}/{rel}" if rel else upper
    if rel and is_opaque(directory):
        writer.add_marker(_join(rel, ".wh..wh..opq"), os.lstat(directory).st_mtime)
    for name in _children(directory):
        child_rel = _join(rel, name)
        path = f"{directory}/{name}"
        st = os.lstat(path)
        if is_whiteout(st):
            writer.add_marker(_join(rel, ".wh." + name), st.st_mtime)
            continue
        if stat.S_ISDIR(st.st_mode):
            low = lower_stat(lowers, child_rel)
            copied_up = not is_opaque(path) and _same_dir(
                path, st, low, _lower_path(lowers, child_rel))
            if not copied_up:
                writer.add(child_rel, path, st)
            _walk_upper(writer, upper, lowers, child_rel)
            continue
        writer.add(child_rel, path, st)


def diff_naive(
    new: Path,
    old: Path | None,
    out: Path,
    *,
    source_date_epoch: int | None = None,
) -> DiffResult:
    """Write the layer turning full tree ``old`` (None: empty) into ``new``."""
    with LayerWriter(out, source_date_epoch) as writer:
        _walk_pair(writer, new, old, "")
    assert writer.result is not None
    return writer.result


def _same_entry(a: Path, sa: os.stat_result, b: Path, sb: os.stat_result) -> bool:
    if (sa.st_mode, sa.st_uid, sa.st_gid) != (sb.st_mode, sb.st_uid, sb.st_gid):
        return False
    if read_xattrs(a) != read_xattrs(b):
        return False
    if stat.S_ISDIR(sa.st_mode):
        return sa.st_mtime_ns == sb.st_mtime_ns
    if stat.S_ISLNK(sa.st_mode):
        return os.readlink(a) == os.readlink(b)
    if stat.S_ISCHR(sa.st_mode) or stat.S_ISBLK(sa.st_mode):
        return sa.st_rdev == sb.st_rdev
    if not stat.S_ISREG(sa.st_mode):
        return True
    if sa.st_size != sb.st_size or sa.st_mtime_ns != sb.st_mtime_ns:
        return False
    if sa.st_mtime_ns % 1_000_000_000:
        return True  # nanosecond mtimes and size match: unchanged (as containerd)
    return _same_content(a, b)


def _same_content(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def _walk_pair(writer: LayerWriter, new: Path, old: Path | None, rel: str) -> None:
    new_dir = new / rel if rel else new
    old_dir = (old / rel if rel else old) if old is not None else None
    new_names = _children(new_dir)
    old_names = set(_children(old_dir)) if old_dir is not None else set()
    for name in sorted(set(new_names) | old_names, key=os.fsencode):
        child_rel = _join(rel, name)
        npath = new_dir / name
        if name not in new_names:
            writer.add_marker(_join(rel, ".wh." + name), os.lstat(new_dir).st_mtime)
            continue
        nst = os.lstat(npath)
        ost: os.stat_result | None = None
        if old_dir is not None and name in old_names:
            ost = os.lstat(old_dir / name)
        same_type = ost is not None and stat.S_IFMT(ost.st_mode) == stat.S_IFMT(nst.st_mode)
        if not same_type:
            writer.add(child_rel, npath, nst)
            if stat.S_ISDIR(nst.st_mode):
                _walk_pair(writer, new, None, child_rel)
            continue
        assert ost is not None and old_dir is not None
        if not _same_entry(npath, nst, old_dir / name, ost):
            writer.add(child_rel, npath, nst)
        if stat.S_ISDIR(nst.st_mode):
            _walk_pair(writer, new, old, child_rel)
