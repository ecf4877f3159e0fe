"""Builds tiny base images with no internet: rootfs entries → layer → OCI layout.

Inputs: the host's static busybox (or any directory, e.g. a debootstrap
rootfs). Outputs: an OCI image layout directory (single image or a
multi-platform index), a docker-archive tar for ``docker load``, and a push to
a registry through ``skopeo``. The busybox image is byte-for-byte
deterministic: sorted entries, fixed mtimes, uid/gid 0 and gzip with mtime 0.

Run ``python -m tests.support.images --help`` for the command-line form that
``scripts/bench-setup.sh`` uses.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .tools import require_tool

EPOCH = 1_700_000_000  # fixed mtime for every entry of generated layers
CREATED = "2023-11-14T22:13:20Z"  # EPOCH as RFC 3339
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
)
GROUP = "root:x:0:\nnobody:x:65534:\napp:x:1000:\n"


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    platform: str | None = None  # "os/arch[/variant]"
    annotations: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}
        if self.platform:
            out["platform"] = platform_json(self.platform)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class Layer:
    """A compressed layer blob and the digest of its uncompressed tar."""

    descriptor: Descriptor
    diff_id: str


@dataclass(frozen=True)
class OciImage:
    """An image written to an OCI layout directory under ``tag``."""

    layout: Path
    tag: str
    top: Descriptor  # what index.json points at: a manifest or an index
    manifests: tuple[Descriptor, ...]  # one per platform
    layers: tuple[Layer, ...]

    @property
    def is_index(self) -> bool:
        return self.top.media_type == MT_INDEX

    @property
    def oci_ref(self) -> str:
        """The skopeo/umoci reference ``oci:DIR:TAG``."""
        return f"oci:{self.layout}:{self.tag}"

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(m.platform or "" for m in self.manifests)


@dataclass(frozen=True)
class Entry:
    """One rootfs entry: a file, directory or symlink, with its owner and mode."""

    path: str  # relative, no leading "/"
    kind: str  # "file" | "dir" | "symlink"
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    data: bytes = b""
    source: Path | None = None  # file content read from here instead of ``data``
    target: str = ""  # symlink target


def platform_json(platform: str) -> dict[str, str]:
    parts = platform.split("/")
    out = {"os": parts[0], "architecture": parts[1]}
    if len(parts) > 2:
        out["variant"] = parts[2]
    return out


def busybox_version(busybox: Path) -> str:
    """``1.35.0`` from the banner of ``busybox``."""
    banner = subprocess.run([str(busybox)], capture_output=True, text=True).stdout
    word = banner.split()[1] if banner.startswith("BusyBox") else "v0"
    return word.lstrip("v")


def busybox_entries(busybox: Path | None = None) -> list[Entry]:
    """The rootfs of the busybox image: the binary, its applet links and /etc basics."""
    binary = busybox or require_tool("busybox", "needed for the busybox base image")
    listing = subprocess.run(
        [str(binary), "--list-full"], check=True, capture_output=True, text=True
    ).stdout
    entries: dict[str, Entry] = {}

    def add_dir(path: str, mode: int = 0o755, uid: int = 0) -> None:
        entries.setdefault(path, Entry(path, "dir", mode, uid, uid))

    for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "var", "dev", "proc",
              "sys", "home"):
        add_dir(d)
    add_dir("root", 0o700)
    add_dir("tmp", 0o1777)
    add_dir("home/app", 0o755, 1000)
    entries["bin/busybox"] = Entry("bin/busybox", "file", 0o755, source=binary)
    for applet in listing.split():
        applet = applet.strip("/")
        if applet and applet != "bin/busybox":
            add_dir(os.path.dirname(applet))
            entries[applet] = Entry(applet, "symlink", 0o777, target="/bin/busybox")
    entries["etc/passwd"] = Entry("etc/passwd", "file", 0o644, data=PASSWD.encode())
    entries["etc/group"] = Entry("etc/group", "file", 0o644, data=GROUP.encode())
    return [entries[k] for k in sorted(entries)]


class _HashingWriter(io.RawIOBase):
    """Counts and hashes what passes through to ``sink``."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha.update(view)
        self.size += len(view)
        self.sink.write(view)
        return len(view)


