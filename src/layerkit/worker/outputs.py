"""Outputs: a committed image → the files ``-o/--output`` asked for.

``type=image`` (the default) is the local store, already written by the commit;
``type=oci`` an OCI layout (a tar when ``dest`` ends in ``.tar``, or with
``tar=true``; a directory otherwise), compressed with ``compression=gzip|zstd``;
``type=docker`` a ``docker load`` tar (tags from ``name=`` or ``-t``);
``type=local`` the final root filesystem in a directory; ``type=tar`` the same
as one tar file. Layers are compressed here, at export, never at build time.
"""

from __future__ import annotations

from collections.abc import Sequence

from layerkit.fastclass import dataclass
from layerkit.worker.commit import CommittedImage
from layerkit.worker.specs import OutputSpec
from layerkit.worker.store import Store

__all__ = ["ExportResult", "export_outputs"]


@dataclass(frozen=True)
class ExportResult:
    spec: OutputSpec
    manifest_digest: str | None = None  # for oci/docker: the manifest written


def _wants_tar(spec: OutputSpec) -> bool:
    flag = spec.attrs.get("tar")
    if flag is not None:
        return flag.lower() not in ("false", "0", "no")
    assert spec.dest is not None
    return spec.dest.suffix.lower() in (".tar", ".oci") and not spec.dest.is_dir()


def export_outputs(
    store: Store, image: CommittedImage, specs: Sequence[OutputSpec], *, tags: Sequence[str],
    jobs: int | None = None,
) -> list[ExportResult]:
    if all(spec.type == "image" for spec in specs):
        return [ExportResult(spec, image.manifest_digest) for spec in specs]
    from layerkit.exporter import (
        ExportImage,
        export_docker_archive,
        export_local,
        export_oci_layout,
        export_rootfs_tar,
    )

    content = store.content
    results: list[ExportResult] = []
    export_image = ExportImage.create(image.config, image.diff_ids)
    for spec in specs:
        if spec.type == "image":
            results.append(ExportResult(spec, image.manifest_digest))
            continue
        assert spec.dest is not None
        names = [n for n in spec.attrs.get("name", "").split(";") if n] or list(tags)
        if spec.type == "oci":
            compression = spec.attrs.get("compression", "gzip")
            if compression == "uncompressed":
                compression = "none"
            if not _wants_tar(spec):
                spec.dest.mkdir(parents=True, exist_ok=True)
            built = export_oci_layout(content, export_image, spec.dest, tags=names,
                                      tar=_wants_tar(spec), compression=compression,
                                      max_workers=jobs)
            results.append(ExportResult(spec, built.descriptor.digest))
        elif spec.type == "docker":
            spec.dest.parent.mkdir(parents=True, exist_ok=True)
            built = export_docker_archive(content, export_image, spec.dest, tags=names)
            results.append(ExportResult(spec, built.descriptor.digest))
        elif spec.type == "local":
            spec.dest.mkdir(parents=True, exist_ok=True)
            export_local(content, image.diff_ids, spec.dest)
            results.append(ExportResult(spec))
        elif spec.type == "tar":
            spec.dest.parent.mkdir(parents=True, exist_ok=True)
            export_rootfs_tar(content, image.diff_ids, spec.dest)
            results.append(ExportResult(spec))
    return results
