"""CompressionIndex: a cache of compressed layer blobs that is never trusted blindly."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerkit.content.compression_index import CompressionIndex
from layerkit.content.digest import BlobInfo, sha256_digest
from layerkit.content.store import ContentStore


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "root")


def test_put_get_and_reverse_lookup(store: ContentStore) -> None:
    index = CompressionIndex(store)
    diff_id = sha256_digest(b"plain")
    blob = store.write_bytes(b"compressed")
    assert index.get(diff_id, "gzip-6-isal") is None
    index.put(diff_id, "gzip-6-isal", blob)
    assert index.get(diff_id, "gzip-6-isal") == blob
    assert index.get(diff_id, "zstd-3") is None
    assert index.diff_id_of(blob.digest) == diff_id
    assert index.compressed_for({diff_id}) == {blob.digest}
    # A second instance (another process) sees the same data.
    assert CompressionIndex(store).get(diff_id, "gzip-6-isal") == blob


def test_entry_for_pruned_or_changed_blob_is_a_miss(store: ContentStore) -> None:
    index = CompressionIndex(store)
    diff_id = sha256_digest(b"plain")
    blob = store.write_bytes(b"compressed")
    index.put(diff_id, "v", BlobInfo(blob.digest, blob.size + 1))
    assert index.get(diff_id, "v") is None  # size disagrees with the store
    index.put(diff_id, "v", blob)
    store.delete(blob.digest)
    assert index.get(diff_id, "v") is None  # blob pruned


def test_corrupt_database_behaves_as_empty_and_recovers(store: ContentStore) -> None:
    index = CompressionIndex(store)
    index.path.write_bytes(b"this is not an sqlite database" * 100)
    diff_id = sha256_digest(b"plain")
    assert index.get(diff_id, "v") is None
    blob = store.write_bytes(b"compressed")
    index.put(diff_id, "v", blob)
    assert index.get(diff_id, "v") == blob
