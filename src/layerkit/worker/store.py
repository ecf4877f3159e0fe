"""The store root of one build: where everything lives, opened lazily.

Turns a ``--root`` (or ``$LAYERKIT_ROOT``, or the default) into the objects a
build needs: the key store, the blob store, the image index, the snapshotter
and the small ``worker.db`` tables this package owns (base-layer chains and
path checksums of committed snapshots). Each is opened on first use, so a
no-op rebuild never pays for the snapshotter's garbage scan or the executor.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from layerkit.cache.keystore import KeyStore
    from layerkit.content.images import ImageIndex
    from layerkit.content.store import ContentStore
    from layerkit.snapshot.snapshotter import Snapshotter

__all__ = ["Store", "default_root"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chains (
    chain_id TEXT PRIMARY KEY,   -- containerd chainID of a base-image layer stack
    snapshot TEXT NOT NULL,      -- committed snapshot id holding that stack's top layer
    diff_id  TEXT NOT NULL       -- the top layer's blob
);
CREATE TABLE IF NOT EXISTS commits (
    doc_key  TEXT PRIMARY KEY,   -- sha256 of the image config document before serialisation
    config   TEXT NOT NULL,      -- its config blob (the image id)
    manifest TEXT NOT NULL       -- its manifest blob (uncompressed layers)
);
CREATE TABLE IF NOT EXISTS pulled (
    name     TEXT NOT NULL,      -- the normalised reference a FROM named (tag or digest)
    platform TEXT NOT NULL,
    manifest TEXT NOT NULL,      -- the platform manifest's digest (its bytes in blobs/)
    config   TEXT NOT NULL,      -- the config digest: what the cache key uses
    PRIMARY KEY (name, platform)
);
CREATE TABLE IF NOT EXISTS path_sums (
    snapshot TEXT NOT NULL,      -- committed (immutable) snapshot id
    query    TEXT NOT NULL,      -- selected paths and excludes, as JSON
    result   TEXT NOT NULL,      -- SourceChecksum as JSON
    PRIMARY KEY (snapshot, query)
);
"""


def default_root(environ: dict[str, str] | None = None) -> Path:
    """``$LAYERKIT_ROOT``; else ``/var/lib/layerkit`` for root; else the XDG data dir."""
    env = os.environ if environ is None else environ
    if env.get("LAYERKIT_ROOT"):
        return Path(env["LAYERKIT_ROOT"])
    if os.geteuid() == 0:
        return Path("/var/lib/layerkit")
    # Same rule as layerkit.store.paths.default_root (not imported: its package is heavy).
    xdg = env.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "layerkit"


def snapshot_committed(root: Path, sid: str) -> bool:
    """One stat: is ``sid`` a committed snapshot (its marker exists)?"""
    return bool(sid) and "/" not in sid and os.path.isfile(root / "snapshots" / sid / "committed")


def blob_exists(root: Path, digest: str) -> bool:
    algo, _, hexpart = digest.partition(":")
    return algo == "sha256" and len(hexpart) == 64 and os.path.isfile(
        root / "blobs" / "sha256" / hexpart)


class Store:
    """Every part of the store under one root, each opened on first use (thread-safe)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db_lock = threading.RLock()

    @cached_property
    def keys(self) -> KeyStore:
        from layerkit.cache.keystore import KeyStore

        return KeyStore(self.root / "cache.db")

    @cached_property
    def content(self) -> ContentStore:
        from layerkit.content.store import ContentStore

        return ContentStore(self.root)

    @cached_property
    def images(self) -> ImageIndex:
        from layerkit.content.images import ImageIndex

        return ImageIndex(self.root)

    @property
    def snapshots(self) -> Snapshotter:
        # Opening a Snapshotter scans for garbage: only when a step really runs.
        with self._lock:
            if "_snapshotter" not in self.__dict__:
                from layerkit.snapshot.snapshotter import Snapshotter

                self.__dict__["_snapshotter"] = Snapshotter(self.root)
            snap: Snapshotter = self.__dict__["_snapshotter"]
            return snap

    @cached_property
    def _db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.root / "worker.db", timeout=60, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=60000")
        conn.execute("PRAGMA journal_mode=WAL")
        # Derived records, written after the files they name are on disk: a power cut
        # may lose the last ones (a miss next time), never corrupt the database.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        return conn

    # -- base-layer chains -----------------------------------------------------------

    def chain_snapshot(self, chain_id: str) -> str | None:
        with self._db_lock:
            row = self._db.execute("SELECT snapshot FROM chains WHERE chain_id=?",
                                   (chain_id,)).fetchone()
        if row is None or not snapshot_committed(self.root, row[0]):
            return None
        return str(row[0])

    def chain_diff(self, chain_id: str) -> str | None:
        with self._db_lock:
            row = self._db.execute("SELECT diff_id FROM chains WHERE chain_id=?",
                                   (chain_id,)).fetchone()
        return None if row is None else str(row[0])

    def record_chain(self, chain_id: str, snapshot: str, diff_id: str) -> None:
        with self._db_lock:
            self._db.execute("INSERT OR REPLACE INTO chains VALUES (?, ?, ?)",
                             (chain_id, snapshot, diff_id))

    # -- image commits ----------------------------------------------------------------

    def commit_of(self, doc_key: str) -> tuple[str, str] | None:
        with self._db_lock:
            row = self._db.execute("SELECT config, manifest FROM commits WHERE doc_key=?",
                                   (doc_key,)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def record_commit(self, doc_key: str, config: str, manifest: str) -> None:
        with self._db_lock:
            self._db.execute("INSERT OR REPLACE INTO commits VALUES (?, ?, ?)",
                             (doc_key, config, manifest))

    # -- base images resolved from a registry (documents kept, layers fetched lazily) --

    def pulled(self, name: str, platform: str) -> tuple[str, str] | None:
        """The (manifest, config) digests ``name`` resolved to when last pulled."""
        with self._db_lock:
            row = self._db.execute("SELECT manifest, config FROM pulled WHERE name=? AND "
                                   "platform=?", (name, platform)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def record_pulled(self, name: str, platform: str, manifest: str, config: str) -> None:
        with self._db_lock:
            self._db.execute("INSERT OR REPLACE INTO pulled VALUES (?, ?, ?, ?)",
                             (name, platform, manifest, config))

    # -- checksums of paths in immutable snapshots ------------------------------------

    def path_sum(self, snapshot: str, query: str) -> str | None:
        with self._db_lock:
            row = self._db.execute("SELECT result FROM path_sums WHERE snapshot=? AND query=?",
                                   (snapshot, query)).fetchone()
        return None if row is None else str(row[0])

    def record_path_sum(self, snapshot: str, query: str, result: str) -> None:
        with self._db_lock:
            self._db.execute("INSERT OR REPLACE INTO path_sums VALUES (?, ?, ?)",
                             (snapshot, query, result))

    def close(self) -> None:
        for name in ("keys", "images"):
            obj = self.__dict__.get(name)
            if obj is not None:
                obj.close()
        db = self.__dict__.get("_db")
        if db is not None:
            db.close()
