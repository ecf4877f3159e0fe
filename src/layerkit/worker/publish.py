"""A snapshot → its layer tar, published in the content store under its diff_id.

The worker diffs a step's snapshot while it is still active (``diff_layer``),
commits it, then publishes the tar (``publish_layer``) before the result goes
back to the solver (which then records the key): the blob is created once,
here, so exports and no-op rebuilds never re-tar a snapshot. Diffing before
the commit lets the snapshotter's sync of the upperdir run meanwhile
(``Snapshotter.start_sync``). ``publish_diff`` does both for a committed one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from layerkit.worker.store import Store

if TYPE_CHECKING:
    from layerkit.snapshot.tarwriter import DiffResult, LayerReuse

__all__ = ["diff_layer", "publish_diff", "publish_layer"]


def diff_layer(store: Store, key_or_id: str, epoch: int | None,
               reuse: LayerReuse | None = None, *, record_entries: bool = False) -> DiffResult:
    """Write the layer tar of snapshot ``key_or_id`` (active or committed) under
    ``blobs/tmp`` (a crash leaves it as a temp file the store collects).

    ``reuse`` (an incremental COPY, worker/copyreuse.py) lets the diff copy unchanged
    entries from the old layer: the same bytes, hence the same diff_id, as a fresh diff.
    """
    tmp = store.root / "blobs" / "tmp" / f"diff-{os.urandom(16).hex()}.tar"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        return store.snapshots.diff(key_or_id, tmp, source_date_epoch=epoch, reuse=reuse,
                                    record_entries=record_entries)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def publish_layer(store: Store, diff: DiffResult, epoch: int | None,
                  entries_out: Path | None = None) -> dict[str, str]:
    """Move the tar into the content store; the meta to keep with the step's result.

    ``entries_out`` receives where each file's bytes are in the layer (JSON, with its
    diff_id), so the next incremental COPY need not parse it.
    """
    try:
        content = store.content
        if content.has(diff.diff_id):
            diff.path.unlink()
        else:
            content.ingest_file(diff.path, move=True, expected_digest=diff.diff_id,
                                digest_known=True)  # the diff hashed what it wrote
    finally:
        diff.path.unlink(missing_ok=True)
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
    if diff.count == 0:
        meta["empty"] = "1"
    return meta


def publish_diff(store: Store, sid: str, epoch: int | None,
                 reuse: LayerReuse | None = None,
                 entries_out: Path | None = None) -> dict[str, str]:
    """Diff committed snapshot ``sid`` into a blob; the meta to keep with its result."""
    diff = diff_layer(store, sid, epoch, reuse, record_entries=entries_out is not None)
    return publish_layer(store, diff, epoch, entries_out)
