"""Reachability, prune policies, crash order, concurrency and du on a real store layout.

Stores are made with the real pieces (ContentStore, Snapshotter with the naive
driver, KeyStore, ImageIndex, the worker's chains table) in the shapes the
worker writes: ``result = {"result": {"ref": <snapshot>, "meta": {"diff_id": ...}}}``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import time
from pathlib import Path

import pytest

from layerkit.cache.keystore import KeyStore
from layerkit.content import ContentStore, LockTimeoutError, canonical_json
from layerkit.content.images import ImageIndex
from layerkit.snapshot import Snapshotter
from layerkit.store import PruneOptions, disk_usage, plan_prune, prune, walk
from layerkit.store.pruning import execute_plan
from layerkit.store.reachability import chain_ids
from layerkit.store.usage import tree_size

DAY = 86400.0


class Fixture:
    """A store root with helpers to add what builds leave behind."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.content = ContentStore(root)
        self.snaps = Snapshotter(root, driver="naive")
        self.keys = KeyStore(root / "cache.db")
        self.images = ImageIndex(root)
        self.n = 0

    def snapshot(self, parent: str | None = None, size: int = 10_000) -> str:
        self.n += 1
        key = f"k{self.n}"
        self.snaps.prepare(key, [parent] if parent else [])
        (self.snaps.fs(key) / f"file{self.n}").write_bytes(os.urandom(size))
        return self.snaps.commit(key)

    def blob(self, size: int = 5_000) -> str:
        return self.content.write_bytes(os.urandom(size)).digest

    def record(self, key: str, sid: str | None, diff_id: str | None, *, age: float = 0.0,
               **meta: str) -> None:
        result = None
        if sid is not None:
            m = dict(meta)
            if diff_id is not None:
                m["diff_id"] = diff_id
            result = {"ref": sid, "meta": m}
        self.keys.put(key=key, content_key=None, step_id=f"step-{key}", inputs={},
                      result={"result": result, "origin": key}, duration_s=1.0)
        conn = sqlite3.connect(self.root / "cache.db")
        conn.execute("UPDATE steps SET last_used=? WHERE key=?", (time.time() - age, key))
        conn.commit()
        conn.close()

    def image(self, name: str, diff_ids: list[str]) -> str:
        config = canonical_json({"architecture": "amd64", "os": "linux",
                                 "rootfs": {"type": "layers", "diff_ids": diff_ids}})
        digest = self.content.write_bytes(config).digest
        self.images.tag(name, digest)
        return digest

    def chain(self, chain_id: str, sid: str, diff_id: str) -> None:
        conn = sqlite3.connect(self.root / "worker.db")
        conn.execute("CREATE TABLE IF NOT EXISTS chains (chain_id TEXT PRIMARY KEY, "
                     "snapshot TEXT NOT NULL, diff_id TEXT NOT NULL)")
        conn.execute("INSERT OR REPLACE INTO chains VALUES (?, ?, ?)", (chain_id, sid, diff_id))
        conn.commit()
        conn.close()

    def keys_left(self) -> set[str]:
        return {r.key for r in self.keys.all()}


@pytest.fixture
def fx(tmp_path: Path) -> Fixture:
    return Fixture(tmp_path / "root")


def test_default_prune_removes_dangling_cache_and_keeps_tagged_images(fx: Fixture) -> None:
    # a tagged image built in two steps, and a dangling intermediate stage
    s1, d1 = fx.snapshot(), fx.blob()
    s2, d2 = fx.snapshot(s1), fx.blob()
    fx.record("img-1", s1, d1)
    fx.record("img-2", s2, d2)
    image_id = fx.image("app:latest", [d1, d2])
    s3, d3 = fx.snapshot(), fx.blob()
    fx.record("stage-1", s3, d3)
    fx.record("meta-only", None, None)  # a step with no filesystem result
    fx.record("broken", "gone123", d1)  # its snapshot was removed: a miss already
    orphan = fx.blob()

    plan = prune(fx.root, PruneOptions())

    assert fx.keys_left() == {"img-1", "img-2", "meta-only"}
    assert {r.key for r in plan.records} == {"stage-1", "broken"}
    assert set(fx.snaps.committed()) == {s1, s2}
    assert plan.snapshots == [s3]
    for digest in (d1, d2, image_id):
        assert fx.content.has(digest)
    assert not fx.content.has(d3) and not fx.content.has(orphan)
    assert set(plan.blobs) == {d3, orphan}
    assert plan.blob_bytes == 10_000
    assert plan.snapshot_bytes >= 10_000


def test_all_removes_every_record_but_keeps_tagged_blobs(fx: Fixture) -> None:
    s1, d1 = fx.snapshot(), fx.blob()
    fx.record("img-1", s1, d1)
    image_id = fx.image("app:latest", [d1])
    fx.record("meta-only", None, None)
    prune(fx.root, PruneOptions(all=True))
    assert fx.keys_left() == set()
    assert fx.snaps.committed() == []
    assert fx.content.has(d1) and fx.content.has(image_id)
    assert set(fx.content.iter_digests()) == {d1, image_id}


