"""The registry client against a REAL registry (Debian's docker-registry on 127.0.0.1),
with skopeo as the independent reader and writer: push, pull, index platform
selection, blob dedupe, cross-repository mounts, chunked uploads and mirrors."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from layerkit.content import ContentStore
from layerkit.registry import (
    NotFoundError,
    RegistryClient,
    RegistryConfig,
    StaticCredentials,
    parse_reference,
    pull_image,
    push_image,
    resolve_digest,
)
from layerkit.registry.config import HostConfig
from support.images import OciImage
from support.registry import RunningRegistry


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class LayoutBlobs:
    """A BlobProvider over an OCI image layout directory."""

    def __init__(self, layout: Path) -> None:
        self.layout = layout

    def path(self, digest: str) -> Path:
        return self.layout / "blobs" / "sha256" / digest.split(":", 1)[1]

    def open(self, digest: str) -> BinaryIO:
        return self.path(digest).open("rb")

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()


def make_client(**kwargs: object) -> RegistryClient:
    options: dict[str, object] = {"config": RegistryConfig(), "credentials": StaticCredentials()}
    options.update(kwargs)
    return RegistryClient(**options)  # type: ignore[arg-type]


def skopeo_raw(tool: Callable[[str], Path], ref: str) -> bytes:
    out = subprocess.run(
        [str(tool("skopeo")), "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"],
        check=True, capture_output=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return out.stdout


def first_image(image: OciImage) -> tuple[bytes, bytes, LayoutBlobs]:
    blobs = LayoutBlobs(image.layout)
    manifest = blobs.read(image.manifests[0].digest)
    config = blobs.read(json.loads(manifest)["config"]["digest"])
    return manifest, config, blobs


def test_push_is_read_back_by_skopeo(
    registry: RunningRegistry, busybox_image: OciImage, tool: Callable[[str], Path]
) -> None:
    manifest, config, blobs = first_image(busybox_image)
    with make_client() as client:
        result = push_image(registry.ref("ours", "v1"), manifest, config, blobs, client=client)
    assert result.digest == sha(manifest)
    assert len(result.uploaded) == 2  # config + one layer
    raw = skopeo_raw(tool, registry.ref("ours", "v1"))
    assert raw == manifest and sha(raw) == result.digest
    target = f"docker://{registry.ref('ours', 'v1')}"
    info = json.loads(subprocess.run(
        [str(tool("skopeo")), "inspect", "--tls-verify=false", target],
        check=True, capture_output=True, stdin=subprocess.DEVNULL).stdout)  # fmt: skip
    assert info["Digest"] == result.digest
    assert info["Layers"] == [d["digest"] for d in json.loads(manifest)["layers"]]


def test_pull_what_skopeo_pushed_selects_platform(
    session_registry: RunningRegistry, pushed_busybox_index: str, tmp_path: Path,
    tool: Callable[[str], Path],
) -> None:  # fmt: skip
    raw_index = skopeo_raw(tool, pushed_busybox_index)
    entries = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
               for m in json.loads(raw_index)["manifests"]}  # fmt: skip
    store = ContentStore(tmp_path / "store")
    with make_client() as client:
        arm = pull_image(pushed_busybox_index, store, platform="linux/arm64", client=client)
        amd = pull_image(pushed_busybox_index, store, platform="linux/amd64", client=client)
        assert resolve_digest(pushed_busybox_index, client=client) == sha(raw_index)
        from layerkit.registry import PlatformNotFoundError

        with pytest.raises(PlatformNotFoundError) as info:
            pull_image(pushed_busybox_index, store, platform="linux/riscv64", client=client)
    assert arm.digest == entries["linux/arm64"] and amd.digest == entries["linux/amd64"]
    assert arm.index_digest == amd.index_digest == sha(raw_index)
    assert json.loads(arm.config)["architecture"] == "arm64"
    assert "linux/amd64" in info.value.message and "linux/arm64" in info.value.message
    for image in (arm, amd):
        for digest in [image.config_digest, *(d.digest for d in image.layers)]:
            assert store.verify(digest)
        assert len(image.diff_ids) == len(image.layers) == 1


def test_second_push_uploads_nothing(registry: RunningRegistry, busybox_image: OciImage) -> None:
    manifest, config, blobs = first_image(busybox_image)
    ref = registry.ref("dedupe", "v1")
    with make_client() as first:
        push_image(ref, manifest, config, blobs, client=first)
    with make_client() as second:
        result = push_image(ref, manifest, config, blobs, client=second)
        requests = second.stats.requests
    assert sorted(result.existing) == sorted(blobs_of(manifest)) and not result.uploaded
    assert requests["POST upload"] == 0 and requests["PATCH upload"] == 0
    assert requests["PUT upload"] == 0 and requests["HEAD blob"] == 2
    assert requests["PUT manifest"] == 1


def blobs_of(manifest: bytes) -> list[str]:
    doc = json.loads(manifest)
    return [doc["config"]["digest"], *(layer["digest"] for layer in doc["layers"])]


def test_cross_repository_mount(
    registry: RunningRegistry, busybox_image: OciImage, tool: Callable[[str], Path]
) -> None:
    manifest, config, blobs = first_image(busybox_image)
    with make_client() as client:
        push_image(registry.ref("base", "v1"), manifest, config, blobs, client=client)
    with make_client() as fresh:  # knows nothing: the hint comes from the caller
        result = push_image(registry.ref("derived", "v1"), manifest, config, blobs, client=fresh,
                            mount_from={d: ["base"] for d in blobs_of(manifest)})  # fmt: skip
        assert fresh.stats.requests["PUT upload"] == 0
    assert sorted(result.mounted) == sorted(blobs_of(manifest))
    assert skopeo_raw(tool, registry.ref("derived", "v1")) == manifest


def test_chunked_upload_with_small_threshold(
    registry: RunningRegistry, busybox_image: OciImage, tmp_path: Path,
    tool: Callable[[str], Path],
) -> None:  # fmt: skip
    manifest, config, blobs = first_image(busybox_image)
    layer = json.loads(manifest)["layers"][0]
    chunk = 256 * 1024
    with make_client(chunk_threshold=64 * 1024, chunk_size=chunk) as client:
        push_image(registry.ref("chunked", "v1"), manifest, config, blobs, client=client)
        patches = client.stats.requests["PATCH upload"]
    assert patches == -(-layer["size"] // chunk) and patches >= 2
    assert skopeo_raw(tool, registry.ref("chunked", "v1")) == manifest
    store = ContentStore(tmp_path / "store")
    with make_client() as client:
        pulled = pull_image(registry.ref("chunked", "v1"), store, client=client)
    assert store.read_bytes(pulled.layers[0].digest) == blobs.read(layer["digest"])


def test_mirrors_in_order_before_origin(
    session_registry: RunningRegistry, pushed_busybox: str, tmp_path: Path
) -> None:
    from support.registry import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    # The origin's name does not resolve: only the mirrors can answer.
    config = RegistryConfig({"registry.invalid": HostConfig(mirrors=(dead, session_registry.url))})
    repo_tag = pushed_busybox.split("/", 1)[1]
    store = ContentStore(tmp_path / "store")
    with make_client(config=config) as client:
        pulled = pull_image(f"registry.invalid/{repo_tag}", store, client=client)
        direct = resolve_digest(pushed_busybox, client=client)
    assert pulled.digest == direct
    assert all(store.verify(d.digest) for d in pulled.layers)


def test_missing_tag_is_a_clear_404(registry: RunningRegistry, tmp_path: Path) -> None:
    with make_client() as client, pytest.raises(NotFoundError) as info:
        pull_image(registry.ref("nothing", "here"), ContentStore(tmp_path / "s"), client=client)
    assert f"{registry.address}/nothing:here" in info.value.message
    assert info.value.status == 404
    ref = parse_reference(registry.ref("nothing", "here"))
    assert info.value.repository == ref.repository


def test_push_layout_index_and_single(
    registry: RunningRegistry, busybox_index_image: OciImage, busybox_image: OciImage,
    tool: Callable[[str], Path], tmp_path: Path,
) -> None:  # fmt: skip
    from layerkit.registry import push_layout

    index_bytes = LayoutBlobs(busybox_index_image.layout).read(busybox_index_image.top.digest)
    with make_client() as client:
        result = push_layout(busybox_index_image.layout, registry.ref("multi", "v1"),
                             tag=busybox_index_image.tag, client=client)  # fmt: skip
        single = push_layout(busybox_image.layout, registry.ref("single", "v1"), client=client)
    assert result.digest == sha(index_bytes)
    assert skopeo_raw(tool, registry.ref("multi", "v1")) == index_bytes
    for entry in json.loads(index_bytes)["manifests"]:
        raw = skopeo_raw(tool, f"{registry.address}/multi@{entry['digest']}")
        assert sha(raw) == entry["digest"]
    assert sha(skopeo_raw(tool, registry.ref("single", "v1"))) == single.digest
    store = ContentStore(tmp_path / "s")
    with make_client() as client:
        pulled = pull_image(registry.ref("multi", "v1"), store, platform="linux/arm64",
                            client=client)  # fmt: skip
    assert pulled.index_digest == result.digest
