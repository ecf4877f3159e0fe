"""Pins the public API of layerkit.content and layerkit.exporter (the build engine uses it)."""

from __future__ import annotations

import layerkit.content
import layerkit.exporter


def test_content_all_is_pinned() -> None:
    assert sorted(layerkit.content.__all__) == sorted([
        "BlobInfo", "BlobNotFoundError", "BlobWriter", "Compression", "CompressionIndex",
        "ContainerConfig", "ContentError", "ContentStore", "Descriptor", "DigestMismatchError",
        "ExportError", "HashingReader", "History", "ImageConfig", "ImageIndex", "ImageManifest",
        "InvalidDigestError", "InvalidDocumentError", "LockTimeoutError", "OCILayout",
        "Platform", "RootFS", "UnsafeLayerError", "UnsupportedCompressionError",
        "canonical_json", "check_sha256_digest", "compress_stream", "detect_compression",
        "exclusive_lock", "hash_stream", "mediatypes", "named_lock", "open_decompressed",
        "parse_document", "sha256_digest", "shared_lock",
    ])  # fmt: skip
    for name in layerkit.content.__all__:
        assert hasattr(layerkit.content, name), name


def test_exporter_all_is_pinned() -> None:
    assert sorted(layerkit.exporter.__all__) == sorted([
        "ArchiveError", "BuiltManifest", "ExportImage", "ImageRef", "LoadedImage",
        "build_manifest", "compress_layers", "export_docker_archive", "export_local",
        "export_oci_layout", "export_rootfs_tar", "load_archive", "parse_ref",
        "source_date_epoch",
    ])  # fmt: skip
    for name in layerkit.exporter.__all__:
        assert hasattr(layerkit.exporter, name), name
