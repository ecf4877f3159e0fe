"""Independent checks of what ended up in a content store or a test registry, and small
synthetic images to push and pull.

Input: a ``ContentStore``, or a running test registry (its address and storage root).
Output: lists of problems (empty when all is well): a blob whose bytes do not hash to
its name, a leftover temp file, a manifest naming a blob the registry cannot serve or
serves damaged. The registry is read with plain ``httpx`` and from its files on disk,
never through layerkit's client, so a bug there cannot hide itself.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from layerkit.content import ContentStore

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def store_problems(store: ContentStore) -> list[str]:
    """Blobs whose bytes do not hash to their names, and temp files left behind."""
    problems = [f"corrupt blob kept: {d}" for d in store.iter_digests() if not store.verify(d)]
    if store.tmp_dir.exists():
        problems += [f"temp file left: {p}" for p in store.tmp_dir.iterdir()]
    return problems


def assert_store_clean(store: ContentStore) -> None:
    problems = store_problems(store)
    assert not problems, problems


def registry_blob_problems(storage_root: Path) -> tuple[list[str], int]:
    """Every blob file in a distribution registry's filesystem storage
    (``docker/registry/v2/blobs/sha256/xx/<hex>/data``) must hash to its name.
    Returns the problems and how many blob files were checked."""
    top = storage_root / "docker" / "registry" / "v2" / "blobs" / "sha256"
    problems: list[str] = []
    checked = 0
    if not top.is_dir():
        return problems, checked
    for prefix in sorted(top.iterdir()):
        for entry in sorted(prefix.iterdir()):
            data_file = entry / "data"
            if not data_file.is_file():
                continue
            checked += 1
            h = hashlib.sha256()
            with data_file.open("rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            if h.hexdigest() != entry.name:
                problems.append(f"registry stores a corrupt blob: sha256:{entry.name}")
    return problems, checked


class DirectRegistry:
    """Reads a loopback test registry over plain HTTP, bypassing any proxy."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._http = httpx.Client(base_url=f"http://{address}", timeout=30.0)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DirectRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def manifest(self, repository: str, reference: str) -> bytes | None:
        """The manifest bytes under ``reference`` (tag or digest), or None when absent."""
        r = self._http.get(f"/v2/{repository}/manifests/{reference}",
                           headers={"Accept": ", ".join(MANIFEST_TYPES)})
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.content

    def blob(self, repository: str, digest: str) -> bytes:
        r = self._http.get(f"/v2/{repository}/blobs/{digest}", follow_redirects=True)
        r.raise_for_status()
        return r.content

    def blob_problem(self, repository: str, digest: str, size: int | None) -> str | None:
        r = self._http.get(f"/v2/{repository}/blobs/{digest}", follow_redirects=True)
        if r.status_code != 200:
            return f"{repository}@{digest}: HTTP {r.status_code}"
        if sha256(r.content) != digest:
            return f"{repository}@{digest}: served bytes do not match the digest"
        if size is not None and len(r.content) != size:
            return f"{repository}@{digest}: {len(r.content)} bytes, manifest says {size}"
        return None

    def manifest_problems(self, repository: str, reference: str,
                          data: bytes | None = None) -> list[str]:
        """Problems with the manifest (or index, recursively) under ``reference``:
        any referenced manifest or blob the registry cannot serve intact."""
        if data is None:
            data = self.manifest(repository, reference)
            if data is None:
                return [f"{repository}:{reference}: manifest missing"]
        try:
            doc = json.loads(data)
        except ValueError:
            return [f"{repository}:{reference}: the stored manifest is not JSON"]
        problems: list[str] = []
        for child in doc.get("manifests") or []:
            problems += self.manifest_problems(repository, str(child["digest"]))
        blobs = ([doc["config"]] if "config" in doc else []) + list(doc.get("layers") or [])
        for desc in blobs:
            problem = self.blob_problem(repository, str(desc["digest"]), desc.get("size"))
            if problem is not None:
                problems.append(f"{repository}:{reference}: {problem}")
        return problems


# -- synthetic images ------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticLayer:
    blob: bytes  # a gzip'd tar
    diff_id: str

    @property
    def digest(self) -> str:
        return sha256(self.blob)


def make_layer(rng: random.Random, size: int, name: str = "payload.bin") -> SyntheticLayer:
    """A gzip'd tar holding one file of ``size`` random (incompressible) bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, 1700000000
        tf.addfile(info, io.BytesIO(rng.randbytes(size)))
    tar = raw.getvalue()
    return SyntheticLayer(gzip.compress(tar, compresslevel=1, mtime=0), sha256(tar))


def make_image(layers: Sequence[SyntheticLayer], arch: str = "amd64",
               label: str = "") -> tuple[bytes, bytes]:
    """(manifest, config) of an OCI image made of ``layers``."""
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Labels": {"soak": label}} if label else {},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer.digest, "size": len(layer.blob)} for layer in layers],
    }, sort_keys=True).encode()
    return manifest, config

