"""ContentStore: verified writes, atomic commit, locking against gc, crash safety."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from layerkit.content.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    InvalidDigestError,
    LockTimeoutError,
)
from layerkit.content.locks import exclusive_lock, shared_lock
from layerkit.content.store import ContentStore


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "root", lock_timeout=5.0)


def tmp_files(store: ContentStore) -> list[str]:
    return sorted(os.listdir(store.tmp_dir))


def test_layout_on_disk(store: ContentStore) -> None:
    info = store.write_bytes(b"hello")
    hexpart = hashlib.sha256(b"hello").hexdigest()
    assert info.digest == f"sha256:{hexpart}" and info.size == 5
    assert (store.root / "blobs" / "sha256" / hexpart).read_bytes() == b"hello"
    assert (store.root / "locks").is_dir()
    # Committed blobs are read-only so nothing edits them in place by accident.
    assert (store.path(info.digest).stat().st_mode & 0o222) == 0


def test_read_back(store: ContentStore) -> None:
    info = store.write_bytes(b"abc" * 1000)
    assert store.has(info.digest)
    assert store.read_bytes(info.digest) == b"abc" * 1000
    with store.open(info.digest) as f:
        assert f.read(3) == b"abc"
    assert store.info(info.digest) == info
    assert list(store.iter_digests()) == [info.digest]
    assert store.verify(info.digest)
    assert store.disk_usage() == 3000


def test_missing_blob_errors_are_diagnostic(store: ContentStore) -> None:
    missing = digest_of(b"nope")
    assert not store.has(missing)
    assert not store.verify(missing)
    with pytest.raises(BlobNotFoundError) as exc:
        store.path(missing)
    assert missing in exc.value.message and exc.value.hint
    with pytest.raises(BlobNotFoundError):
        store.open(missing)


@pytest.mark.parametrize("bad", ["sha256:abc", "md5:" + "a" * 32, "sha256:" + "A" * 64, "x"])
def test_invalid_digests_are_refused(store: ContentStore, bad: str) -> None:
    with pytest.raises(InvalidDigestError):
        store.has(bad)
    with pytest.raises(InvalidDigestError):
        store.write_bytes(b"x", expected_digest=bad)


def test_writer_streams_and_verifies(store: ContentStore) -> None:
    chunks = [os.urandom(4096) for _ in range(10)]
    data = b"".join(chunks)
    with store.writer(expected_digest=digest_of(data), expected_size=len(data)) as w:
        for chunk in chunks:
            w.write(chunk)
        assert w.tell() == len(data)
        # Until commit, the blob is only a temp file beside the store.
        assert not store.has(digest_of(data))
        assert len(tmp_files(store)) == 1
    assert w.info.digest == digest_of(data)
    assert store.read_bytes(w.info.digest) == data
    assert tmp_files(store) == []


def test_digest_mismatch_leaves_nothing(store: ContentStore) -> None:
    wrong = digest_of(b"other")
    with pytest.raises(DigestMismatchError) as exc:
        store.write_bytes(b"payload", expected_digest=wrong)
    assert wrong in exc.value.message
    assert list(store.iter_digests()) == []
    assert tmp_files(store) == []


def test_size_mismatch_leaves_nothing(store: ContentStore) -> None:
    with pytest.raises(DigestMismatchError, match="size mismatch"), store.writer(
        expected_size=3
    ) as w:
        w.write(b"four")
    assert list(store.iter_digests()) == []
    assert tmp_files(store) == []


def test_exception_in_writer_block_commits_nothing(store: ContentStore) -> None:
    with pytest.raises(RuntimeError), store.writer() as w:
        w.write(b"partial")
        raise RuntimeError("source failed")
    assert list(store.iter_digests()) == []
    assert tmp_files(store) == []


def test_rewriting_existing_blob_is_harmless(store: ContentStore) -> None:
    a = store.write_bytes(b"same")
    b = store.write_bytes(b"same", expected_digest=a.digest)
    assert a == b and list(store.iter_digests()) == [a.digest]


def test_ingest_copy_and_move(store: ContentStore, tmp_path: Path) -> None:
    src = tmp_path / "layer.tar"
    src.write_bytes(b"copy me")
    copied = store.ingest_file(src)
    assert src.exists() and store.read_bytes(copied.digest) == b"copy me"

    src.write_bytes(b"move me")
    moved = store.ingest_file(src, move=True, expected_digest=digest_of(b"move me"))
    assert not src.exists()
    assert store.verify(moved.digest)


def test_ingest_move_with_wrong_digest_keeps_source(store: ContentStore, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"data")
    with pytest.raises(DigestMismatchError):
        store.ingest_file(src, move=True, expected_digest=digest_of(b"else"))
    assert src.read_bytes() == b"data"
    assert list(store.iter_digests()) == []


def test_verify_detects_corruption(store: ContentStore) -> None:
    info = store.write_bytes(b"good bytes")
    target = store.path(info.digest)
    target.chmod(0o644)
    target.write_bytes(b"bad bytes!")
    assert not store.verify(info.digest)


def test_delete(store: ContentStore) -> None:
    info = store.write_bytes(b"gone soon")
    assert store.delete(info.digest)
    assert not store.has(info.digest)
    assert not store.delete(info.digest)


def test_gc_frees_unreferenced_blobs_and_stale_temp_files(store: ContentStore) -> None:
    keep = store.write_bytes(b"keep me")
    drop1 = store.write_bytes(b"drop" * 10)
    drop2 = store.write_bytes(b"x")
    stale = store.tmp_dir / "ingest-crashed.part"
    stale.write_bytes(b"12345")
    freed = store.gc({keep.digest})
    assert freed == drop1.size + drop2.size + 5
    assert list(store.iter_digests()) == [keep.digest]
    assert tmp_files(store) == []
    assert store.gc({keep.digest}) == 0


def test_gc_waits_for_active_writers(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "root", lock_timeout=0.2)
    entered, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_writer() -> None:
        try:
            with store.writer() as w:
                w.write(b"in flight")
                entered.set()
                release.wait(10)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=slow_writer)
    t.start()
    assert entered.wait(10)
    with pytest.raises(LockTimeoutError) as exc:
        store.gc(set())
    assert "gc.lock" in exc.value.message and exc.value.hint
    release.set()
    t.join(10)
    assert errors == []
    # The writer committed; gc can now run and, with no roots, collects it.
    assert store.gc(set()) == len(b"in flight")


def test_lease_blocks_gc(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "root", lock_timeout=0.1)
    info = store.write_bytes(b"about to be referenced")
    with store.lease(), pytest.raises(LockTimeoutError):
        store.gc(set())
    assert store.has(info.digest)


def test_concurrent_writers_of_same_content(store: ContentStore) -> None:
    data = os.urandom(256 * 1024)
    results: list[str] = []

    def write() -> None:
        results.append(store.write_bytes(data).digest)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results) == {digest_of(data)}
    assert store.verify(digest_of(data))
    assert tmp_files(store) == []


def _run_child(code: str, root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), str(root)],
        stdout=subprocess.PIPE,
    )


def test_locks_are_shared_across_processes_and_die_with_the_holder(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    child = _run_child(
        """
        import sys, time
        from pathlib import Path
        from layerkit.content.locks import exclusive_lock
        with exclusive_lock(Path(sys.argv[1]), "gc"):
            print("locked", flush=True)
            time.sleep(60)
        """,
        locks,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"locked"
        with pytest.raises(LockTimeoutError, match="shared lock"), shared_lock(
            locks, "gc", timeout=0.2
        ):
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # The kernel released the lock when the holder died: no stale lock.
    with exclusive_lock(locks, "gc", timeout=2.0):
        pass


def test_sigkill_during_writes_never_leaves_a_partial_blob(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ContentStore(root)
    for delay in (0.05, 0.15, 0.3, 0.5):
        child = _run_child(
            """
            import os, sys
            from pathlib import Path
            from layerkit.content.store import ContentStore
            store = ContentStore(Path(sys.argv[1]))
            print("ready", flush=True)
            while True:
                with store.writer() as w:
                    for _ in range(64):
                        w.write(os.urandom(16384))
            """,
            root,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        store = ContentStore(root)
        for digest in store.iter_digests():
            assert store.verify(digest), f"partial blob {digest} after SIGKILL"
    store = ContentStore(root)
    blobs = list(store.iter_digests())
    store.gc(set(blobs))
    assert tmp_files(store) == []
    assert list(store.iter_digests()) == blobs


def test_lock_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError), exclusive_lock(tmp_path, "../escape"):
        pass


def test_ingest_with_a_known_digest_moves_without_rereading(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "root")
    src = tmp_path / "blob"
    src.write_bytes(b"layer bytes")
    digest = "sha256:" + hashlib.sha256(b"layer bytes").hexdigest()
    info = store.ingest_file(src, move=True, expected_digest=digest, digest_known=True)
    assert info.digest == digest and info.size == len(b"layer bytes")
    assert store.read_bytes(digest) == b"layer bytes" and not src.exists()
