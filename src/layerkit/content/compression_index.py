"""Maps (diff_id, compression variant) to the compressed blob already in the store.

Exporters compress layers at export time; this index lets a second export (or
a push) reuse the blob instead of compressing again. It lives in
``<root>/content-index.db`` (SQLite, WAL, one short connection per call so it is
safe from threads and processes).

The index is an optimisation, never a correctness dependency: a hit is only
returned when the blob is still in the store with the recorded size, and a
missing or corrupt database behaves as an empty one (it is rebuilt).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from layerkit.content.digest import BlobInfo, check_sha256_digest
from layerkit.content.store import ContentStore

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS compressed (
    diff_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    digest  TEXT NOT NULL,
    size    INTEGER NOT NULL,
    PRIMARY KEY (diff_id, variant)
);
CREATE INDEX IF NOT EXISTS compressed_by_digest ON compressed (digest);
"""


class CompressionIndex:
    def __init__(self, store: ContentStore, filename: str = "content-index.db") -> None:
        self.store = store
        self.path = store.root / filename

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # a cache: losing a row costs a recompress
            conn.executescript(_SCHEMA)
            yield conn
        finally:
            conn.close()

    def _reset(self, error: sqlite3.Error) -> None:
        log.warning("compression index %s is unusable (%s); starting a new one", self.path, error)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def get(self, diff_id: str, variant: str) -> BlobInfo | None:
        """The compressed blob for ``diff_id`` made by ``variant``, if still in the store."""
        try:
            with self._connect() as conn:
                row = conn.execute(
                    "SELECT digest, size FROM compressed WHERE diff_id = ? AND variant = ?",
                    (diff_id, variant),
                ).fetchone()
        except sqlite3.DatabaseError as e:
            self._reset(e)
            return None
        if row is None:
            return None
        digest, size = str(row[0]), int(row[1])
        try:
            check_sha256_digest(digest)
            if self.store.size(digest) == size:
                return BlobInfo(digest, size)
        except Exception:  # a bad row or a pruned blob is a miss
            pass
        return None

    def put(self, diff_id: str, variant: str, blob: BlobInfo) -> None:
        check_sha256_digest(diff_id)
        check_sha256_digest(blob.digest)
        try:
            with self._connect() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO compressed (diff_id, variant, digest, size) "
                    "VALUES (?, ?, ?, ?)",
                    (diff_id, variant, blob.digest, blob.size),
                )
        except sqlite3.DatabaseError as e:
            self._reset(e)

    def diff_id_of(self, digest: str) -> str | None:
        """Reverse lookup: which uncompressed layer does this compressed blob hold?"""
        try:
            with self._connect() as conn:
                row = conn.execute(
                    "SELECT diff_id FROM compressed WHERE digest = ? LIMIT 1", (digest,)
                ).fetchone()
        except sqlite3.DatabaseError as e:
            self._reset(e)
            return None
        return None if row is None else str(row[0])

    def compressed_for(self, diff_ids: set[str]) -> set[str]:
        """Compressed digests recorded for ``diff_ids`` (to extend GC roots)."""
        try:
            with self._connect() as conn:
                rows = conn.execute("SELECT diff_id, digest FROM compressed").fetchall()
        except sqlite3.DatabaseError as e:
            self._reset(e)
            return set()
        return {str(digest) for diff_id, digest in rows if diff_id in diff_ids}
