"""Turns a store root into byte counts: how much each kind of content takes.

Sizes are apparent sizes (``st_size``) of regular files and symlinks, each inode
counted once, so a hardlinked file in a snapshot is not counted twice. Directories
count zero. The kinds partition the root: ``total`` is exactly their sum.

| kind | what |
| --- | --- |
| blobs | ``blobs/`` (layers, configs, manifests, compressed copies, temp files) |
| snapshots | ``snapshots/`` (committed and in-progress root filesystems) |
| cache mounts | ``cachemounts/`` (``RUN --mount=type=cache`` directories) |
| key store | ``cache.db`` with its WAL and shared-memory files |
| other | everything else (images.db, worker.db, content-index.db, locks, ...) |
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from layerkit.fastclass import dataclass

KINDS = ("blobs", "snapshots", "cache mounts", "key store", "other")


def tree_size(path: Path, seen: set[tuple[int, int]] | None = None) -> int:
    """Apparent bytes of the files under ``path`` (or of ``path`` itself), inodes once."""
    seen = set() if seen is None else seen
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return _count(st, seen)
    total = 0
    stack = [str(path)]
    while stack:
        top = stack.pop()
        try:
            with os.scandir(top) as entries:
                for entry in entries:
                    try:
                        est = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if stat.S_ISDIR(est.st_mode):
                        stack.append(entry.path)
                    else:
                        total += _count(est, seen)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    return total


def _count(st: os.stat_result, seen: set[tuple[int, int]]) -> int:
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        return 0
    ident = (st.st_dev, st.st_ino)
    if st.st_nlink > 1:
        if ident in seen:
            return 0
        seen.add(ident)
    return st.st_size


def files_size(paths: Iterable[Path]) -> int:
    seen: set[tuple[int, int]] = set()
    return sum(tree_size(p, seen) for p in paths)


@dataclass(frozen=True)
class KindUsage:
    kind: str
    count: int  # objects of this kind (blobs, snapshots, cache mounts, records); -1: n/a
    size: int
    reclaimable: int


@dataclass(frozen=True)
class Usage:
    kinds: tuple[KindUsage, ...]

    @property
    def total(self) -> int:
        return sum(k.size for k in self.kinds)

    @property
    def reclaimable(self) -> int:
        return sum(k.reclaimable for k in self.kinds)

    def of(self, kind: str) -> KindUsage:
        for k in self.kinds:
            if k.kind == kind:
                return k
        raise KeyError(kind)


def key_store_files(root: Path) -> list[Path]:
    return [root / f"cache.db{suffix}" for suffix in ("", "-wal", "-shm")]


def other_size(root: Path) -> int:
    """Bytes under ``root`` outside the four named kinds."""
    named = {"blobs", "snapshots", "cachemounts", "cache.db", "cache.db-wal", "cache.db-shm"}
    try:
        entries = [p for p in root.iterdir() if p.name not in named]
    except FileNotFoundError:
        return 0
    return files_size(entries)
