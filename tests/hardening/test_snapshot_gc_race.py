"""Regression: another process's snapshot garbage collection must never take a
snapshot that is being created.

``Snapshotter._new_dir`` used to ``mkdir`` the snapshot under its final name,
then create its ``lock`` file, then ``flock`` it. A collector running in that
window found a lock nobody held, judged the directory abandoned and deleted
it, possibly after the builder had already filled and committed it. Found as
an intermittent "snapshot '…' does not exist or is not committed" in
test_concurrent_builds.py; reproduced here deterministically by running a
second Snapshotter's collector at the worst moment.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from layerkit.snapshot.snapshotter import Snapshotter


def test_collector_in_the_creation_window_keeps_the_new_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    builder = Snapshotter(root, driver="naive")
    real_flock = fcntl.flock
    collected: list[str] = []

    def flock_after_a_collector_ran(fd: int, op: int) -> None:
        if op == fcntl.LOCK_EX and not collected:
            # Another process opens the store at exactly this moment.
            collected.extend(Snapshotter(root, driver="naive").collect_garbage() or ["-"])
        real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_collector_ran)
    builder.prepare("k")
    (builder.fs("k") / "file").write_text("data")
    sid = builder.commit("k")
    monkeypatch.setattr(fcntl, "flock", real_flock)
    assert collected, "the collector ran inside the creation window"
    assert builder.is_committed(sid), f"the collector removed the new snapshot ({collected})"
    assert (builder.fs(sid) / "file").read_text() == "data"
    assert sid in Snapshotter(root, driver="naive").committed()


def test_abandoned_staging_directories_are_still_collected(tmp_path: Path) -> None:
    root = tmp_path / "root"
    Snapshotter(root, driver="naive")
    stale = root / "snapshots" / ".new-dead"
    stale.mkdir()
    (stale / "lock").touch()
    import os
    import time

    old = time.time() - 3600
    os.utime(stale, (old, old))
    Snapshotter(root, driver="naive")
    assert not stale.exists()


def test_collect_garbage_tolerates_entries_vanishing_under_it(tmp_path: Path) -> None:
    """Another process renames its ``.new-*`` staging dir (or removes a snapshot)
    between our listing and our lstat: that entry is simply not ours to collect."""
    from unittest import mock

    from layerkit.snapshot import Snapshotter

    snaps = Snapshotter(tmp_path)
    ghost = snaps.dir / ".new-ghost"
    ghost.mkdir()
    real_iterdir = Path.iterdir

    def listing_then_vanish(self: Path):  # type: ignore[no-untyped-def]
        entries = list(real_iterdir(self))
        if self == snaps.dir and ghost.exists():
            ghost.rmdir()
        return iter(entries)

    with mock.patch.object(Path, "iterdir", listing_then_vanish):
        assert snaps.collect_garbage() == []
