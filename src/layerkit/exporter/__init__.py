"""layerkit.exporter: writes built images out (OCI layout, docker-archive, rootfs) and
reads image archives back into the content store.

Public API (pinned by tests/unit/test_content_api.py)."""

from __future__ import annotations

from layerkit.exporter.archive import source_date_epoch
from layerkit.exporter.docker_archive import export_docker_archive
from layerkit.exporter.image import ExportImage
from layerkit.exporter.loader import ArchiveError, LoadedImage, load_archive
from layerkit.exporter.manifest import BuiltManifest, build_manifest, compress_layers
from layerkit.exporter.oci_layout import export_oci_layout
from layerkit.exporter.refs import ImageRef, parse_ref
from layerkit.exporter.rootfs import export_local, export_rootfs_tar

__all__ = [
    "ArchiveError",
    "BuiltManifest",
    "ExportImage",
    "ImageRef",
    "LoadedImage",
    "build_manifest",
    "compress_layers",
    "export_docker_archive",
    "export_local",
    "export_oci_layout",
    "export_rootfs_tar",
    "load_archive",
    "parse_ref",
    "source_date_epoch",
]
