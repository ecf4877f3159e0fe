"""Writes an image as an OCI image layout: a directory, or a tar of one (oci-archive).

Layout::

    oci-layout                 {"imageLayoutVersion":"1.0.0"}
    index.json                 one entry per tag, annotated with
                               org.opencontainers.image.ref.name=<tag> and
                               io.containerd.image.name=<full name>
    blobs/sha256/<hex>         config, layers (compressed), manifest

A directory export adds to an existing layout (an entry with the same ref
name is replaced) and writes index.json last and atomically, so an
interrupted export leaves the previous index intact. A tar export is
deterministic: sorted entries, fixed metadata (see archive.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from layerkit.content import mediatypes as mt
from layerkit.content.digest import check_sha256_digest
from layerkit.content.errors import ExportError, InvalidDocumentError
from layerkit.content.layers import Compression
from layerkit.content.oci import Descriptor, ImageIndex, OCILayout
from layerkit.content.store import ContentStore
from layerkit.exporter._atomic import atomic_output, write_atomic
from layerkit.exporter.archive import ArchiveWriter, source_date_epoch
from layerkit.exporter.image import ExportImage
from layerkit.exporter.manifest import BuiltManifest, build_manifest
from layerkit.exporter.refs import parse_ref
from layerkit.fastclass import replace


def index_entries(built: BuiltManifest, tags: Sequence[str]) -> list[Descriptor]:
    """One index.json entry per image name (one unnamed entry when there are none).

    Names are ``name[:tag]``; like BuildKit, the ref name is the tag alone (what
    ``skopeo ... oci:DIR:tag`` matches) and the full name goes to containerd's key.
    """
    if not tags:
        return [built.descriptor]
    entries = []
    for tag in tags:
        ref = parse_ref(tag)
        annotations = {
            mt.ANNOTATION_CONTAINERD_NAME: ref.full_name,
            mt.ANNOTATION_REF_NAME: ref.tag,
        }
        entries.append(replace(built.descriptor, annotations=annotations))
    return entries


def export_oci_layout(
    store: ContentStore,
    image: ExportImage,
    dest: Path,
    *,
    tags: Sequence[str] = (),
    tar: bool = False,
    compression: str | Compression = Compression.GZIP,
    level: int | None = None,
    max_workers: int | None = None,
    epoch: int | None = None,
) -> BuiltManifest:
    """Export ``image`` to ``dest`` (a layout directory, or an oci-archive tar file).

    ``epoch`` defaults to ``SOURCE_DATE_EPOCH``; it only sets tar entry mtimes.
    Media types are always OCI: skopeo and umoci ignore other index entries.
    """
    built = build_manifest(
        store, image, compression=compression, level=level, max_workers=max_workers
    )
    entries = index_entries(built, tags)
    if tar:
        index = ImageIndex(manifests=tuple(entries))
        _write_layout_tar(store, built, index, Path(dest), epoch)
    else:
        _write_layout_dir(store, built, entries, Path(dest))
    return built


def _write_layout_tar(
    store: ContentStore, built: BuiltManifest, index: ImageIndex, dest: Path, epoch: int | None
) -> None:
    digests = sorted({b.digest for b in built.blobs} | {built.descriptor.digest})
    with atomic_output(dest) as f:
        out = ArchiveWriter(f, source_date_epoch() if epoch is None else epoch)
        out.add_bytes("oci-layout", OCILayout().to_json())
        out.add_bytes("index.json", index.to_json())
        out.add_dir("blobs")
        out.add_dir("blobs/sha256")
        for digest in digests:
            out.add_file(f"blobs/sha256/{check_sha256_digest(digest)}", store.path(digest))
        out.close()


def _read_existing_index(dest: Path) -> list[Descriptor]:
    layout_file, index_file = dest / "oci-layout", dest / "index.json"
    if not layout_file.exists():
        if dest.exists() and any(dest.iterdir()):
            raise ExportError(
                f"{dest} exists, is not empty and is not an OCI layout",
                hint="choose an empty or new directory for dest",
            )
        return []
    try:
        OCILayout.from_json(layout_file.read_bytes())
        if not index_file.exists():
            return []
        return list(ImageIndex.from_json(index_file.read_bytes()).manifests)
    except InvalidDocumentError as e:
        raise ExportError(
            f"{dest} holds a broken OCI layout: {e.message}",
            hint="remove the directory or choose another dest",
        ) from None


def _write_layout_dir(
    store: ContentStore, built: BuiltManifest, entries: list[Descriptor], dest: Path
) -> None:
    existing = _read_existing_index(dest)
    blob_dir = dest / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    for desc in (*built.blobs, built.descriptor):
        target = blob_dir / check_sha256_digest(desc.digest)
        if target.exists() and target.stat().st_size == desc.size:
            continue  # content-addressed: same name and size means same blob
        with atomic_output(target) as f, store.open(desc.digest) as src:
            shutil.copyfileobj(src, f, 1 << 20)
    if not (dest / "oci-layout").exists():
        write_atomic(dest / "oci-layout", OCILayout().to_json())
    new_names = {e.annotations.get(mt.ANNOTATION_REF_NAME) for e in entries}
    kept = [
        e
        for e in existing
        if e.annotations.get(mt.ANNOTATION_REF_NAME) not in new_names
        and not (not e.annotations and e.digest == built.descriptor.digest)
    ]
    write_atomic(dest / "index.json", ImageIndex(manifests=(*kept, *entries)).to_json())