class OciLayoutWriter:
    """Writes blobs into ``root/blobs/sha256`` and tags into ``root/index.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        index_path = root / "index.json"
        self.index: dict[str, Any] = (
            json.loads(index_path.read_text()) if index_path.exists()
            else {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}
        )

    def add_bytes(self, data: bytes, media_type: str, platform: str | None = None) -> Descriptor:
        digest = hashlib.sha256(data).hexdigest()
        (self.blobs / digest).write_bytes(data)
        return Descriptor(media_type, f"sha256:{digest}", len(data), platform)

    def add_json(self, doc: dict[str, Any], media_type: str,
                 platform: str | None = None) -> Descriptor:
        data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        return self.add_bytes(data, media_type, platform)

    def add_layer(self, write_tar: Any) -> Layer:
        """``write_tar(fileobj)`` streams an uncompressed tar; it is gzipped here."""
        with tempfile.NamedTemporaryFile(dir=self.blobs, delete=False) as tmp:
            compressed = _HashingWriter(tmp)
            with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0,
                               compresslevel=6) as gz:
                raw = _HashingWriter(gz)  # type: ignore[arg-type]
                write_tar(raw)
        digest = compressed.sha.hexdigest()
        os.replace(tmp.name, self.blobs / digest)
        desc = Descriptor(MT_LAYER_GZIP, f"sha256:{digest}", compressed.size)
        return Layer(desc, f"sha256:{raw.sha.hexdigest()}")

    def tag(self, descriptor: Descriptor, tag: str) -> None:
        kept = [m for m in self.index["manifests"]
                if m.get("annotations", {}).get(REF_NAME) != tag]
        entry = descriptor.to_json()
        entry.setdefault("annotations", {})[REF_NAME] = tag
        self.index["manifests"] = [*kept, entry]
        (self.root / "index.json").write_text(json.dumps(self.index, indent=2, sort_keys=True))

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.split(":", 1)[1]


def write_entries_tar(entries: Iterable[Entry], fileobj: IO[bytes]) -> None:
    """A deterministic tar of ``entries``: fixed mtime, numeric owners, no names."""
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.path if entry.kind != "dir" else entry.path + "/")
            info.mtime = EPOCH
            info.mode = entry.mode
            info.uid, info.gid = entry.uid, entry.gid
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.target
                tar.addfile(info)
            else:
                data = entry.source.read_bytes() if entry.source else entry.data
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def write_directory_tar(root: Path, fileobj: IO[bytes], exclude_contents: Sequence[str]) -> None:
    """Tar a real directory (sorted, owners kept); ``exclude_contents`` dirs stay empty."""
    skip = {name.strip("/") for name in exclude_contents}

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        name = info.name.removeprefix("./")
        parent = name.split("/", 1)[0]
        if parent in skip and "/" in name:
            return None
        info.uname = info.gname = ""
        return info

    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for child in sorted(os.listdir(root)):
            tar.add(str(root / child), arcname=child, recursive=True, filter=keep)


def image_config(platform: str, layers: Sequence[Layer], config: dict[str, Any],
                 created_by: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "created": CREATED,
        **platform_json(platform),
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": CREATED, "created_by": created_by}],
    }
    return doc


def write_image(
    layout: Path,
    tag: str,
    layers: Sequence[Layer],
    writer: OciLayoutWriter,
    *,
    platforms: Sequence[str] = ("linux/amd64",),
    config: dict[str, Any] | None = None,
    created_by: str = "layerkit test support",
) -> OciImage:
    """Write configs and manifests for ``layers``, one per platform, and tag them."""
    base_config = config or {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["sh"]}
    manifests: list[Descriptor] = []
    for platform in platforms:
        # Configs differ per platform (architecture, and a label) so their digests differ.
        per_platform = {**base_config,
                        "Labels": {**base_config.get("Labels", {}),
                                   "org.layerkit.test.platform": platform}}
        cfg = writer.add_json(image_config(platform, layers, per_platform, created_by), MT_CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": cfg.to_json(),
            "layers": [layer.descriptor.to_json() for layer in layers],
        }
        manifests.append(writer.add_json(manifest, MT_MANIFEST, platform))
    if len(manifests) == 1:
        top = Descriptor(manifests[0].media_type, manifests[0].digest, manifests[0].size)
    else:
        index = {"schemaVersion": 2, "mediaType": MT_INDEX,
                 "manifests": [m.to_json() for m in manifests]}
        top = writer.add_json(index, MT_INDEX)
    writer.tag(top, tag)
    return OciImage(layout, tag, top, tuple(manifests), tuple(layers))


def build_busybox_image(
    layout: Path,
    tag: str = "1.35",
    *,
    platforms: Sequence[str] = ("linux/amd64",),
    busybox: Path | None = None,
) -> OciImage:
    """The busybox base image; two or more ``platforms`` make an image index.

    Every platform entry shares the one (host) layer: good enough for
    platform-selection tests, not for running the arm64 variant.
    """
    entries = busybox_entries(busybox)
    writer = OciLayoutWriter(layout)
    layer = writer.add_layer(lambda f: write_entries_tar(entries, f))
    return write_image(layout, tag, [layer], writer, platforms=platforms,
                       created_by="busybox rootfs (tests/support/images.py)")


def build_rootfs_image(
    layout: Path,
    tag: str,
    rootfs: Path,
    *,
    config: dict[str, Any] | None = None,
    platform: str = "linux/amd64",
    exclude_contents: Sequence[str] = ("dev", "proc", "sys", "run", "tmp"),
) -> OciImage:
    """A single-layer image from a real directory such as a debootstrap rootfs."""
    writer = OciLayoutWriter(layout)
    layer = writer.add_layer(lambda f: write_directory_tar(rootfs, f, exclude_contents))
    return write_image(layout, tag, [layer], writer, platforms=[platform], config=config,
                       created_by=f"rootfs of {rootfs.name} (tests/support/images.py)")


def _tar_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
    tar.addfile(info, io.BytesIO(data))


def write_docker_archive(image: OciImage, dest: Path, repo_tag: str,
                         platform: str | None = None) -> Path:
    """A ``docker load``-able tar (layers stored uncompressed, named by diff_id)."""
    writer = OciLayoutWriter(image.layout)
    wanted = platform or image.manifests[0].platform
    manifest_desc = next(m for m in image.manifests if m.platform == wanted)
    manifest = json.loads(writer.blob_path(manifest_desc.digest).read_bytes())
    config_hex = manifest["config"]["digest"].split(":", 1)[1]
    config = writer.blob_path(manifest["config"]["digest"]).read_bytes()
    layer_names: list[str] = []
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        _tar_bytes(tar, f"{config_hex}.json", config)
        for layer in image.layers:
            hexid = layer.diff_id.split(":", 1)[1]
            with gzip.open(writer.blob_path(layer.descriptor.digest), "rb") as raw:
                data = raw.read()
            dir_info = tarfile.TarInfo(f"{hexid}/")
            dir_info.type, dir_info.mtime, dir_info.mode = tarfile.DIRTYPE, EPOCH, 0o755
            tar.addfile(dir_info)
            _tar_bytes(tar, f"{hexid}/VERSION", b"1.0")
            _tar_bytes(tar, f"{hexid}/layer.tar", data)
            layer_names.append(f"{hexid}/layer.tar")
        repo, _, tag = repo_tag.rpartition(":")
        docker_manifest = [{"Config": f"{config_hex}.json", "RepoTags": [repo_tag],
                            "Layers": layer_names}]
        _tar_bytes(tar, "manifest.json", json.dumps(docker_manifest).encode())
        last = layer_names[-1].split("/")[0]
        _tar_bytes(tar, "repositories", json.dumps({repo: {tag: last}}).encode())
    return dest


def push_image(image: OciImage, dest_ref: str, *, tls_verify: bool = False,
               creds: str | None = None) -> None:
    """Push with ``skopeo copy`` (all platforms of an index)."""
    skopeo = require_tool("skopeo", "needed to push test images")
    argv = [str(skopeo), "copy", "--quiet", f"--dest-tls-verify={str(tls_verify).lower()}"]
    if image.is_index:
        argv.append("--all")
    if creds:
        argv += ["--dest-creds", creds]
    argv += [image.oci_ref, f"docker://{dest_ref}"]
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"skopeo copy to {dest_ref} failed: {result.stderr.strip()}")


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.images",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="kind", required=True)
    bb = sub.add_parser("busybox", help="the busybox base image")
    bb.add_argument("--platform", action="append", help="repeat for an index")
    rf = sub.add_parser("rootfs", help="an image from a rootfs directory")
    rf.add_argument("rootfs", type=Path)
    rf.add_argument("--env", action="append", default=[], help="KEY=VALUE")
    rf.add_argument("--cmd", default="sh", help="CMD as a single word")
    for p in (bb, rf):
        p.add_argument("--oci", type=Path, required=True, help="OCI layout dir to (re)write")
        p.add_argument("--tag", default="latest")
        p.add_argument("--docker-archive", type=Path, help="also write a docker-archive tar")
        p.add_argument("--repo-tag", help="name inside the docker archive")
        p.add_argument("--push", action="append", default=[], help="registry reference")
    args = parser.parse_args(argv)
    if args.oci.exists():
        shutil.rmtree(args.oci)
    if args.kind == "busybox":
        image = build_busybox_image(args.oci, args.tag,
                                    platforms=args.platform or ["linux/amd64"])
    else:
        env = [f"PATH={DEFAULT_PATH}", *args.env]
        image = build_rootfs_image(args.oci, args.tag, args.rootfs,
                                   config={"Env": env, "Cmd": [args.cmd]})
    if args.docker_archive:
        write_docker_archive(image, args.docker_archive, args.repo_tag or f"image:{args.tag}")
    for ref in args.push:
        push_image(image, ref)
    print(f"{image.oci_ref} {image.top.digest}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
