"""Incremental COPY: the previous result of the same COPY + a context edit → a new layer
that re-copies only what changed.

A ``COPY <dir> <dest>`` from the build context that misses the cache usually misses
because a few files changed. When the same step (same parent snapshot, same op, same
.dockerignore, workdir and SOURCE_DATE_EPOCH) ran before, its committed snapshot's
own directory already holds every file of the layer. The worker then:

1. runs the ordinary :func:`layerkit.fileops.apply_file_op` on a fresh snapshot with
   :class:`SkipUnchanged` as the ignore rules: the copier walks and creates every
   directory exactly as a full copy does (same code, same metadata rules for
   --chown/--chmod) but skips the files whose source is unchanged since that run;
2. hardlinks each skipped file from the old snapshot's directory into the new one
   (:func:`link_unchanged`) and restores the times of the directories it linked into,
   so the result is the tree a full copy gives, byte for byte in the layer tar;
3. diffs the snapshot with the old layer blob as a :class:`LayerReuse`: the tar entry of
   a file that is the very inode the old layer was made from is copied from the old
   blob instead of being encoded again (the same bytes, so the same diff_id).

"Unchanged" is decided by a stat fingerprint taken before each copy: device, inode,
size, mode, owner, mtime and **ctime** (which any content, xattr or mode change moves,
and which no user can set back). Hardlinked sources and special files are always
copied. A linked inode is never written: the copier replaces changed files by
unlink + create, and linked files are not touched at all; prune of the old snapshot
only drops one of the links. Anything unexpected raises :class:`ReuseFailed`, and the
worker redoes the step as a full copy. ``LAYERKIT_COPY_REUSE=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from layerkit.context.dockerignore import IgnoreRules
from layerkit.context.patternmatcher import MatchInfo, has_wildcards
from layerkit.fastclass import dataclass, field
from layerkit.graph.model import ContextInput
from layerkit.graph.ops import CopyAction, FileOp

if TYPE_CHECKING:
    from layerkit.snapshot.tarwriter import LayerReuse

__all__ = [
    "RECORD_NAME",
    "REUSE_ENV",
    "CopyPlan",
    "Previous",
    "ReuseFailed",
    "SkipUnchanged",
    "enabled",
    "layer_reuse",
    "link_unchanged",
    "plan_copy",
    "previous",
    "record",
    "remember",
]

REUSE_ENV = "LAYERKIT_COPY_REUSE"
RECORD_NAME = "copy-sources.json"  # beside fs/ in the snapshot directory
_SCHEMA = "copyreuse-v1"
_INDEX_DIR = "copyreuse"

Fingerprint = tuple[int, ...]


class ReuseFailed(Exception):
    """The old snapshot does not look as recorded: do a full copy instead."""


def enabled() -> bool:
    return os.environ.get(REUSE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class CopyPlan:
    """An eligible COPY: its reuse key and the source fingerprints taken before it runs."""

    key: str
    source_rel: str  # the copied directory, relative to the context root ("" = the root)
    dest: str  # absolute destination in the image
    stats: Mapping[str, Fingerprint]  # context path → fingerprint


@dataclass
class Previous:
    """The earlier result of the same step, and which of its files can be reused."""

    snapshot: str
    fs: Path  # the old snapshot's own files
    diff_id: str  # its layer blob
    reusable: frozenset[str]  # context paths whose source is unchanged
    skipped: set[str] = field(default_factory=set)  # filled by SkipUnchanged


def plan_copy(
    op: FileOp, inputs: Sequence[object], *, parent_ref: str, context_root: Path,
    ignore: IgnoreRules, workdir: str, epoch: int | None, driver: str,
) -> CopyPlan | None:
    """A plan when ``op`` is a plain ``COPY [--chown] [--chmod] <context dir> <dest>`` on an
    overlay snapshot, else None (the step is then copied in full, as always)."""
    from layerkit.fileops.errors import FileOpError
    from layerkit.fileops.sources import resolve_source

    if not enabled() or driver != "overlayfs" or len(op.actions) != 1:
        return None
    a = op.actions[0]
    if not isinstance(a, CopyAction) or not isinstance(inputs[a.input], ContextInput):
        return None
    # --link, --parents, --exclude and ADD's extraction change which paths a source gives
    # or where they land; they are not handled here.
    if (a.link or a.parents or a.excludes or a.unpack or not a.follow_symlinks
            or len(a.sources) != 1 or has_wildcards(a.sources[0])):
        return None
    try:
        items = resolve_source(context_root, a.sources[0], ignore=ignore, what="COPY")
    except (FileOpError, OSError):
        return None  # the full copy reports the error
    if len(items) != 1 or not stat.S_ISDIR(os.lstat(items[0].host).st_mode):
        return None
    source_rel = items[0].rel
    ctx = inputs[a.input]
    assert isinstance(ctx, ContextInput)
    key = hashlib.sha256(json.dumps([
        _SCHEMA, parent_ref, op.cache_map().base, ctx.name, os.fspath(context_root),
        ignore.source, ignore.patterns, workdir, epoch, os.geteuid(), source_rel,
    ]).encode()).hexdigest()
    return CopyPlan(key, source_rel, _absolute(a.dest, workdir),
                    dict(_fingerprints(items[0].host, source_rel)))


def _absolute(dest: str, workdir: str) -> str:
    """The destination as ``fileops`` makes it absolute (against WORKDIR)."""
    if dest in ("", "."):
        return posixpath.normpath(posixpath.join("/", workdir or "/"))
    return posixpath.normpath(posixpath.join("/", workdir or "/", dest))


def _fingerprints(host: Path, rel: str) -> Iterator[tuple[str, Fingerprint]]:
    stack = [(os.fspath(host), rel)]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as it:
            for entry in it:
                path = f"{prefix}/{entry.name}" if prefix else entry.name
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append((entry.path, path))
                    continue
                yield path, (st.st_dev, st.st_ino, st.st_mode, st.st_uid, st.st_gid,
                             st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_nlink)


def _reusable(fp: Fingerprint) -> bool:
    mode, nlink = fp[2], fp[8]
    # A source with several links is recreated as a hardlink group: copy it whole.
    return stat.S_ISLNK(mode) or (stat.S_ISREG(mode) and nlink == 1)


def previous(store_root: Path, snapshots_dir: Path, plan: CopyPlan) -> Previous | None:
    """The last committed result of this step, or None (never ran, pruned, or unreadable)."""
    from layerkit.snapshot.snapshotter import MARKER

    try:
        entry = json.loads((store_root / _INDEX_DIR / plan.key).read_text())
        sid, diff_id = str(entry["snapshot"]), str(entry["diff_id"])
        path = snapshots_dir / sid
        if not sid or "/" in sid or not (path / MARKER).is_file():
            return None
        data = json.loads((path / RECORD_NAME).read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if data.get("key") != plan.key or data.get("source_rel") != plan.source_rel:
        return None
    old: dict[str, list[int]] = data.get("stats") or {}
    reusable = frozenset(p for p, fp in plan.stats.items()
                         if _reusable(fp) and tuple(old.get(p) or ()) == fp)
    return Previous(sid, path / "fs", diff_id, reusable)


def record(snapshot_dir: Path, plan: CopyPlan) -> None:
    """Keep ``plan``'s fingerprints with the (still active) snapshot it produced."""
    from layerkit.snapshot.snapshotter import write_atomic

    doc = {"key": plan.key, "source_rel": plan.source_rel, "stats": plan.stats}
    write_atomic(snapshot_dir / RECORD_NAME, json.dumps(doc, separators=(",", ":")).encode())


