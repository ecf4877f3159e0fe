"""Pins layerkit.registry's public API, the error tree, retry timing and platform matching."""

from __future__ import annotations

import random

import pytest

import layerkit.registry as registry
from layerkit.content.oci import ImageIndex
from layerkit.errors import LayerkitError
from layerkit.registry import PlatformNotFoundError, RetryPolicy, select_manifest
from layerkit.registry import errors as errs
from layerkit.registry.retry import is_retryable_status, parse_retry_after

EXPECTED_ALL = {
    "MANIFEST_ACCEPT", "BlobIntegrityError", "BlobProvider", "ClientStats",
    "CredentialHelperError", "CredentialStore", "Credentials", "Endpoint", "FetchedManifest",
    "HostConfig", "ImageToPush", "InvalidReferenceError", "ManifestError", "ManifestInfo",
    "NotFoundError", "PlatformNotFoundError", "PulledImage", "PushResult", "Reference",
    "RegistryAuth", "RegistryClient", "RegistryConfig", "RegistryConfigError",
    "RegistryConnectionError", "RegistryError", "RegistryResponseError", "RegistryServerError",
    "RetryPolicy", "StaticCredentials", "UnauthorizedError", "available_platforms",
    "load_config", "login", "logout", "parse_reference", "pull_image", "push_blob",
    "push_image", "push_index", "push_layout", "LayoutBlobs", "resolve_digest", "select_manifest",
}  # fmt: skip


def test_public_api_is_pinned() -> None:
    assert set(registry.__all__) == EXPECTED_ALL
    for name in registry.__all__:
        assert hasattr(registry, name), name


def test_error_tree_matches_docstring() -> None:
    doc = errs.__doc__ or ""
    classes = [c for c in vars(errs).values()
               if isinstance(c, type) and issubclass(c, errs.RegistryError)]  # fmt: skip
    assert len(classes) == 12
    for cls in classes:
        assert cls.__name__ in doc
        assert issubclass(cls, LayerkitError)
    assert issubclass(errs.UnauthorizedError, errs.RegistryResponseError)
    assert issubclass(errs.RegistryServerError, errs.RegistryResponseError)


def test_retry_policy_backoff_grows_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0, max_retry_after=10.0)
    rng = random.Random(0)
    ceilings = [1.0, 2.0, 4.0, 5.0, 5.0]
    for failures, ceiling in enumerate(ceilings, start=1):
        delays = [policy.delay(failures, rng) for _ in range(200)]
        assert max(delays) <= ceiling
        assert max(delays) > ceiling * 0.8  # full jitter reaches near the ceiling
    assert policy.delay(1, rng, "7") >= 7
    assert policy.delay(1, rng, "999") <= 10.0  # capped
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert [is_retryable_status(s) for s in (429, 500, 502, 503, 504, 501, 400, 404)] == [
        True, True, True, True, True, False, False, False,
    ]


def _index(*platforms: dict[str, str]) -> ImageIndex:
    return ImageIndex.from_json({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "digest": "sha256:" + f"{i:x}" * 64, "size": 1, "platform": p}
        for i, p in enumerate(platforms, start=1)]})  # fmt: skip


def test_platform_matching_rules() -> None:
    index = _index(
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm", "variant": "v6"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
        {"os": "windows", "architecture": "amd64"},
    )
    digests = [m.digest for m in index.manifests]
    assert select_manifest(index, "linux/amd64").digest == digests[0]
    assert select_manifest(index, "linux/aarch64").digest == digests[2]  # alias + v8 dropped
    assert select_manifest(index, "linux/arm64/v8").digest == digests[2]
    assert select_manifest(index, "linux/arm/v7").digest == digests[1]  # v7 runs v6
    assert select_manifest(index, "windows/amd64").digest == digests[3]
    with pytest.raises(PlatformNotFoundError) as info:
        select_manifest(index, "linux/arm/v5", what="x:1")
    assert "x:1 has no manifest for platform linux/arm/v5" in info.value.message
    assert info.value.available == ("linux/amd64", "linux/arm/v6", "linux/arm64", "windows/amd64")
