"""load_archive: docker-archive and oci-archive tars into the store, verified."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from layerkit.content import mediatypes as mt
from layerkit.content.digest import sha256_digest
from layerkit.content.errors import DigestMismatchError
from layerkit.content.oci import Descriptor, ImageConfig, ImageIndex, ImageManifest, RootFS
from layerkit.content.store import ContentStore
from layerkit.exporter import (
    ArchiveError,
    ExportImage,
    export_docker_archive,
    export_oci_layout,
    load_archive,
)


def layer_tar(content: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def write_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


LAYERS = [layer_tar(b"one"), layer_tar(b"two" * 1000)]
DIFF_IDS = tuple(sha256_digest(x) for x in LAYERS)
CONFIG = ImageConfig(architecture="arm64", os="linux", rootfs=RootFS(DIFF_IDS)).to_json()


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "store")


def legacy_docker_archive(tmp_path: Path, layers: list[bytes] | None = None) -> Path:
    """The pre-25 `docker save` shape: <id>/layer.tar (here gzipped) and <hex>.json."""
    layers = LAYERS if layers is None else layers
    config_name = f"{sha256_digest(CONFIG)[7:]}.json"
    manifest = [{
        "Config": config_name,
        "RepoTags": ["example/app:1"],
        "Layers": [f"l{i}/layer.tar" for i in range(len(layers))],
    }]
    files = {config_name: CONFIG, "manifest.json": json.dumps(manifest).encode()}
    for i, data in enumerate(layers):
        files[f"l{i}/layer.tar"] = gzip.compress(data) if i == 0 else data
    return write_tar(tmp_path / "legacy.tar", files)


def test_legacy_docker_archive_loads_and_verifies(tmp_path: Path, store: ContentStore) -> None:
    [image] = load_archive(legacy_docker_archive(tmp_path), store)
    assert image.config_digest == sha256_digest(CONFIG)
    assert image.diff_ids == DIFF_IDS
    assert image.repo_tags == ("example/app:1",)
    assert store.read_bytes(image.config_digest) == CONFIG  # exact bytes
    assert [store.read_bytes(d) for d in DIFF_IDS] == LAYERS  # stored uncompressed


def test_corrupt_layer_is_rejected_and_not_stored(tmp_path: Path, store: ContentStore) -> None:
    bad = legacy_docker_archive(tmp_path, [LAYERS[0], layer_tar(b"tampered")])
    with pytest.raises(DigestMismatchError):
        load_archive(bad, store)
    assert not store.has(DIFF_IDS[1])
    assert os.listdir(store.tmp_dir) == []


def test_config_whose_name_lies_is_rejected(tmp_path: Path, store: ContentStore) -> None:
    name = "a" * 64 + ".json"
    manifest = [{"Config": name, "RepoTags": [], "Layers": []}]
    empty = ImageConfig(architecture="amd64", os="linux", rootfs=RootFS(())).to_json()
    files = {name: empty, "manifest.json": json.dumps(manifest).encode()}
    path = write_tar(tmp_path / "x.tar", files)
    with pytest.raises(DigestMismatchError):
        load_archive(path, store)


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"manifest.json": b"{not json"}, "not JSON"),
        ({"manifest.json": b"{}"}, "not a list"),
        ({"manifest.json": b'[{"Config": "missing.json", "Layers": []}]'}, "no file"),
        ({"other": b""}, "neither manifest.json"),
        ({"index.json": b'{"schemaVersion": 2}'}, "index.json"),
    ],
)
def test_malformed_archives_are_diagnosed(
    tmp_path: Path, store: ContentStore, files: dict[str, bytes], fragment: str
) -> None:
    with pytest.raises(ArchiveError) as exc:
        load_archive(write_tar(tmp_path / "bad.tar", files), store)
    assert fragment in exc.value.message


def test_not_a_tar(tmp_path: Path, store: ContentStore) -> None:
    path = tmp_path / "junk.tar"
    path.write_bytes(b"\0garbage" * 10)
    with pytest.raises(ArchiveError, match="not a readable tar"):
        load_archive(path, store)


def test_layer_count_must_match_config(tmp_path: Path, store: ContentStore) -> None:
    with pytest.raises(ArchiveError, match="diff_ids"):
        load_archive(legacy_docker_archive(tmp_path, LAYERS[:1]), store)


def oci_archive(tmp_path: Path, *, corrupt_layer: bool = False, nested: bool = False) -> Path:
    blobs: dict[str, bytes] = {}

    def add(data: bytes) -> str:
        digest = sha256_digest(data)
        blobs[f"blobs/sha256/{digest[7:]}"] = data
        return digest

    layer_blobs = [gzip.compress(x, mtime=0) for x in LAYERS]
    layers = [Descriptor(mt.OCI_LAYER_GZIP, add(b), len(b)) for b in layer_blobs]
    if corrupt_layer:
        name = f"blobs/sha256/{layers[1].digest[7:]}"
        blobs[name] = gzip.compress(LAYERS[1], mtime=0, compresslevel=1)
    config = Descriptor(mt.OCI_CONFIG, add(CONFIG), len(CONFIG))
    manifest = ImageManifest(config=config, layers=tuple(layers)).to_json()
    top = Descriptor(mt.OCI_MANIFEST, add(manifest), len(manifest),
                     annotations={mt.ANNOTATION_REF_NAME: "v1"})
    if nested:
        inner = ImageIndex(manifests=(top,)).to_json()
        top = Descriptor(mt.OCI_INDEX, add(inner), len(inner),
                         annotations={mt.ANNOTATION_REF_NAME: "v1"})
    files = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": ImageIndex(manifests=(top,)).to_json(),
        **blobs,
    }
    return write_tar(tmp_path / "oci.tar", files)


@pytest.mark.parametrize("nested", [False, True])
def test_oci_archive_loads(tmp_path: Path, store: ContentStore, nested: bool) -> None:
    [image] = load_archive(oci_archive(tmp_path, nested=nested), store)
    assert image.diff_ids == DIFF_IDS
    assert image.config_digest == sha256_digest(CONFIG)
    assert image.ref_name == "v1"
    assert [store.read_bytes(d) for d in DIFF_IDS] == LAYERS


def test_oci_archive_checks_compressed_digest(tmp_path: Path, store: ContentStore) -> None:
    """The uncompressed bytes are right, but the blob is not the one the manifest names."""
    with pytest.raises(DigestMismatchError):
        load_archive(oci_archive(tmp_path, corrupt_layer=True), store)
    assert not store.has(DIFF_IDS[1])


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_own_exports_round_trip(tmp_path: Path, compression: str) -> None:
    source = ContentStore(tmp_path / "src")
    for data in LAYERS:
        source.write_bytes(data)
    image = ExportImage.create(CONFIG)
    export_oci_layout(source, image, tmp_path / "o.tar", tags=["app:2"], tar=True,
                      compression=compression)
    export_docker_archive(source, image, tmp_path / "d.tar", tags=["app:2"])
    for name, tags in (("o.tar", ("docker.io/library/app:2",)), ("d.tar", ("app:2",))):
        target = ContentStore(tmp_path / f"dst-{name}")
        [loaded] = load_archive(tmp_path / name, target)
        assert (loaded.config_digest, loaded.diff_ids, loaded.repo_tags) == (
            image.config_digest, image.diff_ids, tags
        )
