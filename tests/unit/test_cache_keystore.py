import multiprocessing
from pathlib import Path

from layerkit.cache.keystore import KeyStore


def test_put_get_and_closest(tmp_path: Path) -> None:
    with KeyStore(tmp_path / "cache.db") as store:
        store.put(key="k1", content_key="c1", step_id="s", inputs={"a": 1},
                  result={"layer": "x"}, duration_s=1.5)
        rec = store.get("k1")
        assert rec is not None and rec.inputs == {"a": 1} and rec.result == {"layer": "x"}
        assert store.get_by_content("c1") == rec
        store.put(key="k2", content_key=None, step_id="s", inputs={"a": 2},
                  result={}, duration_s=0.1)
        closest = store.closest("s")
        assert closest is not None and closest.key == "k2"
        assert store.get("missing") is None


def test_corrupt_database_is_moved_aside(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    db.write_bytes(b"this is not sqlite" * 100)
    with KeyStore(db) as store:
        assert store.all() == []
    assert list(tmp_path.glob("cache.corrupt-*"))


def _writer(path: str, n: int, worker: int) -> None:
    with KeyStore(Path(path)) as store:
        for i in range(n):
            store.put(key=f"{worker}-{i}", content_key=None, step_id="s",
                      inputs={}, result={}, duration_s=0)


def test_concurrent_writers_do_not_fail(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    KeyStore(db).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(db), 50, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with KeyStore(db) as store:
        assert len(store.all()) == 200
