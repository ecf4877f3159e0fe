"""Turns a prune policy into deletions: which cache records, snapshots, blobs and cache
mounts go, and removes them in an order that a crash cannot make unsafe.

Policy (``docker builder prune`` semantics; docs/store.md "Management and prune"):

* **Units** are key-store records and, with ``--all``, cache mounts. Each has a
  last-used time. Snapshots and blobs are not units: they live exactly as long
  as something reachable names them (:mod:`layerkit.store.reachability`).
* **Default** prunes *dangling* records: those whose result no tagged image
  uses (no layer of theirs is a layer of a tagged image). Records with no
  filesystem result, and base-layer snapshots of tagged images, are kept.
* ``--all`` makes every record, every base-layer snapshot and every idle
  cache mount a unit. Tagged images' blobs are kept in every mode.
* ``until``: only units last used longer ago than that are pruned.
* ``keep_storage``: units go least recently used first, and pruning stops once
  the build cache (everything but tagged images' blobs and metadata) fits.
* Always removed: broken records (their result is already gone: a miss anyway)
  and garbage nothing names (e.g. an untagged image's blobs), unless younger
  than ``until``.

Order of deletion: key-store records, then worker.db rows, then snapshots
(children first), then blobs, then cache mounts, all under the exclusive ``gc``
lock, which every build holds shared. A crash in between leaves unreferenced
garbage that the next prune collects, never a record naming something deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from layerkit.content.errors import LockTimeoutError
from layerkit.content.locks import named_lock
from layerkit.fastclass import dataclass, field
from layerkit.store.paths import StorePaths
from layerkit.store.reachability import (
    WORKER_DB,
    ChainNode,
    RecordNode,
    StoreGraph,
    read_rows,
    walk,
)
from layerkit.store.usage import (
    KindUsage,
    Usage,
    files_size,
    key_store_files,
    other_size,
    tree_size,
)

log = logging.getLogger(__name__)

GC_LOCK = "gc"  # content/store.py: writers and builds hold it shared


@dataclass(frozen=True)
class PruneOptions:
    all: bool = False
    keep_storage: int | None = None  # bytes of build cache to keep
    until: float | None = None  # seconds: prune only units last used longer ago
    now: float | None = None  # for tests; default time.time()


@dataclass(frozen=True)
class CacheMountNode:
    name: str  # the directory name under cachemounts/
    path: Path
    size: int
    last_used: float


@dataclass
class PrunePlan:
    """What a prune would delete, and the bytes that would free."""

    records: list[RecordNode] = field(default_factory=list)
    chains: list[ChainNode] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)  # children before parents
    blobs: list[str] = field(default_factory=list)
    cache_mounts: list[CacheMountNode] = field(default_factory=list)
    snapshot_bytes: int = 0
    blob_bytes: int = 0
    cache_mount_bytes: int = 0

    @property
    def reclaimed(self) -> int:
        return self.snapshot_bytes + self.blob_bytes + self.cache_mount_bytes

    @property
    def empty(self) -> bool:
        return not (self.records or self.chains or self.snapshots or self.blobs
                    or self.cache_mounts)


# -- sizes and cache mounts -----------------------------------------------------------


class _Sizes:
    """Lazily measured sizes of snapshots and blobs."""

    def __init__(self, paths: StorePaths) -> None:
        self.paths = paths
        self._snap: dict[str, int] = {}
        self._blob: dict[str, int] = {}

    def snapshot(self, sid: str) -> int:
        if sid not in self._snap:
            self._snap[sid] = tree_size(self.paths.snapshots / sid)
        return self._snap[sid]

    def blob(self, digest: str) -> int:
        if digest not in self._blob:
            try:
                self._blob[digest] = os.lstat(self.paths.blobs / digest[7:]).st_size
            except FileNotFoundError:
                self._blob[digest] = 0
        return self._blob[digest]


def _mtime(path: Path) -> float:
    try:
        return os.lstat(path).st_mtime
    except FileNotFoundError:
        return 0.0


def cache_mounts(paths: StorePaths) -> list[CacheMountNode]:
    """Every cache mount directory; last used = newest mtime of it and its top entries
    (the executor does not record uses, so this is what a RUN leaves behind)."""
    out: list[CacheMountNode] = []
    try:
        dirs = sorted(p for p in paths.cache_mounts.iterdir()
                      if p.is_dir() and not p.name.startswith("."))
    except FileNotFoundError:
        return out
    for path in dirs:
        data = path / "data"
        stamps = [_mtime(path), _mtime(data)]
        with contextlib.suppress(OSError):
            stamps.extend(_mtime(c) for c in data.iterdir())
        out.append(CacheMountNode(path.name, path, tree_size(path), max(stamps)))
    return out


def _mount_in_use(node: CacheMountNode) -> bool:
    if not (node.path / "lock").exists():
        return False  # never locked by a RUN; and creating it would change its mtime
    fd = _try_lock_mount(node)
    if fd is None:
        return True
    os.close(fd)
    return False


def _try_lock_mount(node: CacheMountNode) -> int | None:
    """The mount's lock taken exclusively (the executor holds it while a RUN uses it)."""
    try:
        fd = os.open(node.path / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


# -- planning ---------------------------------------------------------------------------


def _shared_with_image(rec: RecordNode, graph: StoreGraph, image_snaps: frozenset[str]) -> bool:
    return bool(rec.blobs & graph.pinned_blobs) or any(s in image_snaps for s in rec.snapshots)


def plan_prune(graph: StoreGraph, options: PruneOptions,
               mounts: list[CacheMountNode] | None = None) -> PrunePlan:
    """Decide what to delete (pure: reads sizes, deletes nothing)."""
    now = time.time() if options.now is None else options.now
    cutoff = None if options.until is None else now - options.until
    sizes = _Sizes(graph.paths)
    mounts = cache_mounts(graph.paths) if mounts is None else mounts

    def old(last_used: float) -> bool:
        return cutoff is None or last_used < cutoff

    image_chains = graph.image_chain_ids
    root_chains = [] if options.all else [c for c in graph.chains if c.chain_id in image_chains]
    image_snaps = frozenset(s for c in root_chains for s in graph.stack(c.snapshot))

    broken = [r for r in graph.records if r.missing]
    kept: list[RecordNode] = []
    candidates: list[RecordNode | CacheMountNode] = []
    for rec in graph.records:
        if rec.missing:
            continue
        dangling = rec.has_result and not _shared_with_image(rec, graph, image_snaps)
        if (options.all or dangling) and old(rec.last_used):
            candidates.append(rec)
        else:
            kept.append(rec)
    kept_mounts: list[CacheMountNode] = []
    for m in mounts:
        if options.all and old(m.last_used) and not _mount_in_use(m):
            candidates.append(m)
        else:
            kept_mounts.append(m)

    # Garbage nothing names at all is protected only by its age.
    named = graph.reachable(graph.records, graph.chains)
    young_snaps = {s for s in graph.snapshots if s not in named.snapshots
                   and not old(_mtime(graph.paths.snapshots / s / "committed"))}
    young_blobs = {b for b in graph.blobs if b not in named.blobs
                   and not old(_mtime(graph.paths.blobs / b[7:]))}

    keep_snaps: set[str] = set()
    keep_blobs: set[str] = set()
    pinned = graph.pinned_blobs

    def growth(recs: list[RecordNode]) -> tuple[set[str], set[str], int]:
        """What ``recs`` reach beyond the kept sets, and its build-cache bytes."""
        reach = graph.reachable(recs, root_chains)
        snaps = {s for sid in reach.snapshots for s in graph.stack(sid) or (sid,)}
        new_snaps = snaps - keep_snaps
        new_blobs = set(reach.blobs) - keep_blobs
        size = sum(sizes.snapshot(s) for s in new_snaps)
        size += sum(sizes.blob(b) for b in new_blobs if b not in pinned)
        return new_snaps, new_blobs, size

    keep_snaps.update(young_snaps)
    keep_blobs.update(young_blobs)
    new_snaps, new_blobs, _ = growth(kept)
    keep_snaps |= new_snaps
    keep_blobs |= new_blobs
    doomed: list[RecordNode | CacheMountNode] = list(candidates)
    if options.keep_storage is not None:
        # Keep the most recently used units while the build cache still fits.
        cache_bytes = sum(sizes.snapshot(s) for s in keep_snaps)
        cache_bytes += sum(sizes.blob(b) for b in keep_blobs if b not in pinned)
        cache_bytes += sum(m.size for m in kept_mounts)
        doomed = []
        order = sorted(candidates, key=lambda u: u.last_used, reverse=True)
        for i, unit in enumerate(order):
            if isinstance(unit, RecordNode):
                new_snaps, new_blobs, size = growth([unit])
            else:
                new_snaps, new_blobs, size = set(), set(), unit.size
            if cache_bytes + size > options.keep_storage:
                doomed = order[i:]
                break
            cache_bytes += size
            keep_snaps |= new_snaps
            keep_blobs |= new_blobs

    plan = PrunePlan()
    plan.records = broken + [u for u in doomed if isinstance(u, RecordNode)]
    plan.cache_mounts = [u for u in doomed if isinstance(u, CacheMountNode)]
    plan.cache_mount_bytes = sum(m.size for m in plan.cache_mounts)
    doomed_snaps = [s for s in graph.snapshots if s not in keep_snaps]
    # Children first: a snapshot is only removable once nothing stacks on it.
    plan.snapshots = sorted(doomed_snaps, key=lambda s: (-len(graph.stack(s)), s))
    plan.snapshot_bytes = sum(sizes.snapshot(s) for s in plan.snapshots)
    plan.blobs = sorted(b for b in graph.blobs if b not in keep_blobs)
    plan.blob_bytes = sum(sizes.blob(b) for b in plan.blobs)
    gone = set(plan.snapshots)
    plan.chains = [c for c in graph.chains
                   if c.snapshot in gone or c.snapshot not in graph.snapshots]
    return plan


# -- executing --------------------------------------------------------------------------


@contextlib.contextmanager
def gc_lock(paths: StorePaths, timeout: float | None,
            on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """The exclusive ``gc`` lock; ``on_wait`` is called once if builds hold it shared."""
    held = contextlib.ExitStack()
    try:
        held.enter_context(named_lock(paths.locks, GC_LOCK, shared=False, timeout=0))
    except LockTimeoutError:
        if on_wait is not None:
            on_wait()
        elif timeout == 0:
            raise
        held.enter_context(named_lock(paths.locks, GC_LOCK, shared=False, timeout=timeout))
    with held:
        yield


def _delete_records(paths: StorePaths, keys: list[str]) -> None:
    if not keys:
        return
    from layerkit.cache.keystore import KeyStore

    with KeyStore(paths.cache_db) as store:
        store.delete(keys)
    # Give the freed pages back. Best effort: a reader elsewhere may keep it busy.
    conn = sqlite3.connect(paths.cache_db, timeout=5.0, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as e:
        log.debug("prune: key store not vacuumed: %s", e)
    finally:
        conn.close()


def _delete_worker_rows(paths: StorePaths, chains: list[ChainNode], snapshots: list[str]) -> None:
    db = paths.root / WORKER_DB
    if not db.is_file() or not (chains or snapshots):
        return
    conn = sqlite3.connect(db, timeout=60.0, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=60000")
        conn.execute("BEGIN IMMEDIATE")
        with contextlib.suppress(sqlite3.OperationalError):  # table absent: nothing to do
            conn.executemany("DELETE FROM chains WHERE chain_id=?",
                             [(c.chain_id,) for c in chains])
        with contextlib.suppress(sqlite3.OperationalError):
            conn.executemany("DELETE FROM path_sums WHERE snapshot=?", [(s,) for s in snapshots])
        conn.execute("COMMIT")
    finally:
        conn.close()


def _delete_snapshots(paths: StorePaths, snapshots: list[str]) -> list[str]:
    if not snapshots:
        return []
    from layerkit.errors import BuildError
    from layerkit.snapshot.snapshotter import Snapshotter

    snapper = Snapshotter(paths.root)
    removed = []
    for sid in snapshots:
        try:
            snapper.remove(sid)
            removed.append(sid)
        except BuildError as e:  # a child appeared (cannot under the lock) or already gone
            log.warning("prune: keeping snapshot %s: %s", sid, e.message)
    return removed


def _delete_blobs(paths: StorePaths, blobs: list[str]) -> None:
    for digest in blobs:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(paths.blobs / digest[7:])
    # Under the exclusive lock no writer is active: every temp file is a crash leftover.
    with contextlib.suppress(FileNotFoundError), os.scandir(paths.blobs_tmp) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _delete_cache_mounts(mounts: list[CacheMountNode]) -> list[CacheMountNode]:
    removed = []
    for node in mounts:
        fd = _try_lock_mount(node)
        if fd is None:
            continue  # a RUN started using it: keep it
        try:
            # Renamed aside first: a later RUN then makes a fresh empty mount, never
            # sees a half-deleted one.
            aside = node.path.with_name(f".prune-{node.name}")
            os.rename(node.path, aside)
        except OSError:
            os.close(fd)
            continue
        os.close(fd)
        shutil.rmtree(aside, ignore_errors=True)
        removed.append(node)
    return removed


def execute_plan(paths: StorePaths, plan: PrunePlan) -> None:
    """Delete what ``plan`` lists, references before what they reference."""
    _delete_records(paths, [r.key for r in plan.records])
    _delete_worker_rows(paths, plan.chains, plan.snapshots)
    removed = set(_delete_snapshots(paths, plan.snapshots))
    kept = [s for s in plan.snapshots if s not in removed]
    if kept:  # only the accounting changes: blobs are named by records, not snapshots
        plan.snapshot_bytes -= sum(tree_size(paths.snapshots / s) for s in kept)
        plan.snapshots = [s for s in plan.snapshots if s in removed]
    _delete_blobs(paths, plan.blobs)
    done = _delete_cache_mounts(plan.cache_mounts)
    plan.cache_mounts = done
    plan.cache_mount_bytes = sum(m.size for m in done)


def prune(
    root: Path,
    options: PruneOptions,
    *,
    dry_run: bool = False,
    lock_timeout: float | None = 600.0,
    on_wait: Callable[[], None] | None = None,
) -> PrunePlan:
    """Plan and (unless ``dry_run``) carry out a prune of the store at ``root``."""
    paths = StorePaths(Path(root))
    paths.locks.mkdir(parents=True, exist_ok=True)
    with gc_lock(paths, lock_timeout, on_wait):
        plan = plan_prune(walk(paths.root), options)
        if not dry_run:
            execute_plan(paths, plan)
    return plan


# -- disk usage -------------------------------------------------------------------------


def _records_bytes(paths: StorePaths, ceiling: int) -> int:
    """About what VACUUM gives back once every record is gone: the rows' bytes."""
    rows = read_rows(paths.cache_db, "SELECT COALESCE(SUM(LENGTH(key) + LENGTH(IFNULL(content_key, "
                 "'')) + LENGTH(step_id) + LENGTH(inputs) + LENGTH(result) + 40), 0) FROM steps")
    return min(ceiling, int(rows[0][0])) if rows else 0


def disk_usage(root: Path) -> Usage:
    """Bytes by kind, and what ``prune --all`` would reclaim (no lock: a best-effort view)."""
    paths = StorePaths(Path(root))
    graph = walk(paths.root)
    mounts = cache_mounts(paths)
    plan = plan_prune(graph, PruneOptions(all=True), mounts)
    tmp = files_size([paths.blobs_tmp])
    ks_size = files_size(key_store_files(paths.root))
    kinds = (
        KindUsage("blobs", len(graph.blobs), files_size([paths.root / "blobs"]),
                  plan.blob_bytes + tmp),
        KindUsage("snapshots", len(graph.snapshots), files_size([paths.snapshots]),
                  plan.snapshot_bytes),
        KindUsage("cache mounts", len(mounts), files_size([paths.cache_mounts]),
                  plan.cache_mount_bytes),
        KindUsage("key store", len(graph.records), ks_size, _records_bytes(paths, ks_size)),
        KindUsage("other", -1, other_size(paths.root), 0),
    )
    return Usage(kinds)
