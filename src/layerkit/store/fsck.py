"""Turns a store root into a list of integrity problems and, on request, repairs them.

What is checked (docs/reliability.md "fsck"):

* the SQLite files (``cache.db``, ``images.db``, ``worker.db``,
  ``content-index.db``) with ``PRAGMA quick_check``;
* every blob: its bytes must hash to its name;
* every snapshot directory: a committed one needs a readable marker, its
  ``fs`` directory and committed parents; an uncommitted one that no live
  process holds is a crash leftover;
* every key-store record: its result (snapshot, layer blob, base image) must
  exist and be intact;
* every tagged image: config present, intact and parseable, its layers
  present, and its recorded manifest present and pointing at that config with
  one layer per diff_id;
* ``worker.db`` rows (base-layer chains, image commits) and
  ``content-index.db`` rows that name what is gone;
* leftovers: temp files, staging directories, and objects nothing references.

Severities: ``corrupt`` (damaged data, or a tag naming missing content),
``broken`` (a cache reference to something missing: already a miss, but it
should never happen), ``garbage`` (what a crash legitimately leaves behind).

``repair`` drops what is corrupt, broken or unreachable: references first,
then snapshots, then blobs, like ``prune``. Everything runs under the store's
exclusive ``gc`` lock, which every build holds shared, so no build is running
while fsck looks and nothing it sees can be in use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, Literal

from layerkit.content.locks import lock_is_free
from layerkit.fastclass import dataclass, field
from layerkit.store.paths import StorePaths
from layerkit.store.pruning import gc_lock
from layerkit.store.reachability import (
    CONTENT_INDEX_DB,
    MARKER,
    WORKER_DB,
    StoreGraph,
    read_rows,
    walk,
)

Severity = Literal["corrupt", "broken", "garbage"]
_GRACE_SECONDS = 30  # snapshot/snapshotter.py: a younger unlocked directory may be starting
_CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")
DATABASES = ("cache.db", "images.db", WORKER_DB, CONTENT_INDEX_DB)


@dataclass(frozen=True)
class Problem:
    """One finding: what kind, about which object, and what is wrong with it."""

    kind: str
    subject: str
    detail: str
    severity: Severity
    repaired: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "detail": self.detail,
                "severity": self.severity, "repaired": self.repaired}


@dataclass
class FsckReport:
    """Everything one fsck run found, and what it checked."""

    problems: list[Problem] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    repair: bool = False

    @property
    def serious(self) -> list[Problem]:
        """Corrupt or broken findings that are still there."""
        return [p for p in self.problems if p.severity != "garbage" and not p.repaired]

    @property
    def clean(self) -> bool:
        return not self.serious

    def to_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "repair": self.repair, "clean": self.clean,
                "problems": [p.to_json() for p in self.problems]}


# -- low-level checks -------------------------------------------------------------------


def hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def check_database(path: Path) -> str | None:
    """None when the SQLite file is readable and passes quick_check, else why not."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60.0)
    except sqlite3.Error as e:
        return str(e)
    try:
        conn.execute("PRAGMA busy_timeout=60000")
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as e:
        return str(e)
    finally:
        conn.close()
    if rows != [("ok",)]:
        return "; ".join(str(r[0]) for r in rows[:3])
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _age(path: Path) -> float:
    try:
        return time.time() - os.lstat(path).st_mtime
    except OSError:
        return 0.0


# -- the checker ------------------------------------------------------------------------


