"""A cache exported to a directory and imported into an empty store: records come back,
layers stay remote until asked for, and then arrive verified (nothing corrupt is kept)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from layerkit.cache.keystore import KeyStore
from layerkit.cache.remote import (
    RemoteCaches,
    RemoteResults,
    export_cache,
    is_remote,
    load_local_cache,
    parse_cache_from,
    parse_cache_to,
)
from layerkit.content.store import ContentStore
from layerkit.errors import LayerkitError
from layerkit.solver.imageconfig import ImageConfig
from layerkit.solver.result import SolveResult, StageResult, StepOutcome
from layerkit.solver.worker import StepResult


def _tar(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Build:
    """Store A after a two-stage build: stage 0 (builder) and stage 1 (final, FROM image)."""

    def __init__(self, root: Path) -> None:
        self.content = ContentStore(root)
        self.keys = KeyStore(root / "cache.db")
        self.base = self.content.write_bytes(_tar("bin/sh", b"base" * 1000)).digest
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [self.base]}}).encode()
        self.image = self.content.write_bytes(config).digest
        self.diffs = [self.content.write_bytes(_tar(f"f{i}", bytes([i]) * 5000)).digest
                      for i in range(3)]
        base_res = StepResult("snap-base", {"image": self.image})
        res = [StepResult(f"snap-{i}", {"diff_id": d, "created": "100"})
               for i, d in enumerate(self.diffs)]
        steps = []
        for stage, (from_key, own) in enumerate([("k-from0", [("k-b1", res[0])]),
                                                 ("k-from1", [("k-f1", res[1]),
                                                              ("k-f2", res[2])])]):
            self.keys.put(key=from_key, content_key=None, step_id=f"D#{stage}#0", inputs={},
                          result={"result": base_res.to_json(), "origin": from_key},
                          duration_s=0.1)
            steps.append(StepOutcome(str(stage), stage, 0, "FROM base", "ran", "", 0.1,
                                     len(steps) + 1, from_key))
            for i, (key, r) in enumerate(own, start=1):
                self.keys.put(key=key, content_key=f"c-{key}", step_id=f"D#{stage}#{i}",
                              inputs={"instruction": key}, duration_s=2.0,
                              result={"result": r.to_json(), "origin": key})
                steps.append(StepOutcome(str(stage), stage, i, key, "ran", "", 2.0,
                                         len(steps) + 1, key))
        self.result = SolveResult(1, {
            0: StageResult(0, "builder", "k-b1", res[0], ImageConfig(), (res[0],), base_res),
            1: StageResult(1, None, "k-f2", res[2], ImageConfig(), (res[1], res[2]), base_res),
        }, tuple(steps))

    def export(self, dest: Path, mode: str) -> None:
        caches = RemoteCaches(self.content)
        records = caches.records(self.result, self.keys, mode)
        export_cache(parse_cache_to(f"type=local,dest={dest},mode={mode}"), records,
                     self.content)


@pytest.fixture
def built(tmp_path: Path) -> _Build:
    return _Build(tmp_path / "a")


def test_min_exports_the_final_stage_and_max_every_stage(built: _Build, tmp_path: Path) -> None:
    for mode, expected in [("min", {"k-from1", "k-f1", "k-f2"}),
                           ("max", {"k-from0", "k-b1", "k-from1", "k-f1", "k-f2"})]:
        dest = tmp_path / mode
        built.export(dest, mode)
        cache = load_local_cache(dest, RemoteResults(ContentStore(tmp_path / f"b-{mode}")))
        assert cache.problem is None
        assert {r.key for r in cache.records()} == expected


def test_import_downloads_nothing_until_a_chain_is_needed(built: _Build, tmp_path: Path) -> None:
    built.export(tmp_path / "cache", "max")
    store_b = ContentStore(tmp_path / "b")
    results = RemoteResults(store_b)
    cache = load_local_cache(tmp_path / "cache", results)
    rec = cache.get("k-f2")
    assert rec is not None and cache.get_by_content("c-k-f2") is not None
    ref = rec.result["result"]["ref"]
    assert is_remote(ref) and results.knows(ref)
    assert rec.result["result"]["meta"]["diff_id"] == built.diffs[2]
    assert not any(store_b.has(d) for d in [built.base, *built.diffs])
    assert results.downloaded == []

    diff_ids = results.ensure_chain(ref)
    assert diff_ids == (built.base, built.diffs[1], built.diffs[2])
    assert all(store_b.verify(d) for d in diff_ids)
    assert not store_b.has(built.diffs[0])  # the builder stage's layer: not needed
    assert len(results.downloaded) == 3
    results.ensure_chain(ref)  # already there: nothing more
    assert len(results.downloaded) == 3


def test_a_corrupt_blob_is_an_error_and_nothing_is_kept(built: _Build, tmp_path: Path) -> None:
    built.export(tmp_path / "cache", "min")
    store_b = ContentStore(tmp_path / "b")
    results = RemoteResults(store_b)
    rec = load_local_cache(tmp_path / "cache", results).get("k-f1")
    assert rec is not None
    top = results.chain(rec.result["result"]["ref"])[-1]
    blob = tmp_path / "cache" / "blobs" / "sha256" / top.blob.removeprefix("sha256:")
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    with pytest.raises(LayerkitError):
        results.ensure_chain(rec.result["result"]["ref"])
    assert not store_b.has(top.blob) and not store_b.has(top.diff_id)
    assert list((tmp_path / "b" / "blobs" / "tmp").glob("*")) == []


def test_missing_cache_is_a_warning_not_an_error(tmp_path: Path) -> None:
    caches = RemoteCaches(ContentStore(tmp_path / "b"),
                          cache_from=[parse_cache_from(f"type=local,src={tmp_path}/none")])
    sources = caches.load()
    assert len(sources) == 1 and len(sources[0]) == 0
    assert "not found" in caches.warnings[0]


def test_reexport_from_an_imported_cache_needs_no_download(built: _Build, tmp_path: Path) -> None:
    """Store B hit everything remotely; exporting again reuses the remote blobs."""
    built.export(tmp_path / "cache", "max")
    store_b = ContentStore(tmp_path / "b")
    keys_b = KeyStore(tmp_path / "b" / "cache.db")
    caches = RemoteCaches(store_b, cache_from=[parse_cache_from(
        f"type=local,src={tmp_path / 'cache'}")])
    caches.load()
    remote_results = {k: StepResult.from_json(caches.lookup(keys_b)(k).result["result"])
                      for k in ("k-f1", "k-f2", "k-from1")}  # type: ignore[union-attr]
    result = SolveResult(1, {1: StageResult(
        1, None, "k-f2", remote_results["k-f2"], ImageConfig(),
        (remote_results["k-f1"], remote_results["k-f2"]), remote_results["k-from1"])},
        built.result.steps[2:])
    records = caches.records(result, keys_b, "min")
    assert {r.record.key for r in records} == {"k-from1", "k-f1", "k-f2"}
    export_cache(parse_cache_to(f"type=local,dest={tmp_path / 'again'}"), records, store_b,
                 remote=caches.results)
    again = load_local_cache(tmp_path / "again", RemoteResults(ContentStore(tmp_path / "c")))
    assert {r.key for r in again.records()} == {"k-from1", "k-f1", "k-f2"}
    # blobs were copied from the first cache into the new one: that needed downloads
    # into store B only for the copy, never a decompression
    assert not store_b.has(built.diffs[1])
