"""Small exporter helpers: image names for archives, SOURCE_DATE_EPOCH, ExportImage checks."""

from __future__ import annotations

import pytest

from layerkit.content.digest import sha256_digest
from layerkit.content.errors import ExportError
from layerkit.content.oci import ImageConfig, RootFS
from layerkit.exporter import ExportImage, parse_ref, source_date_epoch


@pytest.mark.parametrize(
    ("ref", "repo_tag", "tag", "full"),
    [
        ("busybox", "busybox:latest", "latest", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "busybox:1.36", "1.36", "docker.io/library/busybox:1.36"),
        ("team/app:v2", "team/app:v2", "v2", "docker.io/team/app:v2"),
        ("localhost:5000/app", "localhost:5000/app:latest", "latest",
         "localhost:5000/app:latest"),
        ("ghcr.io/o/r:sha-1", "ghcr.io/o/r:sha-1", "sha-1", "ghcr.io/o/r:sha-1"),
    ],
)
def test_parse_ref(ref: str, repo_tag: str, tag: str, full: str) -> None:
    parsed = parse_ref(ref)
    assert (parsed.repo_tag, parsed.tag, parsed.full_name) == (repo_tag, tag, full)


@pytest.mark.parametrize("ref", ["Upper:1", "app@sha256:" + "a" * 64, "a:b:c", "app:", ""])
def test_parse_ref_rejects(ref: str) -> None:
    with pytest.raises(ExportError):
        parse_ref(ref)


def test_source_date_epoch() -> None:
    assert source_date_epoch({}) is None
    assert source_date_epoch({"SOURCE_DATE_EPOCH": ""}) is None
    assert source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}) == 1_700_000_000
    with pytest.raises(ExportError, match="not an integer"):
        source_date_epoch({"SOURCE_DATE_EPOCH": "yesterday"})
    with pytest.raises(ExportError, match="negative"):
        source_date_epoch({"SOURCE_DATE_EPOCH": "-5"})


def test_export_image_checks_diff_ids_against_config() -> None:
    ids = (sha256_digest(b"a"), sha256_digest(b"b"))
    config = ImageConfig(architecture="amd64", os="linux", rootfs=RootFS(ids)).to_json()
    image = ExportImage.create(config)
    assert image.diff_ids == ids and image.config_digest == sha256_digest(config)
    assert ExportImage.create(config, list(ids)) == image
    with pytest.raises(ExportError, match="do not match"):
        ExportImage.create(config, ids[:1])
