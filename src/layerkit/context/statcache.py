"""The persistent stat cache: maps (path, stat identity) to a content digest.

A file whose identity (dev, inode, size, mtime_ns, ctime_ns, mode) is
unchanged since it was hashed is not read again.  The cache is one SQLite
file in WAL mode shared by concurrent builds; all rows of a context are read
with one query and new rows are written in one transaction.

The cache is an optimisation, never a source of truth: a file that cannot be
opened or parsed is set aside and treated as empty, a malformed row is a miss,
and a failed write is dropped.  Entries for files modified within
``RACY_WINDOW_NS`` of the moment they were hashed are not stored at all (the
"racy git" problem; see docs/context.md).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Final

__all__ = ["RACY_WINDOW_NS", "StatCache", "stat_key"]

SCHEMA_VERSION: Final = "1"
RACY_WINDOW_NS: Final = 2_000_000_000
_DIGEST_RE: Final = re.compile(r"sha256:[0-9a-f]{64}")
_BUSY_TIMEOUT_S: Final = 5.0


def stat_key(s: os.stat_result) -> str:
    """The identity that must be unchanged for a cached digest to be trusted.

    ctime is included (git does the same): any write or chmod bumps it, even
    when a tool restores mtime afterwards.
    """
    return f"{s.st_dev}:{s.st_ino}:{s.st_size}:{s.st_mtime_ns}:{s.st_ctime_ns}:{s.st_mode}"


class StatCache:
    """Digests of one context root, loaded in bulk and written in batches."""

    def __init__(self, db_path: Path, root: str) -> None:
        self.db_path = db_path
        self._root = os.fsencode(root)
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[bytes, bytes, str, str]] = []
        self.disabled_reason: str | None = None
        self._open()

    # -- opening -------------------------------------------------------------

    def _open(self) -> None:
        try:
            self._conn = self._connect()
        except (sqlite3.DatabaseError, OSError):
            # Not a database, or a different schema: set it aside and start over.
            self._set_aside()
            try:
                self._conn = self._connect()
            except (sqlite3.DatabaseError, OSError) as exc:
                self._conn = None
                self.disabled_reason = f"stat cache unavailable: {exc}"

    def _connect(self) -> sqlite3.Connection:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: a build's stage threads share one hasher; its
        # callers serialise access (the worker holds a lock around every checksum).
        conn = sqlite3.connect(self.db_path, timeout=_BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS entries ("
                " root BLOB NOT NULL, path BLOB NOT NULL, statkey TEXT NOT NULL,"
                " digest TEXT NOT NULL, PRIMARY KEY (root, path)) WITHOUT ROWID"
            )
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,)
            )
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None or row[0] != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"stat cache schema {row!r} is not {SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _set_aside(self) -> None:
        stamp = f"{os.getpid()}-{time.time_ns()}"
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{self.db_path}{suffix}")
            with contextlib.suppress(OSError):
                path.rename(f"{path}.corrupt-{stamp}")

    # -- reading and writing -------------------------------------------------

    def load(self) -> dict[str, tuple[str, str]]:
        """All rows of this root: path -> (stat key, digest).  {} on any error."""
        if self._conn is None:
            return {}
        try:
            rows = self._conn.execute(
                "SELECT path, statkey, digest FROM entries WHERE root = ?", (self._root,)
            ).fetchall()
        except sqlite3.DatabaseError:
            return {}
        result: dict[str, tuple[str, str]] = {}
        for path, key, digest in rows:
            if (
                isinstance(path, bytes)
                and isinstance(key, str)
                and isinstance(digest, str)
                and _DIGEST_RE.fullmatch(digest)
            ):
                result[os.fsdecode(path)] = (key, digest)
        return result

    def record(self, rel: str, s: os.stat_result, digest: str, now_ns: int) -> bool:
        """Queue a row unless the file is too recently modified to be trusted."""
        if now_ns - s.st_mtime_ns < RACY_WINDOW_NS:
            return False
        self._pending.append((self._root, os.fsencode(rel), stat_key(s), digest))
        return True

    def flush(self) -> int:
        """Write queued rows in one transaction; returns how many were written."""
        pending, self._pending = self._pending, []
        if self._conn is None or not pending:
            return 0
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO entries (root, path, statkey, digest)"
                    " VALUES (?, ?, ?, ?)",
                    pending,
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError:
            return 0  # busy or broken: the cache is only an optimisation
        return len(pending)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.DatabaseError):
                self.flush()
            self._conn.close()
            self._conn = None
