"""Exporters against real tools: a hand-made busybox image exported as an OCI layout
(directory and tar) and a docker-archive, checked with skopeo, umoci and the OCI
JSON schemas, then loaded back with layerkit's loader.

Tools are installed by CI; locally, a missing tool skips its test with the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # type: ignore[import-untyped]
import pytest
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT4

import layerkit.exporter.manifest as manifest_mod
from layerkit.content import mediatypes as mt
from layerkit.content.errors import ExportError
from layerkit.content.oci import ContainerConfig, History, ImageConfig, ImageManifest, RootFS
from layerkit.content.store import ContentStore
from layerkit.exporter import (
    ExportImage,
    build_manifest,
    export_docker_archive,
    export_oci_layout,
    export_rootfs_tar,
    load_archive,
)
from support.docker import DockerDaemon

BUSYBOX = Path("/bin/busybox")
TAG = "busybox-lk:1.0"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"LOUD SKIP: `{tool}` is not installed; CI installs it (apt install {tool})")
    return path


def run(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=120)
    assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc.stdout


def busybox_layer(tmp: Path) -> bytes:
    """A layer tar of a rootfs with /bin/busybox and sh/ls/echo symlinks to it."""
    if not BUSYBOX.is_file():
        pytest.skip("LOUD SKIP: /bin/busybox missing; CI installs busybox-static")
    rootfs = tmp / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in ("sh", "ls", "echo"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    out = tmp / "layer.tar"
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(rootfs.rglob("*")):
            info = tar.gettarinfo(str(path), str(path.relative_to(rootfs)))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 1_700_000_000
            if info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return out.read_bytes()


def make_image(store: ContentStore, layer: bytes) -> ExportImage:
    diff_id = store.write_bytes(layer).digest
    config = ImageConfig(
        architecture="amd64",
        os="linux",
        created="2024-01-01T00:00:00Z",
        config=ContainerConfig(env=("PATH=/bin",), cmd=("sh",), labels={"org.x": "y"}),
        rootfs=RootFS((diff_id,)),
        history=(
            History(created="2024-01-01T00:00:00Z", created_by="ADD busybox /bin/"),
            History(created_by='CMD ["sh"]', empty_layer=True),
        ),
    )
    return ExportImage.create(config.to_json())


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return busybox_layer(tmp_path_factory.mktemp("busybox"))


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "store")


@pytest.fixture
def image(store: ContentStore, layer: bytes) -> ExportImage:
    return make_image(store, layer)


# -- JSON schemas ------------------------------------------------------------------


def schema_validator(conformance_dir: Path, schema_file: str) -> jsonschema.Draft4Validator:
    schema_dir = conformance_dir / "oci-image-spec" / "schema"
    if not schema_dir.is_dir():
        pytest.skip(f"LOUD SKIP: OCI schemas missing at {schema_dir}")

    def retrieve(uri: str) -> Resource[Any]:
        path = schema_dir / urlsplit(uri).path.rsplit("/", 1)[-1]
        if not path.is_file():
            raise NoSuchResource(ref=uri)  # type: ignore[call-arg]
        return Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT4)

    return jsonschema.Draft4Validator(
        json.loads((schema_dir / schema_file).read_text()),
        registry=Registry(retrieve=retrieve),  # type: ignore[call-arg]
        format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER,
    )


def assert_valid(conformance_dir: Path, schema_file: str, raw: bytes) -> None:
    errors = [e.message for e in schema_validator(conformance_dir, schema_file).iter_errors(
        json.loads(raw)
    )]
    assert errors == [], f"{schema_file}: {errors}"


def test_oci_layout_dir_matches_the_schemas(
    tmp_path: Path, store: ContentStore, image: ExportImage, conformance_dir: Path
) -> None:
    dest = tmp_path / "layout"
    built = export_oci_layout(store, image, dest, tags=[TAG])
    assert_valid(conformance_dir, "image-layout-schema.json", (dest / "oci-layout").read_bytes())
    index_raw = (dest / "index.json").read_bytes()
    assert_valid(conformance_dir, "image-index-schema.json", index_raw)
    index = json.loads(index_raw)
    assert index["manifests"][0]["annotations"] == {
        mt.ANNOTATION_REF_NAME: "1.0",
        mt.ANNOTATION_CONTAINERD_NAME: "docker.io/library/busybox-lk:1.0",
    }
    blobs = dest / "blobs" / "sha256"
    manifest_raw = (blobs / built.descriptor.digest[7:]).read_bytes()
    assert_valid(conformance_dir, "image-manifest-schema.json", manifest_raw)
    manifest = ImageManifest.from_json(manifest_raw)
    config_raw = (blobs / manifest.config.digest[7:]).read_bytes()
    assert_valid(conformance_dir, "config-schema.json", config_raw)
    for blob in blobs.iterdir():  # every blob is named by its content
        assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == f"sha256:{blob.name}"
    assert manifest.layers[0].media_type == mt.OCI_LAYER_GZIP


def test_skopeo_reads_layout_dir_and_tar(
    tmp_path: Path, store: ContentStore, image: ExportImage
) -> None:
    need("skopeo")
    built = export_oci_layout(store, image, tmp_path / "layout", tags=[TAG])
    export_oci_layout(store, image, tmp_path / "image.tar", tags=[TAG], tar=True)
    for ref in (f"oci:{tmp_path / 'layout'}:1.0", f"oci-archive:{tmp_path / 'image.tar'}"):
        info = json.loads(run("skopeo", "inspect", ref))
        assert info["Digest"] == built.descriptor.digest
        assert info["Layers"] == [layer.digest for layer in built.layers]
        assert info["Architecture"] == "amd64" and info["Env"] == ["PATH=/bin"]
        raw_config = run("skopeo", "inspect", "--raw", "--config", ref).encode()
        assert "sha256:" + hashlib.sha256(raw_config).hexdigest() == image.config_digest


def test_skopeo_reads_docker_archive(
    tmp_path: Path, store: ContentStore, image: ExportImage
) -> None:
    need("skopeo")
    archive = tmp_path / "docker.tar"
    export_docker_archive(store, image, archive, tags=[TAG])
    info = json.loads(run("skopeo", "inspect", f"docker-archive:{archive}"))
    assert info["Layers"] == list(image.diff_ids)  # layers are stored uncompressed
    raw_config = run("skopeo", "inspect", "--raw", "--config", f"docker-archive:{archive}")
    assert "sha256:" + hashlib.sha256(raw_config.encode()).hexdigest() == image.config_digest
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        names = set(tar.getnames())
    assert manifest[0]["RepoTags"] == [TAG]
    assert manifest[0]["Config"] == f"blobs/sha256/{image.config_digest[7:]}"
    assert {"oci-layout", "index.json", *manifest[0]["Layers"]} <= names


def test_zstd_layout_is_readable_by_skopeo(
    tmp_path: Path, store: ContentStore, image: ExportImage
) -> None:
    need("skopeo")
    built = export_oci_layout(store, image, tmp_path / "z", tags=[TAG], compression="zstd")
    assert built.layers[0].media_type == mt.OCI_LAYER_ZSTD
    raw = json.loads(run("skopeo", "inspect", "--raw", f"oci:{tmp_path / 'z'}:1.0"))
    assert raw["layers"][0]["mediaType"] == mt.OCI_LAYER_ZSTD
    assert raw["layers"][0]["digest"] == built.layers[0].digest
    # skopeo decompresses it to recompress as gzip: the layer content is intact.
    run("skopeo", "copy", "--dest-compress", "--dest-compress-format", "gzip",
        f"oci:{tmp_path / 'z'}:1.0", f"oci-archive:{tmp_path / 'g.tar'}:1.0")
    loaded = load_archive(tmp_path / "g.tar", ContentStore(tmp_path / "other"))
    assert loaded[0].diff_ids == image.diff_ids
    assert loaded[0].config_digest == image.config_digest


def test_docker_media_types_manifest(store: ContentStore, image: ExportImage) -> None:
    """For registries that want schema 2 (OCI layouts always use OCI types: skopeo
    ignores index entries of other types)."""
    built = build_manifest(store, image, docker_media_types=True)
    manifest = ImageManifest.from_json(store.read_bytes(built.descriptor.digest))
    assert manifest.media_type == mt.DOCKER_MANIFEST
    assert manifest.config.media_type == mt.DOCKER_CONFIG
    assert [x.media_type for x in manifest.layers] == [mt.DOCKER_LAYER_GZIP]
    with pytest.raises(ExportError, match="zstd"):
        build_manifest(store, image, docker_media_types=True, compression="zstd")


def test_umoci_unpacks_the_layout(tmp_path: Path, store: ContentStore, image: ExportImage) -> None:
    need("umoci")
    export_oci_layout(store, image, tmp_path / "layout", tags=[TAG])
    run("umoci", "unpack", "--image", f"{tmp_path / 'layout'}:1.0", str(tmp_path / "bundle"))
    rootfs = tmp_path / "bundle" / "rootfs"
    busybox = rootfs / "bin" / "busybox"
    assert busybox.read_bytes() == BUSYBOX.read_bytes()
    assert os.readlink(rootfs / "bin" / "sh") == "busybox"
    runtime_config = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert runtime_config["process"]["args"] == ["sh"]
    # The unpacked static binary still runs.
    assert run(str(busybox), "echo", "layerkit").strip() == "layerkit"


def test_skopeo_copies_round_trip_through_the_loader(
    tmp_path: Path, store: ContentStore, image: ExportImage
) -> None:
    need("skopeo")
    export_oci_layout(store, image, tmp_path / "layout", tags=[TAG])
    export_docker_archive(store, image, tmp_path / "ours-docker.tar", tags=[TAG])
    run("skopeo", "copy", f"oci:{tmp_path / 'layout'}:1.0",
        f"oci-archive:{tmp_path / 'skopeo-oci.tar'}:1.0")
    run("skopeo", "copy", f"docker-archive:{tmp_path / 'ours-docker.tar'}",
        f"docker-archive:{tmp_path / 'skopeo-docker.tar'}:{TAG}")
    run("skopeo", "copy", f"docker-archive:{tmp_path / 'ours-docker.tar'}",
        f"oci-archive:{tmp_path / 'skopeo-oci2.tar'}:v2")
    for archive, tags in (
        ("ours-docker.tar", (TAG,)),
        ("skopeo-oci.tar", ()),
        ("skopeo-docker.tar", (f"docker.io/library/{TAG}",)),
        ("skopeo-oci2.tar", ()),
    ):
        target = ContentStore(tmp_path / f"store-{archive}")
        loaded = load_archive(tmp_path / archive, target)
        assert len(loaded) == 1, archive
        img = loaded[0]
        assert img.config_digest == image.config_digest, archive
        assert img.diff_ids == image.diff_ids, archive
        assert set(img.repo_tags) >= set(tags) or img.repo_tags == tags, archive
        for digest in (img.config_digest, *img.diff_ids):
            assert target.verify(digest), archive
        # The loaded layer is the same uncompressed tar we started from.
        assert target.read_bytes(img.diff_ids[0]) == store.read_bytes(image.diff_ids[0])


def test_second_export_does_not_recompress(
    tmp_path: Path, store: ContentStore, image: ExportImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = manifest_mod._compress_one

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(manifest_mod, "_compress_one", counting)
    first = export_oci_layout(store, image, tmp_path / "one")
    assert calls == list(image.diff_ids)
    second = export_oci_layout(store, image, tmp_path / "two", tar=True)
    assert calls == list(image.diff_ids), "the cached compressed blob was not reused"
    assert first.layers == second.layers
    # A different compression is a different cache entry.
    export_oci_layout(store, image, tmp_path / "three", compression="zstd")
    assert len(calls) == 2
    # The cache is an optimisation: with the blob gone, the export recompresses.
    store.delete(first.layers[0].digest)
    third = export_oci_layout(store, image, tmp_path / "four")
    assert len(calls) == 3 and third.layers == first.layers


def test_exports_are_byte_identical_with_source_date_epoch(
    tmp_path: Path, layer: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    outputs: dict[str, list[bytes]] = {}
    for run_no in range(2):
        # A fresh store each time: nothing is reused, everything is recomputed.
        store = ContentStore(tmp_path / f"store{run_no}")
        image = make_image(store, layer)
        out = tmp_path / f"run{run_no}"
        export_oci_layout(store, image, out / "oci.tar", tags=[TAG], tar=True)
        export_oci_layout(store, image, out / "zstd.tar", tags=[TAG], tar=True,
                          compression="zstd")
        export_docker_archive(store, image, out / "docker.tar", tags=[TAG])
        export_rootfs_tar(store, image.diff_ids, out / "rootfs.tar")
        for name in ("oci.tar", "zstd.tar", "docker.tar", "rootfs.tar"):
            outputs.setdefault(name, []).append((out / name).read_bytes())
    for name, (a, b) in outputs.items():
        assert a == b, f"{name} differs between two exports"
    with tarfile.open(tmp_path / "run0" / "oci.tar") as tar:
        assert {m.mtime for m in tar.getmembers()} == {1_700_000_000}
    with tarfile.open(tmp_path / "run0" / "rootfs.tar") as tar:
        assert max(m.mtime for m in tar.getmembers()) <= 1_700_000_000


def test_docker_load_accepts_the_archive(
    tmp_path: Path, store: ContentStore, image: ExportImage, docker_daemon: DockerDaemon
) -> None:
    archive = tmp_path / "docker.tar"
    export_docker_archive(store, image, archive, tags=[TAG])
    out = docker_daemon.run("load", "-i", str(archive)).stdout
    assert TAG in out
    try:
        ran = docker_daemon.run("run", "--rm", "--network", "none", TAG, "/bin/busybox", "echo",
                                "ran-in-docker")
        assert ran.stdout.strip() == "ran-in-docker"
    finally:
        docker_daemon.run("rmi", "-f", TAG, check=False)


def test_podman_load_accepts_the_archive(
    tmp_path: Path, store: ContentStore, image: ExportImage
) -> None:
    podman = need("podman")
    archive = tmp_path / "docker.tar"
    export_docker_archive(store, image, archive, tags=[TAG])
    # podman refuses a runroot path longer than 50 characters.
    runroot = Path(tempfile.mkdtemp(prefix="lk-podman-", dir="/tmp"))
    try:
        storage = ["--root", str(tmp_path / "podman-root"), "--runroot", str(runroot),
                   "--storage-driver", "vfs"]
        out = run(podman, *storage, "load", "-i", str(archive))
        assert TAG.split(":")[0] in out
        listed = run(podman, *storage, "images", "--format", "{{.Repository}}:{{.Tag}}")
        assert any(line.endswith(TAG) for line in listed.splitlines())
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def test_layout_dir_accumulates_tags(
    tmp_path: Path, store: ContentStore, image: ExportImage, layer: bytes
) -> None:
    dest = tmp_path / "layout"
    first = export_oci_layout(store, image, dest, tags=["app:1"])
    export_oci_layout(store, image, dest, tags=["app:2"])
    other = ImageConfig.from_json(image.config)
    changed = ExportImage.create(
        ImageConfig(architecture="arm64", os="linux", rootfs=other.rootfs).to_json()
    )
    second = export_oci_layout(store, changed, dest, tags=["app:1"])  # retag 1
    index = json.loads((dest / "index.json").read_text())
    by_tag = {m["annotations"][mt.ANNOTATION_REF_NAME]: m["digest"] for m in index["manifests"]}
    assert by_tag == {"2": first.descriptor.digest, "1": second.descriptor.digest}
    assert [p.name for p in dest.iterdir() if p.name.startswith(".")] == []  # no temp files
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an OCI layout"):
        export_oci_layout(store, image, occupied)
