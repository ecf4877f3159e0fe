"""A committed snapshot → its layer tar, published in the content store under its diff_id.

Runs right after ``Snapshotter.commit`` and before the result is returned to
the solver (which then records the key): the blob is created once, here, so
exports and no-op rebuilds never re-tar a snapshot.
"""

from __future__ import annotations

import os
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from layerkit.worker.store import Store

if TYPE_CHECKING:
    from layerkit.snapshot.tarwriter import LayerReuse

__all__ = ["publish_diff"]


def publish_diff(store: Store, sid: str, epoch: int | None,
                 reuse: LayerReuse | None = None,
                 entries_out: Path | None = None) -> dict[str, str]:
    """Diff committed snapshot ``sid`` into a blob; the meta to keep with its result.

    ``reuse`` (an incremental COPY, worker/copyreuse.py) lets the diff copy unchanged
    entries from the old layer: the same bytes, hence the same diff_id, as a fresh diff.
    ``entries_out`` receives where each file's bytes are in the new layer (JSON, with
    its diff_id), so the next incremental COPY need not parse it.
    """
    tmp = store.root / "blobs" / "tmp" / f"diff-{os.urandom(16).hex()}.tar"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        diff = store.snapshots.diff(sid, tmp, source_date_epoch=epoch, reuse=reuse,
                                    record_entries=entries_out is not None)
        empty = _empty_tar(diff.path)
        content = store.content
        if content.has(diff.diff_id):
            diff.path.unlink()
        else:
            content.ingest_file(diff.path, move=True, expected_digest=diff.diff_id,
                                digest_known=True)  # the diff hashed what it wrote
    finally:
        tmp.unlink(missing_ok=True)
    if entries_out is not None:
        import json

        from layerkit.snapshot.snapshotter import write_atomic

        entries_out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(entries_out, json.dumps({"diff_id": diff.diff_id, "entries": diff.entries},
                                             separators=(",", ":")).encode())
    # "created" feeds the image history: a cached rebuild reuses it, so the same
    # inputs give the same image id (BuildKit's testReproducibleIDs).
    created = int(time.time()) if epoch is None else epoch
    meta = {"diff_id": diff.diff_id, "size": str(diff.size), "created": str(created)}
    if empty:
        meta["empty"] = "1"
    return meta


def _empty_tar(path: Path) -> bool:
    with tarfile.open(path) as tar:
        return tar.next() is None
