"""The test-support fixtures work: a real registry, busybox images, pushes, archives."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from support.images import MT_INDEX, OciImage, build_busybox_image
from support.registry import HtpasswdAuth, RunningRegistry


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_registry_answers_v2_on_loopback(registry: RunningRegistry) -> None:
    status, _ = _get(f"{registry.url}/v2/")
    assert status == 200
    assert registry.address.startswith("127.0.0.1:")
    assert registry.port != 5000  # random, so tests never collide with bench-setup's


def test_registry_stops_on_request(tmp_path: Path, tool: Callable[[str], Path]) -> None:
    tool("docker-registry")
    from support.registry import start_registry

    running = start_registry(tmp_path)
    running.stop()
    assert running.process.poll() is not None
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{running.url}/v2/", timeout=1)


def test_basic_auth_registry_demands_credentials(basic_auth_registry: RunningRegistry) -> None:
    assert isinstance(basic_auth_registry.auth, HtpasswdAuth)
    status, _ = _get(f"{basic_auth_registry.url}/v2/")
    assert status == 401
    header = basic_auth_registry.auth.authorization_header()
    assert header is not None
    status, _ = _get(f"{basic_auth_registry.url}/v2/", {"Authorization": header})
    assert status == 200
    status, _ = _get(f"{basic_auth_registry.url}/v2/", {"Authorization": "Basic eDp5"})
    assert status == 401


def test_busybox_layout_is_valid_for_umoci(
    busybox_image: OciImage, tool: Callable[[str], Path], tmp_path: Path
) -> None:
    umoci = tool("umoci")
    bundle = tmp_path / "bundle"
    subprocess.run(
        [str(umoci), "unpack", "--rootless", "--image", f"{busybox_image.layout}:1.35",
         str(bundle)],
        check=True, capture_output=True,
    )
    rootfs = bundle / "rootfs"
    assert (rootfs / "bin" / "busybox").stat().st_size > 100_000
    assert (rootfs / "bin" / "sh").readlink() == Path("/bin/busybox")
    passwd = (rootfs / "etc" / "passwd").read_text()
    assert "app:x:1000:1000:" in passwd and passwd.startswith("root:x:0:0:")
    assert "app:x:1000:" in (rootfs / "etc" / "group").read_text()


def test_busybox_image_is_deterministic(busybox_image: OciImage, tmp_path: Path) -> None:
    again = build_busybox_image(tmp_path / "again", "1.35")
    assert again.top.digest == busybox_image.top.digest
    assert again.layers[0].diff_id == busybox_image.layers[0].diff_id


def test_layer_diff_id_matches_uncompressed_blob(busybox_image: OciImage) -> None:
    layer = busybox_image.layers[0]
    blob = busybox_image.layout / "blobs" / "sha256" / layer.descriptor.digest.split(":")[1]
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == layer.descriptor.digest[7:]
    with gzip.open(blob) as raw:
        assert f"sha256:{hashlib.sha256(raw.read()).hexdigest()}" == layer.diff_id


def test_pushed_image_is_inspectable_with_skopeo(
    pushed_busybox: str, busybox_image: OciImage, tool: Callable[[str], Path]
) -> None:
    skopeo = tool("skopeo")
    out = subprocess.run(
        [str(skopeo), "inspect", "--tls-verify=false", f"docker://{pushed_busybox}"],
        check=True, capture_output=True, text=True,
    ).stdout
    info = json.loads(out)
    assert info["Digest"] == busybox_image.top.digest
    assert info["Architecture"] == "amd64"
    assert info["Layers"] == [busybox_image.layers[0].descriptor.digest]


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_pushed_index_selects_each_platform(
    pushed_busybox_index: str, busybox_index_image: OciImage,
    tool: Callable[[str], Path], arch: str,
) -> None:
    skopeo = tool("skopeo")
    raw = subprocess.run(
        [str(skopeo), "inspect", "--raw", "--tls-verify=false",
         f"docker://{pushed_busybox_index}"],
        check=True, capture_output=True, text=True,
    ).stdout
    assert json.loads(raw)["mediaType"] == MT_INDEX
    config = json.loads(subprocess.run(
        [str(skopeo), "inspect", "--config", "--tls-verify=false", "--override-arch", arch,
         f"docker://{pushed_busybox_index}"],
        check=True, capture_output=True, text=True,
    ).stdout)
    assert config["architecture"] == arch
    assert config["config"]["Labels"]["org.layerkit.test.platform"] == f"linux/{arch}"
    # Both platform entries share the one layer but have different configs.
    digests = {m.digest for m in busybox_index_image.manifests}
    assert len(digests) == 2


def test_docker_archive_has_loadable_shape(busybox_docker_archive: Path) -> None:
    with tarfile.open(busybox_docker_archive) as tar:
        file = tar.extractfile("manifest.json")
        assert file is not None
        manifest = json.loads(file.read())
        assert manifest[0]["RepoTags"] == ["busybox:1.35"]
        config_member = tar.extractfile(manifest[0]["Config"])
        assert config_member is not None
        config = json.loads(config_member.read())
        layer_member = tar.extractfile(manifest[0]["Layers"][0])
        assert layer_member is not None
        layer_sha = hashlib.sha256(layer_member.read()).hexdigest()
    assert config["rootfs"]["diff_ids"] == [f"sha256:{layer_sha}"]


def test_skopeo_reads_docker_archive(
    busybox_docker_archive: Path, tool: Callable[[str], Path]
) -> None:
    skopeo = tool("skopeo")
    info = json.loads(subprocess.run(
        [str(skopeo), "inspect", f"docker-archive:{busybox_docker_archive}"],
        check=True, capture_output=True, text=True,
    ).stdout)
    assert info["Architecture"] == "amd64"
    assert len(info["Layers"]) == 1


def test_missing_tool_names_the_apt_package() -> None:
    from support.tools import ToolMissing, require_tool

    with pytest.raises(ToolMissing) as info:
        require_tool("no-such-tool-layerkit-xyz")
    assert "apt-get install -y no-such-tool-layerkit-xyz" in str(info.value)
    assert ToolMissing("busybox").install_hint == "apt-get install -y busybox-static"