def remember(store_root: Path, plan: CopyPlan, sid: str, diff_id: str) -> None:
    """After the commit: the next run of this step starts from snapshot ``sid`` (whose
    layer blob is ``diff_id``)."""
    from layerkit.snapshot.snapshotter import write_atomic

    index = store_root / _INDEX_DIR
    index.mkdir(parents=True, exist_ok=True)
    write_atomic(index / plan.key, json.dumps({"snapshot": sid, "diff_id": diff_id}).encode())


def entries_path(store_root: Path, plan: CopyPlan) -> Path:
    """Where this step's latest layer lists its entries (one file per step: the next
    run replaces it, so old layers' lists do not pile up)."""
    return store_root / _INDEX_DIR / f"{plan.key}.entries"


def layer_reuse(store_root: Path, prev: Previous, plan: CopyPlan) -> LayerReuse | None:
    """The old layer blob as a source of unchanged tar entries, when it is still here."""
    from layerkit.snapshot.tarwriter import LayerReuse

    algo, _, hexpart = prev.diff_id.partition(":")
    blob = store_root / "blobs" / "sha256" / hexpart
    if algo != "sha256" or len(hexpart) != 64 or not blob.is_file():
        return None
    entries = None
    try:
        doc = json.loads(entries_path(store_root, plan).read_text())
        if doc.get("diff_id") == prev.diff_id:  # written for this very layer
            entries = {str(name): _entry(e) for name, e in doc["entries"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        entries = None  # absent or damaged: the layer is parsed instead
    return LayerReuse(blob, prev.fs, entries)


def _entry(raw: list[object]) -> tuple[int, int, int, int, int, int, int, dict[str, str]]:
    *numbers, xattrs = raw
    if len(numbers) != 7 or not isinstance(xattrs, dict):
        raise ValueError("malformed entry")
    offset, length, mode, uid, gid, mtime, size = (int(n) for n in numbers)  # type: ignore[call-overload]
    return offset, length, mode, uid, gid, mtime, size, {str(k): str(v) for k, v in xattrs.items()}


class SkipUnchanged(IgnoreRules):
    """The context's .dockerignore, plus: skip every file that can be reused (and note it)."""

    __slots__ = ("base", "prev")

    def __init__(self, base: IgnoreRules, prev: Previous) -> None:
        super().__init__(base.rules, base.source)
        self.base = base
        self.prev = prev

    def __bool__(self) -> bool:
        return True

    def match_incremental(self, rel_path: str, parent: MatchInfo) -> tuple[bool, MatchInfo]:
        hit, info = self.base.match_incremental(rel_path, parent) if self.base else (False, ())
        if not hit and rel_path in self.prev.reusable:
            self.prev.skipped.add(rel_path)
            return True, info
        return hit, info

    def may_reinclude_below(self, dir_rel: str) -> bool:
        return bool(self.base) and self.base.may_reinclude_below(dir_rel)


def link_unchanged(prev: Previous, new_fs: Path, plan: CopyPlan, dest_rel: str,
                   *, dest_existed: bool) -> int:
    """Hardlink the files the copy skipped from the old snapshot into ``new_fs``; returns
    how many. ``dest_rel`` is the destination directory relative to the root (symlinks
    resolved); when it ``dest_existed`` before the copy its mtime is left as the links
    make it (a full copy also changes it by creating entries), every other directory
    gets back the times the copier gave it."""
    times: dict[str, tuple[int, int]] = {}
    prefix = plan.source_rel + "/" if plan.source_rel else ""
    old_root, new_root = os.fspath(prev.fs), os.fspath(new_fs)
    for ctx_path in sorted(prev.skipped):
        if not ctx_path.startswith(prefix):
            raise ReuseFailed(f"{ctx_path} is outside {plan.source_rel}")
        rel = posixpath.normpath(posixpath.join(dest_rel, ctx_path[len(prefix):]))
        old, new = f"{old_root}/{rel}", f"{new_root}/{rel}"
        try:
            ost = os.lstat(old)
        except FileNotFoundError:
            raise ReuseFailed(f"{rel} is missing in snapshot {prev.snapshot}") from None
        fp = plan.stats[ctx_path]
        if (stat.S_IFMT(ost.st_mode) != stat.S_IFMT(fp[2])
                or (stat.S_ISREG(ost.st_mode) and ost.st_size != fp[5])):
            raise ReuseFailed(f"{rel} in snapshot {prev.snapshot} is not the recorded file")
        parent = posixpath.dirname(rel)
        if parent not in times:
            try:
                pst = os.lstat(posixpath.dirname(new))
            except FileNotFoundError:
                raise ReuseFailed(f"{parent} was not created by the copy") from None
            if not stat.S_ISDIR(pst.st_mode):
                raise ReuseFailed(f"{parent} is not a directory")
            times[parent] = (pst.st_atime_ns, pst.st_mtime_ns)
        try:
            # Fails (EEXIST) if the copy wrote this path: then it was not skipped.
            os.link(old, new, follow_symlinks=False)
        except OSError as exc:  # or removed meanwhile: the full copy still works
            raise ReuseFailed(f"cannot link {rel}: {exc}") from exc
    top = posixpath.normpath(dest_rel)
    for parent, (atime, mtime) in times.items():
        if dest_existed and posixpath.normpath(parent) == top:
            continue
        os.utime(new_fs / parent, ns=(atime, mtime), follow_symlinks=False)
    return len(prev.skipped)