def test_until_only_prunes_cache_last_used_before(fx: Fixture) -> None:
    s1, d1 = fx.snapshot(), fx.blob()
    s2, d2 = fx.snapshot(s1), fx.blob()
    s3, d3 = fx.snapshot(), fx.blob()
    fx.record("old-parent", s1, d1, age=3 * DAY)
    fx.record("recent-child", s2, d2, age=3600)
    fx.record("old", s3, d3, age=2 * DAY)
    prune(fx.root, PruneOptions(until=24 * 3600))
    assert fx.keys_left() == {"recent-child"}
    # the child's snapshot stacks on s1: the parent's snapshot stays though its record went
    assert set(fx.snaps.committed()) == {s1, s2}
    assert fx.content.has(d2) and not fx.content.has(d1) and not fx.content.has(d3)


def test_until_protects_young_garbage(fx: Fixture) -> None:
    young = fx.blob()
    old = fx.blob()
    os.utime(fx.content.path(old), (time.time() - 2 * DAY, time.time() - 2 * DAY))
    prune(fx.root, PruneOptions(until=DAY))
    assert fx.content.has(young) and not fx.content.has(old)


def test_keep_storage_keeps_the_most_recently_used(fx: Fixture) -> None:
    units = []
    for i, age in enumerate([5 * DAY, 3 * DAY, DAY, 60.0]):
        sid, blob = fx.snapshot(size=100_000), fx.blob(50_000)
        fx.record(f"r{i}", sid, blob, age=age)
        units.append((sid, blob))
    each = tree_size(fx.root / "snapshots" / units[0][0]) + 50_000
    # room for two and a half units: the two most recent stay
    plan = prune(fx.root, PruneOptions(keep_storage=int(each * 2.5)))
    assert fx.keys_left() == {"r2", "r3"}
    assert {r.key for r in plan.records} == {"r0", "r1"}
    assert set(fx.snaps.committed()) == {units[2][0], units[3][0]}
    assert plan.reclaimed == 2 * each
    # what is left fits in the budget
    left = sum(k.size for k in disk_usage(fx.root).kinds if k.kind in ("blobs", "snapshots"))
    assert left <= each * 2.5


def test_keep_storage_larger_than_the_cache_removes_nothing(fx: Fixture) -> None:
    sid, blob = fx.snapshot(), fx.blob()
    fx.record("r", sid, blob, age=10 * DAY)
    plan = prune(fx.root, PruneOptions(all=True, keep_storage=10 * 1024**3))
    assert plan.records == [] and fx.keys_left() == {"r"}


def test_base_image_chains_follow_the_image(fx: Fixture) -> None:
    layer = fx.blob()
    sid = fx.snapshot()
    fx.chain(chain_ids([layer])[0], sid, layer)
    config_digest = fx.image("busybox:latest", [layer])
    fx.record("from", sid, None, image=config_digest)
    prune(fx.root, PruneOptions())
    assert fx.snaps.committed() == [sid], "a tagged image's unpacked layers are kept"
    prune(fx.root, PruneOptions(all=True))
    assert fx.snaps.committed() == []
    rows = sqlite3.connect(fx.root / "worker.db").execute("SELECT * FROM chains").fetchall()
    assert rows == [], "the chain row goes with its snapshot"
    assert fx.content.has(layer)


def test_record_naming_a_base_config_keeps_its_layers(fx: Fixture) -> None:
    layer = fx.blob()
    config = canonical_json({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [layer]}})
    config_digest = fx.content.write_bytes(config).digest  # an untagged base image
    sid = fx.snapshot()
    fx.record("from", sid, None, image=config_digest)
    graph = walk(fx.root)
    [rec] = graph.records
    assert rec.blobs == {config_digest, layer} and not rec.missing
    prune(fx.root, PruneOptions(all=True, until=DAY))  # the record is recent: kept
    assert fx.content.has(layer) and fx.content.has(config_digest)


def test_other_digests_in_meta_do_not_break_a_record(fx: Fixture) -> None:
    sid, blob = fx.snapshot(), fx.blob()
    fx.record("local", sid, blob, local="sha256:" + "ab" * 32)
    [rec] = walk(fx.root).records
    assert rec.missing == () and rec.blobs == {blob}


def test_snapshots_under_a_running_step_are_kept(fx: Fixture) -> None:
    parent = fx.snapshot()
    fx.snaps.prepare("running", [parent])  # a step in progress in this process
    prune(fx.root, PruneOptions(all=True))
    assert fx.snaps.committed() == [parent]
    fx.snaps.remove("running")


def test_cache_mounts_go_with_all_unless_in_use(fx: Fixture) -> None:
    import fcntl

    mounts = fx.root / "cachemounts"
    for name in ("idle", "busy"):
        (mounts / name / "data").mkdir(parents=True)
        (mounts / name / "data" / "pkg").write_bytes(b"x" * 1000)
    fd = os.open(mounts / "busy" / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_SH)  # a RUN with a shared cache mount
    try:
        plan = prune(fx.root, PruneOptions())
        assert plan.cache_mounts == [] and (mounts / "idle").is_dir()
        plan = prune(fx.root, PruneOptions(all=True))
        assert [m.name for m in plan.cache_mounts] == ["idle"]
        assert not (mounts / "idle").exists() and (mounts / "busy" / "data" / "pkg").is_file()
        assert plan.cache_mount_bytes == 1000
    finally:
        os.close(fd)