class _Fsck:
    def __init__(self, paths: StorePaths, repair: bool, report: FsckReport) -> None:
        self.paths = paths
        self.repair = repair
        self.report = report
        self.checked = report.checked
        self.checked.clear()
        self.bad_blobs: set[str] = set()
        self.bad_snapshots: set[str] = set()
        # Deletions of snapshots and blobs wait until every reference to them is
        # gone (prune's order), so a crash mid-repair leaves only garbage.
        self.deferred: list[Callable[[], object]] = []
        self.doomed_blobs: set[str] = set()
        self.doomed_snapshots: set[str] = set()

    def add(self, kind: str, subject: str, detail: str, severity: Severity,
            fix: Callable[[], object] | None = None, *, later: bool = False) -> None:
        repaired = False
        if self.repair and fix is not None:
            if later:
                self.deferred.append(fix)
            else:
                fix()
            repaired = True
        self.report.problems.append(Problem(kind, subject, detail, severity, repaired))

    def finish(self) -> None:
        for fix in self.deferred:
            fix()
        self.deferred.clear()

    def count(self, what: str, n: int = 1) -> None:
        self.checked[what] = self.checked.get(what, 0) + n

    # databases ---------------------------------------------------------------------

    def databases(self) -> None:
        for name in DATABASES:
            path = self.paths.root / name
            if not path.is_file():
                continue
            self.count("databases")
            why = check_database(path)
            if why is not None:
                self.add("corrupt-database", name, f"unreadable SQLite file: {why} "
                         "(repair moves it aside; its records are lost)", "corrupt",
                         partial(_move_aside, path))

    # blobs ----------------------------------------------------------------------------

    def blobs(self) -> None:
        try:
            entries = sorted(os.scandir(self.paths.blobs), key=lambda e: e.name)
        except FileNotFoundError:
            entries = []
        for entry in entries:
            path = Path(entry.path)
            if not (len(entry.name) == 64 and set(entry.name) <= _HEX
                    and entry.is_file(follow_symlinks=False)):
                self.add("stray-file", str(path.relative_to(self.paths.root)),
                         "not a blob (the name is not a sha256 digest)", "garbage",
                         partial(_remove, path))
                continue
            self.count("blobs")
            digest = f"sha256:{entry.name}"
            try:
                actual = hash_file(path)
            except OSError as e:
                actual = f"unreadable ({e.strerror})"
            if actual != digest:
                self.bad_blobs.add(digest)
                self.add("corrupt-blob", digest, f"content hashes to {actual}", "corrupt",
                         partial(_remove, path), later=True)
        self.leftovers(self.paths.blobs_tmp, lambda _n: True, "a crashed blob writer's temp file")

    def leftovers(self, directory: Path, match: Callable[[str], bool], what: str) -> None:
        try:
            names = sorted(os.listdir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            if match(name):
                path = directory / name
                self.add("stale-temp", str(path.relative_to(self.paths.root)), what,
                         "garbage", partial(_remove, path))

    # snapshots ------------------------------------------------------------------------

    def snapshots(self) -> None:
        root = self.paths.snapshots
        try:
            dirs = sorted(p for p in root.iterdir())
        except FileNotFoundError:
            return
        markers: dict[str, list[str]] = {}
        for path in dirs:
            name = path.name
            if name == ".empty" or not path.is_dir() or path.is_symlink():
                continue
            if name.startswith(".flat-"):
                if lock_is_free(path / "lock"):
                    self.add("stale-temp", f"snapshots/{name}", "a crashed layer flattening",
                             "garbage", partial(_remove_tree, path))
                continue
            if name.startswith("flat-"):
                continue  # checked below, once the committed set is known
            marker = path / MARKER
            if marker.exists():
                self.count("snapshots")
                meta = _read_json(marker)
                parents = meta.get("parents") if isinstance(meta, dict) else None
                if not (isinstance(parents, list) and all(isinstance(p, str) for p in parents)):
                    self.bad_snapshots.add(name)
                    continue
                markers[name] = parents
                continue
            abandoned = (lock_is_free(path / "lock") if (path / "lock").exists()
                         else _age(path) >= _GRACE_SECONDS)
            if abandoned:
                self.add("stale-snapshot", f"snapshots/{name}",
                         "an uncommitted snapshot no running build holds", "garbage",
                         partial(_remove_tree, path))
            else:
                self.count("active snapshots")
        for name in sorted(self.bad_snapshots):
            self.add("corrupt-snapshot", name, "its 'committed' marker is unreadable", "corrupt",
                     partial(_remove_snapshot, self.paths, name), later=True)
        # A snapshot is only usable when its files and its whole stack are there.
        changed = True
        while changed:
            changed = False
            for name, parents in markers.items():
                if name in self.bad_snapshots:
                    continue
                lost = [p for p in parents if p not in markers or p in self.bad_snapshots]
                problem = None
                if not (root / name / "fs").is_dir():
                    problem = ("corrupt-snapshot", "its fs directory is missing")
                elif lost:
                    problem = ("broken-snapshot", f"parent snapshot {lost[0]} is missing")
                if problem is not None:
                    self.bad_snapshots.add(name)
                    changed = True
                    self.add(problem[0], name, problem[1], "corrupt",
                             partial(_remove_snapshot, self.paths, name), later=True)
        for path in dirs:
            if path.name.startswith("flat-") and path.is_dir():
                stack = (path / "stack").read_text().split() if (path / "stack").is_file() else []
                if not (path / MARKER).is_file() or any(
                        s not in markers or s in self.bad_snapshots for s in stack):
                    self.add("stale-temp", f"snapshots/{path.name}",
                             "a flattened copy of layers that are gone", "garbage",
                             partial(_remove_tree, path))

    # references -----------------------------------------------------------------------

    def records(self, graph: StoreGraph) -> set[str]:
        """Check key-store records; returns the keys that stay."""
        rows = read_rows(self.paths.cache_db, "SELECT key, result FROM steps")
        raw = {str(k): r for k, r in rows}
        doomed: list[str] = []
        for rec in graph.records:
            self.count("records")
            why = None
            try:
                parsed = json.loads(raw.get(rec.key, "null"))
            except (TypeError, ValueError):
                parsed = None
            if not isinstance(parsed, dict):
                why = ("corrupt-record", "its result is not readable JSON")
            elif rec.missing:
                why = ("broken-record", f"its result names {rec.missing[0]}, which is gone")
            elif rec.blobs & self.bad_blobs:
                why = ("broken-record", f"its result names corrupt blob "
                       f"{sorted(rec.blobs & self.bad_blobs)[0]}")
            elif any(s in self.bad_snapshots for sid in rec.snapshots
                     for s in graph.stack(sid)):
                why = ("broken-record", "its result snapshot (or a parent) is corrupt")
            if why is not None:
                doomed.append(rec.key)
                self.add(why[0], f"record {rec.key.rsplit(':', 1)[-1][:25]}", why[1], "broken",
                         _in_bulk)
        if self.repair and doomed:
            _delete_rows(self.paths.cache_db, "DELETE FROM steps WHERE key=?", doomed)
        return {r.key for r in graph.records} - set(doomed)

    def images(self, graph: StoreGraph) -> set[str]:
        """Check tagged images; returns the names that stay tagged."""
        doomed: list[str] = []
        for image in graph.images:
            self.count("images")
            why = self.image_problem(image.image_id, image.manifest, image.diff_ids,
                                     image.missing, image.blobs)
            if why is not None:
                doomed.append(image.name)
                self.add("broken-image", image.name, why + " (repair removes the tag)",
                         "corrupt", _in_bulk)
        if self.repair and doomed:
            _delete_rows(self.paths.images_db, "DELETE FROM images WHERE name=?", doomed)
        return {i.name for i in graph.images} - set(doomed)

    def image_problem(self, image_id: str, manifest: str | None, diff_ids: tuple[str, ...],
                      missing: tuple[str, ...], blobs: frozenset[str]) -> str | None:
        if missing:
            return f"needs {missing[0]}, which is not in the store"
        if blobs & self.bad_blobs:
            return f"needs corrupt blob {sorted(blobs & self.bad_blobs)[0]}"
        config = _read_json(self.paths.blobs / image_id.removeprefix("sha256:"))
        if not isinstance(config, dict) or not isinstance(config.get("rootfs"), dict):
            return "its config is not an image config"
        if manifest is None:
            return None
        if not (self.paths.blobs / manifest.removeprefix("sha256:")).is_file():
            return f"its manifest {manifest} is not in the store"
        doc = _read_json(self.paths.blobs / manifest.removeprefix("sha256:"))
        cfg = doc.get("config") if isinstance(doc, dict) else None
        layers = doc.get("layers") if isinstance(doc, dict) else None
        if not isinstance(cfg, dict) or not isinstance(layers, list):
            return f"its manifest {manifest} is not an image manifest"
        if cfg.get("digest") != image_id:
            return f"its manifest names config {cfg.get('digest')}, not {image_id}"
        if len(layers) != len(diff_ids):
            return f"its manifest lists {len(layers)} layers for {len(diff_ids)} diff_ids"
        return None

    def worker_rows(self, graph: StoreGraph) -> None:
        """worker.db and content-index.db rows naming what is gone (or goes now)."""
        db = self.paths.root / WORKER_DB
        gone_blobs = self.doomed_blobs if self.repair else self.bad_blobs
        gone_snaps = self.doomed_snapshots if self.repair else self.bad_snapshots
        bad_chains = [c.chain_id for c in graph.chains
                      if c.snapshot not in graph.snapshots or c.snapshot in gone_snaps
                      or c.diff_id not in graph.blobs or c.diff_id in gone_blobs]
        for chain in bad_chains:
            self.add("broken-chain", f"chain {chain}", "its base-layer snapshot or layer blob "
                     "is gone", "broken", _in_bulk)
        # The worker checks an image commit's blobs before reusing it, so a row
        # naming a pruned blob is only a leftover.
        commits = read_rows(db, "SELECT doc_key, config, manifest FROM commits")
        stale_commits = [str(k) for k, c, m in commits
                         if not {c, m} <= graph.blobs or {c, m} & gone_blobs]
        if stale_commits:
            self.add("stale-commit-row", "worker.db", f"{len(stale_commits)} image-commit rows "
                     "name blobs that are gone", "garbage", _in_bulk)
        if self.repair:
            _delete_rows(db, "DELETE FROM chains WHERE chain_id=?", bad_chains)
            _delete_rows(db, "DELETE FROM commits WHERE doc_key=?", stale_commits)
            _delete_rows(db, "DELETE FROM path_sums WHERE snapshot=?", sorted(gone_snaps))
        index = self.paths.root / CONTENT_INDEX_DB
        stale = [(str(d), str(v)) for d, v, g in read_rows(
            index, "SELECT diff_id, variant, digest FROM compressed")
            if g not in graph.blobs or g in gone_blobs]
        if stale:
            self.add("stale-index-row", "content-index.db",
                     f"{len(stale)} compressed-layer rows name blobs that are gone", "garbage",
                     _in_bulk)
            if self.repair:
                _delete_rows(index, "DELETE FROM compressed WHERE diff_id=? AND variant=?", stale)

    def unreachable(self, graph: StoreGraph, records: set[str], images: set[str]) -> None:
        kept_records = [r for r in graph.records if r.key in records]
        kept_images = [i for i in graph.images if i.name in images]
        snaps: set[str] = set(graph.active_parents)
        blobs: set[str] = set()
        for image in kept_images:
            blobs |= image.blobs
        for rec in kept_records:
            for sid in rec.snapshots:
                snaps.update(graph.stack(sid))
            blobs |= rec.blobs
        ok_snaps = set(graph.snapshots) - self.bad_snapshots
        chains = [c for c in graph.chains if c.snapshot in ok_snaps]
        for chain in chains:
            snaps.update(graph.stack(chain.snapshot))
            blobs.add(chain.diff_id)
        for diff_id in list(blobs):
            blobs |= graph.compressed.get(diff_id, frozenset())
        orphans = sorted((s for s in ok_snaps if s not in snaps),
                         key=lambda s: (-len(graph.stack(s)), s))
        for sid in orphans:
            self.add("unreachable-snapshot", sid, "nothing references it", "garbage",
                     partial(_remove_snapshot, self.paths, sid), later=True)
        for digest in sorted(graph.blobs - self.bad_blobs - blobs):
            self.add("unreachable-blob", digest, "nothing references it", "garbage",
                     partial(_remove, self.paths.blobs / digest[7:]), later=True)
        self.doomed_blobs = set(graph.blobs - blobs) | self.bad_blobs
        self.doomed_snapshots = set(orphans) | self.bad_snapshots

    def cache_mounts(self) -> None:
        self.leftovers(self.paths.cache_mounts, lambda n: n.startswith((".new-", ".prune-")),
                       "a cache mount being created or pruned when a process died")


# -- repairs ----------------------------------------------------------------------------


def _in_bulk() -> None:
    """The fix of a row-level finding: its rows are deleted together, in one transaction."""


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            os.unlink(path)


def _remove_tree(path: Path) -> None:
    from layerkit.snapshot.mount import remove_tree

    remove_tree(path)


def _remove_snapshot(paths: StorePaths, sid: str) -> None:
    path = paths.snapshots / sid
    # The marker goes first: a half-removed snapshot is then plain garbage.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path / MARKER)
    _remove_tree(path)


def _move_aside(path: Path) -> None:
    stamp = int(time.time())
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            os.replace(src, Path(f"{path}.corrupt-{stamp}{suffix}"))


def _delete_rows(db: Path, sql: str, rows: Iterable[str | tuple[str, ...]]) -> None:
    params = [r if isinstance(r, tuple) else (r,) for r in rows]
    if not params or not db.is_file():
        return
    conn = sqlite3.connect(db, timeout=60.0, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=60000")
        conn.execute("BEGIN IMMEDIATE")
        with contextlib.suppress(sqlite3.OperationalError):  # table absent
            conn.executemany(sql, params)
        conn.execute("COMMIT")
    finally:
        conn.close()


# -- entry point ------------------------------------------------------------------------


def fsck(
    root: Path,
    *,
    repair: bool = False,
    lock_timeout: float | None = 600.0,
    on_wait: Callable[[], None] | None = None,
) -> FsckReport:
    """Check (and with ``repair``, fix) the store at ``root``; see the module docstring.

    A repair pass can orphan more objects (the parents of a removed snapshot,
    the layers of an untagged image), so repair runs passes until one finds
    nothing (at most three); the report holds the findings of every pass.
    """
    paths = StorePaths(Path(root))
    report = FsckReport(repair=repair)
    if not paths.root.is_dir():
        return report
    paths.locks.mkdir(parents=True, exist_ok=True)
    with gc_lock(paths, lock_timeout, on_wait):
        first_counts: dict[str, int] | None = None
        for _ in range(3 if repair else 1):
            before = len(report.problems)
            _one_pass(paths, repair, report)
            if first_counts is None:
                first_counts = dict(report.checked)
            if len(report.problems) == before:
                break
        report.checked = first_counts or {}
        if repair:
            _fsync_tree(paths)
    return report


def _one_pass(paths: StorePaths, repair: bool, report: FsckReport) -> None:
    check = _Fsck(paths, repair, report)
    check.databases()
    check.blobs()
    check.snapshots()
    check.cache_mounts()
    graph = walk(paths.root)
    records = check.records(graph)
    images = check.images(graph)
    check.unreachable(graph, records, images)
    check.worker_rows(graph)
    check.finish()


def _fsync_tree(paths: StorePaths) -> None:
    for directory in (paths.blobs, paths.snapshots, paths.root):
        with contextlib.suppress(OSError):
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

