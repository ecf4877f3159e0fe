"""Reads image archives into the content store: docker-archive (``docker save``,
manifest.json) and oci-archive (``skopeo copy ... oci-archive:``, index.json).

Every layer is decompressed (by sniffing) and stored *uncompressed*, keyed and
verified by its diff_id from the config; OCI blobs are also checked against
their descriptor digests and sizes. Configs are stored byte for byte, so the
config digest survives the round trip.
"""

from __future__ import annotations

import json
import lzma
import re
import tarfile
from pathlib import Path
from typing import IO

import zstandard

from layerkit.content import mediatypes as mt
from layerkit.content.digest import digest_problem, sha256_digest
from layerkit.content.errors import ContentError, DigestMismatchError, InvalidDocumentError
from layerkit.content.layers import HashingReader, open_decompressed
from layerkit.content.oci import Descriptor, ImageConfig, ImageIndex, ImageManifest
from layerkit.content.store import ContentStore
from layerkit.fastclass import dataclass

_DIGEST_NAME_RE = re.compile(r"(?:^|/)(?:blobs/sha256/)?([a-f0-9]{64})(?:\.json)?$")
_MAX_DOC = 16 << 20  # JSON documents bigger than this are not plausible


class ArchiveError(ContentError):
    reference = "bad-image-archive"


@dataclass(frozen=True)
class LoadedImage:
    config_digest: str
    diff_ids: tuple[str, ...]
    repo_tags: tuple[str, ...]  # "name:tag" (docker) or the full containerd name (OCI)
    manifest_digest: str | None = None  # OCI archives only
    ref_name: str | None = None  # org.opencontainers.image.ref.name, OCI archives only


class _Archive:
    def __init__(self, tar: tarfile.TarFile, path: Path) -> None:
        self.tar = tar
        self.path = path
        self.members: dict[str, tarfile.TarInfo] = {}
        for info in tar.getmembers():
            name = "/".join(p for p in info.name.split("/") if p not in ("", "."))
            self.members[name] = info

    def open(self, name: str) -> IO[bytes]:
        name = "/".join(p for p in name.split("/") if p not in ("", "."))
        info = self.members.get(name)
        data = self.tar.extractfile(info) if info is not None and info.isfile() else None
        if data is None:
            raise ArchiveError(
                f"{self.path}: the archive has no file {name!r}",
                hint="the archive is truncated or was not written by docker save / skopeo",
            )
        return data

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            data = f.read(_MAX_DOC + 1)
        if len(data) > _MAX_DOC:
            raise ArchiveError(f"{self.path}: {name!r} is too large for a JSON document")
        return data

    def read_blob(self, desc: Descriptor) -> bytes:
        data = self.read(_blob_name(desc))
        _check(desc, sha256_digest(data), len(data))
        return data


def _blob_name(desc: Descriptor) -> str:
    if digest_problem(desc.digest) is not None:
        raise ArchiveError(f"invalid digest {desc.digest!r}")
    algorithm, _, encoded = desc.digest.partition(":")
    if algorithm != "sha256":
        raise ArchiveError(f"unsupported digest algorithm in {desc.digest!r}")
    return f"blobs/{algorithm}/{encoded}"


def _check(desc: Descriptor, digest: str, size: int) -> None:
    if digest != desc.digest or size != desc.size:
        raise DigestMismatchError(
            f"blob {desc.digest} ({desc.size} bytes) in the archive hashes to {digest} "
            f"({size} bytes)",
            hint="the archive is corrupted; export or download it again",
        )


def _store_layer(
    archive: _Archive, store: ContentStore, name: str, diff_id: str, desc: Descriptor | None
) -> None:
    """Decompress one layer into the store as its diff_id (skipped if already there)."""
    if store.has(diff_id):
        return
    with archive.open(name) as raw:
        hashed = HashingReader(raw)
        plain, kind = open_decompressed(hashed)
        with store.writer(expected_digest=diff_id) as out:
            try:
                while chunk := plain.read(1 << 20):
                    out.write(chunk)
            except (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError) as e:
                raise ArchiveError(
                    f"{archive.path}: layer {name!r} is not valid {kind} data: {e}",
                    hint="the archive is corrupted; export or download it again",
                ) from None
            if desc is not None:
                hashed.read()  # drain any trailing bytes so the whole blob is hashed
                _check(desc, hashed.digest, hashed.size)


