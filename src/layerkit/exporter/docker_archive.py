"""Writes an image as a ``docker save``-style tar that ``docker load`` and ``podman load``
accept.

Like Docker 25+ it is at the same time an OCI layout (oci-layout, index.json,
blobs/sha256/...) and a legacy docker-archive (manifest.json with Config,
RepoTags and Layers paths into blobs/). Layers are stored uncompressed, so each
layer blob's digest is its diff_id, as ``docker save`` does. The tar is
deterministic (sorted blobs, fixed metadata; see archive.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from layerkit.content.digest import check_sha256_digest
from layerkit.content.layers import Compression
from layerkit.content.oci import ImageIndex, OCILayout
from layerkit.content.store import ContentStore
from layerkit.exporter._atomic import atomic_output
from layerkit.exporter.archive import ArchiveWriter, source_date_epoch
from layerkit.exporter.image import ExportImage
from layerkit.exporter.manifest import BuiltManifest, build_manifest
from layerkit.exporter.oci_layout import index_entries
from layerkit.exporter.refs import parse_ref


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{check_sha256_digest(digest)}"


def docker_manifest_json(built: BuiltManifest, tags: Sequence[str]) -> bytes:
    """The legacy ``manifest.json``: one entry, paths into blobs/."""
    entry = {
        "Config": _blob_name(built.config.digest),
        "RepoTags": [parse_ref(t).repo_tag for t in tags],
        "Layers": [_blob_name(layer.digest) for layer in built.layers],
    }
    return json.dumps([entry], separators=(",", ":")).encode()


def export_docker_archive(
    store: ContentStore,
    image: ExportImage,
    dest: Path,
    *,
    tags: Sequence[str] = (),
    epoch: int | None = None,
) -> BuiltManifest:
    """Write ``image`` to the tar file ``dest``; ``tags`` are ``name[:tag]`` strings."""
    built = build_manifest(store, image, compression=Compression.NONE)
    index = ImageIndex(manifests=tuple(index_entries(built, tags)))
    digests = sorted({b.digest for b in built.blobs} | {built.descriptor.digest})
    with atomic_output(Path(dest)) as f:
        out = ArchiveWriter(f, source_date_epoch() if epoch is None else epoch)
        out.add_bytes("oci-layout", OCILayout().to_json())
        out.add_bytes("index.json", index.to_json())
        out.add_bytes("manifest.json", docker_manifest_json(built, tags))
        out.add_dir("blobs")
        out.add_dir("blobs/sha256")
        for digest in digests:
            out.add_file(_blob_name(digest), store.path(digest))
        out.close()
    return built
