"""The key store: cache keys → step results, with the plain inputs behind each key.

Backed by SQLite in WAL mode (``<root>/cache.db``) so several builds can share
one store. Every record keeps the human-readable inputs that were hashed into
its key (kaniko's "composite key" idea, BuildKit's ``cachedigest``): a miss is
later explained by diffing those inputs against the closest earlier record for
the same step, and ``plan`` predicts a rebuild from the same records.

The store is an optimisation, never a source of truth about content: a record
whose result is missing from the blob or snapshot store is treated as a miss by
the caller, and an unreadable database is rebuilt empty rather than trusted.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from layerkit.errors import BuildError
from layerkit.fastclass import dataclass

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS steps (
    key         TEXT PRIMARY KEY,
    content_key TEXT,
    step_id     TEXT NOT NULL,
    inputs      TEXT NOT NULL,
    result      TEXT NOT NULL,
    duration_s  REAL NOT NULL,
    created     REAL NOT NULL,
    last_used   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS steps_by_content ON steps(content_key);
CREATE INDEX IF NOT EXISTS steps_by_step ON steps(step_id, last_used);
"""

# Concurrent builds wait for each other's short write transactions instead of
# surfacing "database is locked" to the user.
_BUSY_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class StepRecord:
    """One cached step: its keys, the plain inputs behind them and its result."""

    key: str
    content_key: str | None
    step_id: str
    inputs: Mapping[str, Any]
    result: Mapping[str, Any]
    duration_s: float
    created: float
    last_used: float


class KeyStore:
    """SQLite-backed mapping from cache keys to step records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the solver's stage threads, serialised here.
        self._lock = threading.RLock()
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            conn = self._connect()
        except sqlite3.DatabaseError:
            # A corrupt key store is only a lost optimisation: move it aside and
            # start empty, so a later build never trusts damaged records.
            self.path.replace(self.path.with_suffix(f".corrupt-{int(time.time())}"))
            conn = self._connect()
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT value FROM meta WHERE name='schema'").fetchone()
        if row is None:
            conn.execute(
                "INSERT OR IGNORE INTO meta(name, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )
        elif int(row[0]) != SCHEMA_VERSION:
            raise BuildError(
                f"key store {self.path} has schema {row[0]}, this layerkit expects "
                f"{SCHEMA_VERSION}",
                hint="remove the file to start with an empty cache, or use a matching layerkit",
                reference="cache-schema",
            )
        return conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _one(self, sql: str, params: tuple[Any, ...]) -> StepRecord | None:
        with self._lock:
            row = self._conn.execute(sql, params).fetchone()
        return _record(row) if row else None

    def get(self, key: str) -> StepRecord | None:
        return self._one("SELECT * FROM steps WHERE key=?", (key,))

    def get_by_content(self, content_key: str) -> StepRecord | None:
        return self._one(
            "SELECT * FROM steps WHERE content_key=? ORDER BY last_used DESC LIMIT 1",
            (content_key,),
        )

    def closest(self, step_id: str) -> StepRecord | None:
        """The most recently used record for the same step (same file, stage, position)."""
        return self._one(
            "SELECT * FROM steps WHERE step_id=? ORDER BY last_used DESC LIMIT 1",
            (step_id,),
        )

    def put(
        self,
        *,
        key: str,
        content_key: str | None,
        step_id: str,
        inputs: Mapping[str, Any],
        result: Mapping[str, Any],
        duration_s: float,
    ) -> StepRecord:
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    content_key,
                    step_id,
                    json.dumps(inputs, sort_keys=True),
                    json.dumps(result, sort_keys=True),
                    duration_s,
                    now,
                    now,
                ),
            )
        return StepRecord(key, content_key, step_id, inputs, result, duration_s, now, now)

    def touch(self, key: str, step_id: str | None = None) -> None:
        """Mark a record used now (for prune ordering and for `closest`)."""
        with self._write() as conn:
            if step_id is None:
                conn.execute("UPDATE steps SET last_used=? WHERE key=?", (time.time(), key))
            else:
                conn.execute(
                    "UPDATE steps SET last_used=?, step_id=? WHERE key=?",
                    (time.time(), step_id, key),
                )

    def delete(self, keys: list[str]) -> None:
        with self._write() as conn:
            conn.executemany("DELETE FROM steps WHERE key=?", [(k,) for k in keys])

    def all(self) -> list[StepRecord]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM steps").fetchall()
        return [_record(r) for r in rows]


def _record(row: tuple[Any, ...]) -> StepRecord:
    key, content_key, step_id, inputs, result, duration_s, created, last_used = row
    return StepRecord(
        key=key,
        content_key=content_key,
        step_id=step_id,
        inputs=json.loads(inputs),
        result=json.loads(result),
        duration_s=duration_s,
        created=created,
        last_used=last_used,
    )