def test_a_crash_after_deleting_records_leaves_only_garbage(
        fx: Fixture, monkeypatch: pytest.MonkeyPatch) -> None:
    sid, blob = fx.snapshot(), fx.blob()
    fx.record("r", sid, blob)

    def crash(*_: object) -> list[str]:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr("layerkit.store.pruning._delete_snapshots", crash)
    with pytest.raises(KeyboardInterrupt):
        prune(fx.root, PruneOptions())
    # The record went first: nothing a build would trust names the leftovers.
    assert fx.keys_left() == set()
    assert fx.snaps.committed() == [sid] and fx.content.has(blob)
    monkeypatch.undo()
    prune(fx.root, PruneOptions())
    assert fx.snaps.committed() == [] and not fx.content.has(blob)


def _hold_lease(root: str, ready: multiprocessing.synchronize.Event,
                release: multiprocessing.synchronize.Event) -> None:
    """A build: write blobs under the lease, signal, and tag them only later."""
    content = ContentStore(Path(root))
    with content.lease():
        layer = content.write_bytes(b"layer written by a build").digest
        config = canonical_json({"architecture": "amd64", "os": "linux",
                                 "rootfs": {"type": "layers", "diff_ids": [layer]}})
        digest = content.write_bytes(config).digest
        ready.set()
        release.wait(30)
        ImageIndex(Path(root)).tag("built:latest", digest)


def test_prune_waits_for_a_lease_and_never_takes_what_it_protects(fx: Fixture) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lease, args=(str(fx.root), ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        with pytest.raises(LockTimeoutError):
            prune(fx.root, PruneOptions(all=True), lock_timeout=0.3)
        assert len(list(fx.content.iter_digests())) == 2, "nothing removed while leased"
        waited: list[bool] = []

        def on_wait() -> None:
            waited.append(True)
            release.set()  # the build finishes while prune waits

        plan = prune(fx.root, PruneOptions(all=True), lock_timeout=30, on_wait=on_wait)
        assert waited == [True]
        assert plan.blobs == []
        record = fx.images.get("built:latest")
        assert record is not None and fx.content.has(record.config_digest)
    finally:
        release.set()
        proc.join(30)
    assert proc.exitcode == 0


def test_dry_run_deletes_nothing(fx: Fixture) -> None:
    sid, blob = fx.snapshot(), fx.blob()
    fx.record("r", sid, blob)
    plan = prune(fx.root, PruneOptions(), dry_run=True)
    assert [r.key for r in plan.records] == ["r"] and plan.snapshots == [sid]
    assert fx.keys_left() == {"r"} and fx.snaps.committed() == [sid]


def _independent_du(root: Path) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def test_du_adds_up_and_reclaimable_matches_prune_all(fx: Fixture) -> None:
    s1, d1 = fx.snapshot(), fx.blob()
    fx.record("kept-by-image", s1, d1)
    fx.image("app:latest", [d1])
    s2, d2 = fx.snapshot(s1), fx.blob(7_000)
    fx.record("dangling", s2, d2)
    (fx.root / "cachemounts" / "c1" / "data").mkdir(parents=True)
    (fx.root / "cachemounts" / "c1" / "data" / "f").write_bytes(b"y" * 3000)
    fx.keys.close()
    fx.images.close()

    usage = disk_usage(fx.root)
    assert usage.total == sum(k.size for k in usage.kinds)
    assert usage.total == _independent_du(fx.root)
    assert usage.of("snapshots").count == 2 and usage.of("key store").count == 2
    assert usage.of("cache mounts").size == 3000
    assert usage.of("blobs").size == sum(
        (fx.root / "blobs" / "sha256" / d[7:]).stat().st_size
        for d in fx.content.iter_digests())

    expected = {k.kind: k.reclaimable for k in usage.kinds}
    plan = prune(fx.root, PruneOptions(all=True))
    assert plan.blob_bytes == expected["blobs"] == 7_000  # the image's blobs are not
    assert plan.snapshot_bytes == expected["snapshots"]
    assert plan.cache_mount_bytes == expected["cache mounts"] == 3000
    after = disk_usage(fx.root)
    assert after.of("snapshots").size == 0 and after.of("cache mounts").size == 0
    assert after.of("blobs").reclaimable == 0
    assert after.of("key store").size < usage.of("key store").size or \
        after.of("key store").size <= 64 * 1024


def test_plan_is_pure(fx: Fixture) -> None:
    sid, blob = fx.snapshot(), fx.blob()
    fx.record("r", sid, blob)
    graph = walk(fx.root)
    before = json.dumps(sorted(os.listdir(fx.root / "blobs" / "sha256")))
    plan = plan_prune(graph, PruneOptions(all=True))
    assert plan.records and before == json.dumps(sorted(os.listdir(fx.root / "blobs" / "sha256")))
    execute_plan(graph.paths, plan)
    assert not fx.content.has(blob)