def _store_config(store: ContentStore, raw: bytes, where: str) -> ImageConfig:
    try:
        config = ImageConfig.from_json(raw)
    except InvalidDocumentError as e:
        raise ArchiveError(f"{where}: invalid image config: {e.message}") from None
    store.write_bytes(raw)
    return config


def _load_docker(archive: _Archive, store: ContentStore) -> list[LoadedImage]:
    try:
        entries = json.loads(archive.read("manifest.json"))
    except ValueError as e:
        raise ArchiveError(f"{archive.path}: manifest.json is not JSON: {e}") from None
    if not isinstance(entries, list):
        raise ArchiveError(f"{archive.path}: manifest.json is not a list")
    images = []
    for i, entry in enumerate(entries):
        where = f"{archive.path}: manifest.json[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise ArchiveError(f"{where}: missing Config")
        layers = entry.get("Layers") or []
        tags = entry.get("RepoTags") or []
        if not all(isinstance(x, str) for x in [*layers, *tags]):
            raise ArchiveError(f"{where}: Layers and RepoTags must be lists of strings")
        raw = archive.read(entry["Config"])
        digest = sha256_digest(raw)
        named = _DIGEST_NAME_RE.search(entry["Config"])
        if named and f"sha256:{named.group(1)}" != digest:
            raise DigestMismatchError(f"{where}: config {entry['Config']} hashes to {digest}")
        config = _store_config(store, raw, where)
        diff_ids = config.rootfs.diff_ids
        if len(diff_ids) != len(layers):
            raise ArchiveError(
                f"{where}: {len(layers)} layers listed but the config has {len(diff_ids)} diff_ids"
            )
        for name, diff_id in zip(layers, diff_ids, strict=True):
            _store_layer(archive, store, name, diff_id, None)
        images.append(LoadedImage(digest, diff_ids, tuple(tags)))
    return images


def _load_oci_manifest(
    archive: _Archive, store: ContentStore, desc: Descriptor, top: Descriptor
) -> LoadedImage:
    manifest = ImageManifest.from_json(archive.read_blob(desc))
    raw = archive.read_blob(manifest.config)
    config = _store_config(store, raw, f"{archive.path}: {manifest.config.digest}")
    diff_ids = config.rootfs.diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise ArchiveError(
            f"{archive.path}: manifest {desc.digest} has {len(manifest.layers)} layers "
            f"but its config has {len(diff_ids)} diff_ids"
        )
    for layer, diff_id in zip(manifest.layers, diff_ids, strict=True):
        _store_layer(archive, store, _blob_name(layer), diff_id, layer)
    name = top.annotations.get(mt.ANNOTATION_CONTAINERD_NAME)
    return LoadedImage(
        config_digest=manifest.config.digest,
        diff_ids=diff_ids,
        repo_tags=(name,) if name else (),
        manifest_digest=desc.digest,
        ref_name=top.annotations.get(mt.ANNOTATION_REF_NAME),
    )


def _load_oci(archive: _Archive, store: ContentStore) -> list[LoadedImage]:
    try:
        index = ImageIndex.from_json(archive.read("index.json"))
    except InvalidDocumentError as e:
        raise ArchiveError(f"{archive.path}: index.json: {e.message}") from None
    images = []
    pending = [(d, d) for d in index.manifests]
    while pending:
        desc, top = pending.pop(0)
        if desc.media_type in mt.INDEX_TYPES:
            nested = ImageIndex.from_json(archive.read_blob(desc))
            pending.extend((d, top) for d in nested.manifests)
        elif desc.media_type in mt.MANIFEST_TYPES:
            images.append(_load_oci_manifest(archive, store, desc, top))
        # other artifacts (attestations, signatures) are not images: skip them
    return images


def load_archive(path: Path, store: ContentStore) -> list[LoadedImage]:
    """Load every image in the docker-archive or oci-archive tar at ``path``."""
    path = Path(path)
    try:
        tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed below
    except (OSError, tarfile.TarError) as e:
        raise ArchiveError(f"{path}: not a readable tar archive: {e}") from None
    with tar, store.lease():
        archive = _Archive(tar, path)
        if "manifest.json" in archive.members:
            return _load_docker(archive, store)
        if "index.json" in archive.members:
            return _load_oci(archive, store)
    raise ArchiveError(
        f"{path}: neither manifest.json (docker-archive) nor index.json (oci-archive) found",
        hint="create the archive with `docker save` or `skopeo copy ... oci-archive:FILE`",
    )

