"""layerkit load / images / history / inspect / tag / rmi, run as a user runs them.

The image is made here: a busybox layer (/bin/busybox from Debian's
busybox-static plus a few applet symlinks) and a small second layer, with an
empty_layer history entry between them, written as a docker-archive by
layerkit.exporter.export_docker_archive.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from layerkit.content import ContentStore, canonical_json, sha256_digest
from layerkit.exporter import ExportImage, export_docker_archive, export_oci_layout

BUSYBOX = Path("/bin/busybox")
CREATED = "2024-01-02T03:04:05Z"
APPLETS = ("sh", "ls", "cat", "echo")


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, None


def _file(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def _link(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, None


def busybox_layers() -> list[bytes]:
    if not BUSYBOX.is_file():
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    base = [_dir("bin"), _file("bin/busybox", BUSYBOX.read_bytes(), 0o755)]
    base += [_link(f"bin/{a}", "busybox") for a in APPLETS]
    app = [_dir("app"), _file("app/hello.txt", b"hello from layerkit\n")]
    return [_tar(base), _tar(app)]


def image_config(diff_ids: list[str]) -> bytes:
    return canonical_json({
        "architecture": "amd64", "os": "linux", "created": CREATED,
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Labels": {"org.example": "yes"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": CREATED, "created_by": "ADD busybox / # buildkit",
             "comment": "buildkit.dockerfile.v0"},
            {"created": CREATED, "created_by": 'ENV PATH=/bin', "empty_layer": True,
             "comment": "buildkit.dockerfile.v0"},
            {"created": CREATED,
             "created_by": "COPY hello.txt /app/hello.txt # a long created-by line that "
                           "docker would truncate", "comment": "buildkit.dockerfile.v0"},
        ],
    })


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A docker-archive and an oci-archive of the test image, plus its expected facts."""
    work = tmp_path_factory.mktemp("manage-image")
    store = ContentStore(work / "src-store")
    layers = busybox_layers()
    diff_ids = [store.write_bytes(layer).digest for layer in layers]
    config = image_config(diff_ids)
    image = ExportImage.create(config)
    docker_tar = work / "image.tar"
    export_docker_archive(store, image, docker_tar, tags=["busybox-test:1.0"])
    oci_tar = work / "image-oci.tar"
    export_oci_layout(store, image, oci_tar, tags=["localhost:5000/team/app:v2"], tar=True)
    return {"docker": docker_tar, "oci": oci_tar, "id": sha256_digest(config),
            "sizes": [len(layer) for layer in layers], "diff_ids": diff_ids}


def lk(root: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "layerkit", *args, "--root", str(root)],
        input=stdin.decode("latin-1") if stdin is not None else None,
        capture_output=True, text=True, check=False,
    )


def human(n: int) -> str:
    from layerkit.store import human_size

    return human_size(n)


