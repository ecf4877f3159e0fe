"""layerkit.registry: an OCI distribution client (pull, push, auth, mirrors).

Public API, pinned by tests/unit/test_registry_api.py. See docs/registry.md.
"""

from __future__ import annotations

from layerkit.registry.auth import RegistryAuth, StaticCredentials
from layerkit.registry.client import (
    MANIFEST_ACCEPT,
    ClientStats,
    Endpoint,
    FetchedManifest,
    ManifestInfo,
    RegistryClient,
)
from layerkit.registry.config import HostConfig, RegistryConfig, load_config
from layerkit.registry.credentials import Credentials, CredentialStore
from layerkit.registry.errors import (
    BlobIntegrityError,
    CredentialHelperError,
    InvalidReferenceError,
    ManifestError,
    NotFoundError,
    PlatformNotFoundError,
    RegistryConfigError,
    RegistryConnectionError,
    RegistryError,
    RegistryResponseError,
    RegistryServerError,
    UnauthorizedError,
)
from layerkit.registry.login import login, logout
from layerkit.registry.platforms import available_platforms, select_manifest
from layerkit.registry.pull import PulledImage, pull_image, resolve_digest
from layerkit.registry.push import (
    BlobProvider,
    ImageToPush,
    LayoutBlobs,
    PushResult,
    push_blob,
    push_image,
    push_index,
    push_layout,
)
from layerkit.registry.reference import Reference, parse_reference
from layerkit.registry.retry import RetryPolicy

__all__ = [
    "MANIFEST_ACCEPT",
    "BlobIntegrityError",
    "BlobProvider",
    "ClientStats",
    "CredentialHelperError",
    "CredentialStore",
    "Credentials",
    "Endpoint",
    "FetchedManifest",
    "HostConfig",
    "ImageToPush",
    "InvalidReferenceError",
    "LayoutBlobs",
    "ManifestError",
    "ManifestInfo",
    "NotFoundError",
    "PlatformNotFoundError",
    "PulledImage",
    "PushResult",
    "Reference",
    "RegistryAuth",
    "RegistryClient",
    "RegistryConfig",
    "RegistryConfigError",
    "RegistryConnectionError",
    "RegistryError",
    "RegistryResponseError",
    "RegistryServerError",
    "RetryPolicy",
    "StaticCredentials",
    "UnauthorizedError",
    "available_platforms",
    "load_config",
    "login",
    "logout",
    "parse_reference",
    "pull_image",
    "push_blob",
    "push_image",
    "push_index",
    "push_layout",
    "resolve_digest",
    "select_manifest",
]
