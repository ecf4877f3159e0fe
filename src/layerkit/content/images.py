"""The image index: image names → image records (config digest, manifest digest).

An image's content lives in the blob store: its config blob (whose digest is
the image id, as with Docker) lists the layer diff_ids, and every layer is kept
uncompressed under its diff_id. This table only names images, so tagging,
untagging and listing never touch blobs. SQLite in WAL mode
(``<root>/images.db``) makes concurrent builds tagging at once safe.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from layerkit.content.errors import ContentError
from layerkit.fastclass import dataclass

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    name            TEXT PRIMARY KEY,
    config_digest   TEXT NOT NULL,
    manifest_digest TEXT,
    created         REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS images_by_config ON images(config_digest);
"""

_BUSY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ImageRecord:
    """One named image. ``config_digest`` is the image id."""

    name: str
    config_digest: str
    manifest_digest: str | None
    created: float

    @property
    def short_id(self) -> str:
        return self.config_digest.removeprefix("sha256:")[:12]


class ImageIndex:
    """Names for images in the local store."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / "images.db"
        self._conn = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ImageIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tag(self, name: str, config_digest: str, manifest_digest: str | None = None) -> ImageRecord:
        """Point ``name`` at an image, replacing whatever it named before."""
        now = time.time()
        self._conn.execute(
            "INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?)",
            (name, config_digest, manifest_digest, now),
        )
        return ImageRecord(name, config_digest, manifest_digest, now)

    def get(self, name: str) -> ImageRecord | None:
        row = self._conn.execute("SELECT * FROM images WHERE name=?", (name,)).fetchone()
        return ImageRecord(*row) if row else None

    def resolve(self, name_or_id: str) -> ImageRecord:
        """A name, a full ``sha256:`` id, or an unambiguous id prefix (as ``docker``)."""
        found = self.get(name_or_id)
        if found is not None:
            return found
        prefix = name_or_id.removeprefix("sha256:")
        if len(prefix) >= 4 and all(c in "0123456789abcdef" for c in prefix):
            rows = self._conn.execute(
                "SELECT * FROM images WHERE config_digest LIKE ? ORDER BY created DESC",
                (f"sha256:{prefix}%",),
            ).fetchall()
            ids = {r[1] for r in rows}
            if len(ids) == 1:
                return ImageRecord(*rows[0])
            if len(ids) > 1:
                raise ContentError(
                    f"image id prefix {name_or_id!r} is ambiguous ({len(ids)} images)",
                    hint="give more characters of the id, or the image name",
                    reference="image-ambiguous",
                )
        raise ContentError(
            f"no such image: {name_or_id}",
            hint="list images with `layerkit images`, or build/load it first",
            reference="image-not-found",
        )

    def untag(self, name: str) -> bool:
        cur = self._conn.execute("DELETE FROM images WHERE name=?", (name,))
        return cur.rowcount > 0

    def names_for(self, config_digest: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT name FROM images WHERE config_digest=? ORDER BY name", (config_digest,)
        ).fetchall()
        return [r[0] for r in rows]

    def all(self) -> list[ImageRecord]:
        rows = self._conn.execute("SELECT * FROM images ORDER BY created DESC").fetchall()
        return [ImageRecord(*r) for r in rows]