def test_load_images_history_inspect_tag_rmi_roundtrip(
        made: dict[str, object], tmp_path: Path) -> None:
    root = tmp_path / "root"
    image_id = str(made["id"])
    short = image_id[7:19]
    sizes = list(made["sizes"])  # type: ignore[call-overload]

    out = lk(root, "load", "-i", str(made["docker"]))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Loaded image: busybox-test:1.0\n"

    out = lk(root, "images")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    # docker's tabwriter: columns padded by 3, at least 10 wide
    assert lines[0].startswith("REPOSITORY     TAG       IMAGE ID       CREATED")
    assert re.fullmatch(
        rf"busybox-test   1\.0       {short}   \d+ (months|years) ago\s+"
        + re.escape(human(sum(sizes))), lines[1]), lines[1]
    assert len(lines) == 2

    assert lk(root, "images", "-q").stdout == f"{short}\n"
    assert lk(root, "images", "-q", "--no-trunc").stdout == f"{image_id}\n"
    row = json.loads(lk(root, "images", "--format", "json").stdout)
    assert (row["Repository"], row["Tag"], row["ID"]) == ("busybox-test", "1.0", short)
    assert row["CreatedAt"] == "2024-01-02 03:04:05 +0000 UTC"

    # history: newest first, sizes from the layer blobs, empty layers 0B, truncation
    out = lk(root, "history", "busybox-test:1.0")
    assert out.returncode == 0, out.stderr
    hist = out.stdout.splitlines()
    assert re.split(r"\s{2,}", hist[0]) == ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    assert hist[1].startswith(f"{short}   ")
    copy_line = "COPY hello.txt /app/hello.txt # a long created-by line"
    assert f"   {copy_line[:44]}…   " in hist[1]  # docker's Ellipsis(s, 45)
    assert f"   {human(sizes[1])}   " in hist[1]
    assert hist[2].startswith("<missing>") and "ENV PATH=/bin" in hist[2]
    assert "   0B   " in hist[2]
    assert hist[3].startswith("<missing>") and f"   {human(sizes[0])}   " in hist[3]
    assert all(line.rstrip().endswith("buildkit.dockerfile.v0") for line in hist[1:])
    full = lk(root, "history", "--no-trunc", short).stdout
    assert "docker would truncate" in full and image_id in full
    entries = [json.loads(x) for x in lk(root, "history", "--format", "json",
                                         "busybox-test:1.0").stdout.splitlines()]
    assert [e["Size"] for e in entries] == [human(sizes[1]), "0B", human(sizes[0])]
    assert entries[0]["CreatedAt"] == CREATED

    # inspect: docker-like keys
    out = lk(root, "inspect", "busybox-test:1.0")
    assert out.returncode == 0, out.stderr
    [doc] = json.loads(out.stdout)
    assert doc["Id"] == image_id
    assert doc["RepoTags"] == ["busybox-test:1.0"]
    assert doc["Config"]["Cmd"] == ["sh"]
    assert doc["RootFS"] == {"Type": "layers", "Layers": made["diff_ids"]}
    assert doc["Size"] == sum(sizes)
    assert len(doc["History"]) == 3 and doc["Created"] == CREATED

    # tag, then rmi by name and by id
    assert lk(root, "tag", "busybox-test:1.0", "mine").returncode == 0
    assert lk(root, "tag", short[:6], "docker.io/library/other:2").returncode == 0
    names = json.loads(lk(root, "inspect", image_id).stdout)[0]["RepoTags"]
    assert names == ["busybox-test:1.0", "mine:latest", "other:2"]
    out = lk(root, "rmi", "mine")
    assert out.stdout == "Untagged: mine:latest\n"
    out = lk(root, "rmi", short)
    assert out.returncode == 1 and "must be forced" in out.stderr
    out = lk(root, "rmi", "-f", short)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ("Untagged: busybox-test:1.0\nUntagged: other:2\n"
                          f"Deleted: {image_id}\n")
    assert lk(root, "images").stdout.splitlines()[1:] == []
    out = lk(root, "inspect", "busybox-test:1.0")
    assert out.returncode == 1 and "no such image" in out.stderr


def test_load_oci_archive_and_stdin(made: dict[str, object], tmp_path: Path) -> None:
    root = tmp_path / "root"
    out = lk(root, "load", "-i", str(made["oci"]))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Loaded image: localhost:5000/team/app:v2\n"
    data = Path(str(made["docker"])).read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "layerkit", "load", "--root", str(root)],
        input=data, capture_output=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"Loaded image: busybox-test:1.0\n"
    listed = lk(root, "images").stdout.splitlines()[1:]
    assert sorted(line.split()[0] for line in listed) == ["busybox-test",
                                                         "localhost:5000/team/app"]
    assert not list(root.glob(".load-*")), "the stdin spool file is removed"


def test_untagged_archive_prints_the_id(made: dict[str, object], tmp_path: Path) -> None:
    src = tmp_path / "x"
    with tarfile.open(str(made["docker"])) as tar:
        tar.extractall(src, filter="data")
    manifest = json.loads((src / "manifest.json").read_text())
    manifest[0]["RepoTags"] = []
    (src / "manifest.json").write_text(json.dumps(manifest))
    untagged = tmp_path / "untagged.tar"
    with tarfile.open(untagged, "w") as tar:
        for p in sorted(src.rglob("*")):
            tar.add(p, arcname=str(p.relative_to(src)), recursive=False)
    out = lk(tmp_path / "root", "load", "-i", str(untagged))
    assert out.stdout == f"Loaded image ID: {made['id']}\n"


def test_skopeo_written_archive_loads(made: dict[str, object], tmp_path: Path) -> None:
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.skip("skopeo is not installed")
    copied = tmp_path / "skopeo.tar"
    subprocess.run([skopeo, "copy", "--quiet", f"docker-archive:{made['docker']}",
                    f"docker-archive:{copied}:skopeo/copied:1"], check=True)
    out = lk(tmp_path / "root", "load", "-i", str(copied))
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Loaded image: skopeo/copied:1\n"
