"""Errors raised while talking to an OCI registry, each with a hint that says what to do.

Tree (every class derives from :class:`layerkit.errors.LayerkitError`)::

    RegistryError                  anything registry/ raises
     ├── InvalidReferenceError     an image reference that does not parse
     ├── RegistryConfigError       config.toml, auth.json or ~/.docker/config.json is broken
     ├── CredentialHelperError     docker-credential-<helper> failed
     ├── PlatformNotFoundError     an index has no manifest for the wanted platform
     ├── ManifestError             a manifest that is malformed, unsupported or mis-digested
     ├── BlobIntegrityError        a blob whose bytes do not match its digest or size
     ├── RegistryConnectionError   connection refused/reset, timeouts, after all retries
     └── RegistryResponseError     an HTTP status the operation cannot go on from
          ├── UnauthorizedError    401 (and 403): names the credentials tried, never the secret
          ├── NotFoundError        404: names the repository and reference
          └── RegistryServerError  429 and 5xx, after all retries
"""

from __future__ import annotations

from layerkit.errors import LayerkitError


class RegistryError(LayerkitError):
    reference = "registry"


class InvalidReferenceError(RegistryError):
    reference = "invalid-reference"


class RegistryConfigError(RegistryError):
    reference = "registry-config"


class CredentialHelperError(RegistryError):
    reference = "credential-helper"


class PlatformNotFoundError(RegistryError):
    reference = "platform-not-found"

    def __init__(self, message: str, *, available: tuple[str, ...] = (), hint: str | None = None):
        super().__init__(message, hint=hint)
        self.available = available


class ManifestError(RegistryError):
    reference = "bad-manifest"


class BlobIntegrityError(RegistryError):
    reference = "blob-integrity"


class RegistryConnectionError(RegistryError):
    reference = "registry-unreachable"


class RegistryResponseError(RegistryError):
    """A response the operation cannot continue from; carries where it happened."""

    reference = "registry-error"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        registry: str,
        repository: str | None = None,
        target: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.registry = registry
        self.repository = repository
        self.target = target


class UnauthorizedError(RegistryResponseError):
    reference = "registry-unauthorized"


class NotFoundError(RegistryResponseError):
    reference = "registry-not-found"


class RegistryServerError(RegistryResponseError):
    reference = "registry-server-error"
