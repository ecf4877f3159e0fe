"""``layerkit fsck [--repair]`` on deliberately damaged stores.

Stores are made with the real pieces (ContentStore, Snapshotter, KeyStore,
ImageIndex, worker.db) in the shapes the worker writes, then damaged the way
disks and crashes damage them: a flipped byte in a blob, a deleted snapshot
directory, a truncated cache.db, a leftover temp file, an abandoned active
snapshot, a manifest that names another config.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import sqlite3
import tarfile
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from layerkit.cache.keystore import KeyStore
from layerkit.cli import cli
from layerkit.content import ContentStore, LockTimeoutError, canonical_json
from layerkit.content.images import ImageIndex
from layerkit.snapshot import Snapshotter
from layerkit.store import walk
from layerkit.store.fsck import FsckReport, fsck


def _layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Store:
    """A small but complete store: a tagged image with a manifest, a two-layer
    snapshot stack, key-store records naming them, a base-layer chain."""

    def __init__(self, root: Path) -> None:
        self.root = root
        content = ContentStore(root)
        snaps = Snapshotter(root, driver="naive")
        self.layer1 = content.write_bytes(_layer({"a": b"one" * 100})).digest
        self.layer2 = content.write_bytes(_layer({"b": b"two" * 100})).digest
        snaps.prepare("k1")
        (snaps.fs("k1") / "a").write_bytes(b"one" * 100)
        self.snap1 = snaps.commit("k1")
        snaps.prepare("k2", [self.snap1])
        (snaps.fs("k2") / "b").write_bytes(b"two" * 100)
        self.snap2 = snaps.commit("k2")
        config = canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {
            "type": "layers", "diff_ids": [self.layer1, self.layer2]}})
        self.config = content.write_bytes(config).digest
        manifest = canonical_json({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": self.config, "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": d, "size": content.size(d)}
                       for d in (self.layer1, self.layer2)]})
        self.manifest = content.write_bytes(manifest).digest
        with ImageIndex(root) as images:
            images.tag("app:latest", self.config, self.manifest)
        with KeyStore(root / "cache.db") as keys:
            for i in range(40):  # enough rows for cache.db to span several pages
                keys.put(key=f"sha256:{i:064x}", content_key=None, step_id=f"s{i}",
                         inputs={"padding": "x" * 400},
                         result={"result": {"ref": self.snap2,
                                            "meta": {"diff_id": self.layer2}}},
                         duration_s=1.0)
            keys.put(key="sha256:" + "f" * 64, content_key=None, step_id="base",
                     inputs={}, result={"result": {"ref": self.snap1,
                                                   "meta": {"diff_id": self.layer1}}},
                     duration_s=1.0)
        conn = sqlite3.connect(root / "worker.db")
        conn.execute("CREATE TABLE chains (chain_id TEXT PRIMARY KEY, snapshot TEXT NOT NULL, "
                     "diff_id TEXT NOT NULL)")
        conn.execute("INSERT INTO chains VALUES (?, ?, ?)", (self.layer1, self.snap1, self.layer1))
        conn.commit()
        conn.close()

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "root")


def kinds(report: FsckReport) -> set[str]:
    return {p.kind for p in report.problems}


def test_a_healthy_store_is_clean(store: Store) -> None:
    report = fsck(store.root)
    assert report.clean and report.problems == []
    assert report.checked["blobs"] == 4 and report.checked["snapshots"] == 2
    assert report.checked["records"] == 41 and report.checked["images"] == 1


def test_flipped_byte_in_a_layer_blob_is_found_and_repaired(store: Store) -> None:
    path = store.blob_path(store.layer2)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[700] ^= 0x01
    path.write_bytes(bytes(data))

    report = fsck(store.root)
    assert not report.clean
    corrupt = [p for p in report.problems if p.kind == "corrupt-blob"]
    assert [p.subject for p in corrupt] == [store.layer2]
    assert "broken-record" in kinds(report) and "broken-image" in kinds(report)
    assert path.exists(), "a check without --repair changes nothing"

    repaired = fsck(store.root, repair=True)
    assert repaired.clean and all(p.repaired for p in repaired.problems if p.severity != "garbage")
    assert not path.exists()
    graph = walk(store.root)
    assert graph.images == ()  # the tag named a corrupt layer: dropped
    assert [r.key for r in graph.records] == ["sha256:" + "f" * 64]  # the intact one stays
    assert fsck(store.root).problems == []


def test_deleted_snapshot_directory_breaks_its_children_and_records(store: Store) -> None:
    import shutil

    shutil.rmtree(store.root / "snapshots" / store.snap1)
    report = fsck(store.root)
    broken = {(p.kind, p.subject) for p in report.problems}
    assert ("broken-snapshot", store.snap2) in broken
    assert "broken-record" in kinds(report) and "broken-chain" in kinds(report)
    assert not report.clean

    assert fsck(store.root, repair=True).clean
    assert not (store.root / "snapshots" / store.snap2).exists()
    after = fsck(store.root)
    assert after.problems == [], after.problems
    assert walk(store.root).records == ()


def test_missing_fs_directory_is_a_corrupt_snapshot(store: Store) -> None:
    import shutil

    shutil.rmtree(store.root / "snapshots" / store.snap2 / "fs")
    report = fsck(store.root)
    assert ("corrupt-snapshot", store.snap2) in {(p.kind, p.subject) for p in report.problems}
    assert fsck(store.root, repair=True).clean
    assert fsck(store.root).problems == []


def test_truncated_cache_db_is_moved_aside(store: Store) -> None:
    db = store.root / "cache.db"
    size = db.stat().st_size
    assert size > 4 * 4096
    with open(db, "r+b") as f:
        f.truncate(size // 2)
    report = fsck(store.root)
    assert [p.subject for p in report.problems if p.kind == "corrupt-database"] == ["cache.db"]
    assert not report.clean

    assert fsck(store.root, repair=True).clean
    assert not db.exists() or KeyStore(db).all() == []
    assert list(store.root.glob("cache.db.corrupt-*")), "the damaged file is kept aside"
    assert fsck(store.root).clean
    # The image and its snapshots are untouched by the loss of the cache.
    assert [i.name for i in walk(store.root).images] == ["app:latest"]


def test_leftover_temp_file_is_garbage_not_corruption(store: Store) -> None:
    tmp = store.root / "blobs" / "tmp" / "ingest-dead.part"
    tmp.write_bytes(b"half a blob")
    report = fsck(store.root)
    assert report.clean
    assert [(p.kind, p.severity) for p in report.problems] == [("stale-temp", "garbage")]
    fsck(store.root, repair=True)
    assert not tmp.exists()


def test_abandoned_active_snapshot_is_collected_but_a_live_one_is_not(store: Store) -> None:
    dead = store.root / "snapshots" / "deadbeef0001"
    (dead / "fs").mkdir(parents=True)
    (dead / "lock").touch()
    (dead / "meta.json").write_text(json.dumps({"parents": [], "key": "x"}))
    live = store.root / "snapshots" / "cafebabe0002"
    (live / "fs").mkdir(parents=True)
    fd = os.open(live / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    (live / "meta.json").write_text(json.dumps({"parents": [store.snap1]}))
    try:
        report = fsck(store.root)
        stale = [p.subject for p in report.problems if p.kind == "stale-snapshot"]
        assert stale == ["snapshots/deadbeef0001"]
        assert report.checked["active snapshots"] == 1
        fsck(store.root, repair=True)
        assert not dead.exists() and live.exists()
        assert (store.root / "snapshots" / store.snap1 / "committed").exists()
    finally:
        os.close(fd)


def test_manifest_naming_another_config_breaks_the_image(store: Store) -> None:
    content = ContentStore(store.root)
    other = content.write_bytes(canonical_json({
        "schemaVersion": 2, "config": {"mediaType": "x", "digest": store.layer1, "size": 1},
        "layers": []})).digest
    with ImageIndex(store.root) as images:
        images.tag("bad:1", store.config, other)
    report = fsck(store.root)
    assert [p.subject for p in report.problems if p.kind == "broken-image"] == ["bad:1"]
    fsck(store.root, repair=True)
    assert [i.name for i in walk(store.root).images] == ["app:latest"]


def test_unreachable_blob_is_garbage_and_repair_collects_it(store: Store) -> None:
    orphan = ContentStore(store.root).write_bytes(b"nobody names me").digest
    report = fsck(store.root)
    assert report.clean
    assert [(p.kind, p.subject) for p in report.problems] == [("unreachable-blob", orphan)]
    fsck(store.root, repair=True)
    assert not store.blob_path(orphan).exists()
    assert store.blob_path(store.layer1).exists()


def test_fsck_waits_for_running_builds(store: Store) -> None:
    content = ContentStore(store.root)
    held = threading.Event()
    release = threading.Event()

    def build() -> None:
        with content.lease():
            held.set()
            release.wait(10)

    t = threading.Thread(target=build)
    t.start()
    try:
        held.wait(5)
        with pytest.raises(LockTimeoutError):
            fsck(store.root, lock_timeout=0)
    finally:
        release.set()
        t.join()
    assert fsck(store.root, lock_timeout=5).clean


def test_cli_exit_status_and_json(store: Store) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["fsck", "--root", str(store.root)], standalone_mode=False)
    assert ok.exit_code == 0, ok.output
    assert "store is consistent" in ok.output
    path = store.blob_path(store.config)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes() + b" ")
    bad = runner.invoke(cli, ["fsck", "--root", str(store.root), "--format", "json"])
    assert bad.exit_code == 1
    doc = json.loads(bad.output)
    assert doc["clean"] is False
    assert any(p["kind"] == "corrupt-blob" and p["subject"] == store.config
               and p["severity"] == "corrupt" and not p["repaired"] for p in doc["problems"])
    fixed = runner.invoke(cli, ["fsck", "--root", str(store.root), "--repair"])
    assert fixed.exit_code == 0, fixed.output
    assert "[repaired]" in fixed.output
