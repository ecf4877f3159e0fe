"""Turns distribution API operations (manifest GET/HEAD/PUT, blob GET/HEAD, uploads,
mounts) into HTTP exchanges with one registry, over httpx.

Sending is layered, one concern per layer (as httpx does it)::

    _send                       turn final statuses into typed errors (callers choose)
     └─ _send_handling_auth     drive RegistryAuth.flow: 401 → token → retry
         └─ _send_handling_retries   backoff + jitter on 429/5xx/dropped connections
             └─ _send_single_request  one httpx exchange (streamed)

The httpx transport is a constructor argument, so unit tests plug in
``httpx.MockTransport``; integration tests run the same code against a real
registry. Plain HTTP is used only for loopback hosts, hosts marked insecure
(config.toml or ``insecure_registries``) and explicit ``http://`` mirrors; for
those, HTTPS without verification is tried first, as Docker does.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import BinaryIO, Protocol

import httpx

from layerkit.content import mediatypes as mt
from layerkit.content.errors import DigestMismatchError
from layerkit.fastclass import dataclass, field
from layerkit.registry.auth import CredentialProvider, RegistryAuth, host_of
from layerkit.registry.config import RegistryConfig, load_config
from layerkit.registry.credentials import CredentialStore
from layerkit.registry.errors import (
    BlobIntegrityError,
    ManifestError,
    NotFoundError,
    RegistryConnectionError,
    RegistryError,
    RegistryResponseError,
    RegistryServerError,
    UnauthorizedError,
)
from layerkit.registry.reference import Reference
from layerkit.registry.retry import RetryPolicy, is_retryable_status

MANIFEST_ACCEPT = ", ".join(
    [mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST]
)
MAX_MANIFEST_SIZE = 4 * 1024 * 1024  # distribution's own limit
_READ_CHUNK = 1 << 20
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=15.0)
USER_AGENT = "layerkit/0.1 (+https://github.com/layerkit)"


class BlobWriterLike(Protocol):
    def write(self, data: bytes) -> int: ...


class BlobSink(Protocol):
    """Where a fetched blob goes: a writer that verifies digest and size when its ``with``
    block ends and publishes atomically, keeping nothing on error
    (:meth:`layerkit.content.ContentStore.writer` is one)."""

    def writer(
        self, expected_digest: str | None = None, expected_size: int | None = None
    ) -> AbstractContextManager[BlobWriterLike]: ...

    def has(self, digest: str) -> bool: ...


@dataclass(frozen=True)
class Endpoint:
    """Where to send API calls: an origin registry or one of its mirrors."""

    host: str  # host[:port], whose credentials apply
    base_url: str  # scheme://host[:port][/prefix], without /v2
    mirror: bool = False


@dataclass(frozen=True)
class FetchedManifest:
    data: bytes
    media_type: str
    digest: str
    endpoint: Endpoint


@dataclass(frozen=True)
class ManifestInfo:
    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class _Op:
    """What an exchange is for: the context every error message carries."""

    action: str  # "fetching manifest", "uploading blob", ...
    registry: str
    repository: str
    target: str  # tag or digest

    def __str__(self) -> str:
        sep = "@" if self.target.startswith("sha256:") else ":"
        return f"{self.action} {self.registry}/{self.repository}{sep}{self.target}"


@dataclass
class ClientStats:
    """Request counters, by ``METHOD kind`` (e.g. ``PUT blob``), for tests and --debug."""

    requests: Counter[str] = field(default_factory=Counter)
    retries: int = 0


def _kind(request: httpx.Request) -> str:
    path = request.url.path
    if "/blobs/uploads" in path:
        return "upload"
    if "/blobs/" in path:
        return "blob"
    if "/manifests/" in path:
        return "manifest"
    return "other"


def _error_codes(response: httpx.Response) -> str:
    """The ``errors[].code: message`` list of a distribution error body, if any."""
    try:
        response.read()
        errors = response.json().get("errors") or []
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if e)
    except (ValueError, AttributeError, httpx.HTTPError, httpx.StreamError):
        return ""


class RegistryClient:
    """A distribution API client shared by pulls and pushes (thread-safe)."""

    def __init__(
        self,
        *,
        config: RegistryConfig | None = None,
        credentials: CredentialProvider | None = None,
        insecure_registries: Iterable[str] = (),
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_workers: int = 4,
        chunk_threshold: int = 32 * 1024 * 1024,
        chunk_size: int = 8 * 1024 * 1024,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
    ) -> None:
        cfg = config if config is not None else load_config()
        self.config = cfg.with_insecure(insecure_registries)
        self.auth = RegistryAuth(credentials if credentials is not None else CredentialStore())
        self.retry = retry or RetryPolicy()
        self.max_workers = max(1, max_workers)
        self.chunk_threshold = chunk_threshold
        self.chunk_size = max(1, chunk_size)
        self.stats = ClientStats()
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        common = {"timeout": timeout, "headers": {"User-Agent": USER_AGENT}}
        self._http = httpx.Client(transport=transport, **common)  # type: ignore[arg-type]
        self._http_unverified = httpx.Client(
            transport=transport, verify=False, **common  # type: ignore[arg-type]
        )
        self._schemes: dict[str, str] = {}
        # digest -> {(registry, repository)} seen holding it: candidates for mounts
        self._known_blobs: dict[str, set[tuple[str, str]]] = {}

    # -- lifecycle ---------------------------------------------------------------

    def close(self) -> None:
        self._http.close()
        self._http_unverified.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- endpoints ---------------------------------------------------------------

    def origin(self, ref: Reference) -> Endpoint:
        host = ref.api_registry
        return Endpoint(ref.registry, f"{self._scheme(host)}://{host}")

    def pull_endpoints(self, ref: Reference) -> list[Endpoint]:
        """Mirrors in configured order, then the registry itself."""
        mirrors = [
            Endpoint(host_of(httpx.URL(url)), url)
            for url in self.config.host(ref.registry).mirrors
        ]
        return [*mirrors, self.origin(ref)]

    def _scheme(self, host: str) -> str:
        if not self.config.is_insecure(host):
            return "https"
        with self._lock:
            known = self._schemes.get(host)
        if known is not None:
            return known
        try:
            probe = self._http_unverified.get(f"https://{host}/v2/")
            probe.close()
            scheme = "https"
        except httpx.TransportError:
            scheme = "http"
        with self._lock:
            self._schemes[host] = scheme
        return scheme

    # -- the layered send --------------------------------------------------------

    def _send_single_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.stats.requests[f"{request.method} {_kind(request)}"] += 1
        http = self._http
        if request.url.scheme == "https" and self.config.is_insecure(host_of(request.url)):
            http = self._http_unverified
        follow = request.method in ("GET", "HEAD")
        return http.send(request, stream=True, follow_redirects=follow)

    def _backoff(self, failures: int, retry_after: str | None = None) -> None:
        with self._lock:
            self.stats.retries += 1
            delay = self.retry.delay(failures, self._rng, retry_after)
        self._sleep(delay)

    def _send_handling_retries(
        self, request: httpx.Request, op: _Op, *, retry: bool
    ) -> httpx.Response:
        attempts = self.retry.attempts if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                response = self._send_single_request(request)
            except httpx.TransportError as e:
                if attempt >= attempts:
                    raise _connection_error(op, request, e, attempt) from e
                self._backoff(attempt)
                continue
            if is_retryable_status(response.status_code) and attempt < attempts:
                retry_after = response.headers.get("retry-after")
                response.close()
                self._backoff(attempt, retry_after)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_handling_auth(
        self, request: httpx.Request, op: _Op, *, retry: bool
    ) -> httpx.Response:
        flow = self.auth.flow(request)
        current = next(flow)
        while True:
            is_original = current is request
            response = self._send_handling_retries(current, op, retry=retry or not is_original)
            if not is_original:
                response.read()  # token responses are small; the flow reads their JSON
            try:
                following = flow.send(response)
            except StopIteration:
                return response
            except BaseException:
                response.close()
                raise
            response.close()
            current = following

    def send(self, request: httpx.Request, op: _Op, *, retry: bool = True) -> httpx.Response:
        """Send ``request`` (streamed), raising a typed error for any non-success status."""
        response = self._send_handling_auth(request, op, retry=retry)
        if response.is_success:
            return response
        try:
            raise self.status_error(response, op)
        finally:
            response.close()

    def status_error(self, response: httpx.Response, op: _Op) -> RegistryError:
        """The typed error for a response ``op`` cannot go on from."""
        status = response.status_code
        codes = _error_codes(response)
        detail = f" ({codes})" if codes else ""
        host = host_of(response.request.url)
        common = {
            "status": status,
            "registry": op.registry,
            "repository": op.repository,
            "target": op.target,
        }
        if status in (401, 403):
            word = "unauthorized" if status == 401 else "forbidden"
            return UnauthorizedError(
                f"{op}: {status} {word}{detail}; credentials tried: {self.auth.describe(host)}",
                hint=(
                    f"log in with `layerkit login {op.registry}`"
                    if status == 401
                    else f"the credentials are valid but may not {op.action.split()[0]} "
                    f"{op.repository}; check the account's permissions"
                ),
                **common,  # type: ignore[arg-type]
            )
        if status == 404:
            return NotFoundError(
                f"{op}: not found (404){detail}",
                hint=f"check that {op.registry}/{op.repository} exists and has {op.target}",
                **common,  # type: ignore[arg-type]
            )
        if is_retryable_status(status):
            return RegistryServerError(
                f"{op}: HTTP {status} after {self.retry.attempts} attempts{detail}",
                hint="the registry is failing or rate-limiting; try again later",
                **common,  # type: ignore[arg-type]
            )
        return RegistryResponseError(
            f"{op}: unexpected HTTP {status}{detail}",
            hint="the registry refused the request; see the message for its reason",
            **common,  # type: ignore[arg-type]
        )

    # -- manifests ---------------------------------------------------------------

    def _manifest_url(self, ep: Endpoint, repository: str, reference: str) -> str:
        return f"{ep.base_url}/v2/{repository}/manifests/{reference}"

    def _on_endpoints(
        self, ref: Reference, attempt: Callable[[Endpoint], FetchedManifest]
    ) -> FetchedManifest:
        """Try ``attempt`` on each mirror, then the origin; the origin's error wins."""
        endpoints = self.pull_endpoints(ref)
        for ep in endpoints[:-1]:
            try:
                return attempt(ep)
            except RegistryError:
                continue
        return attempt(endpoints[-1])

    def get_manifest(self, ref: Reference, *, endpoint: Endpoint | None = None) -> FetchedManifest:
        """Fetch the manifest or index ``ref`` names, verified against its digest."""

        def attempt(ep: Endpoint) -> FetchedManifest:
            op = _Op("fetching manifest", ref.registry, ref.repository, ref.api_reference)
            url = self._manifest_url(ep, ref.repository, ref.api_reference)
            attempts = self.retry.attempts
            # send() retries statuses and failures before the body; this loop redoes the
            # GET when the body breaks off or arrives altered.
            for n in range(1, attempts + 1):
                request = self._http.build_request("GET", url, headers={"Accept": MANIFEST_ACCEPT})
                response = self.send(request, op)
                try:
                    data = _read_limited(response, MAX_MANIFEST_SIZE, op)
                    return self._check_manifest(ref, ep, op, response, data)
                except httpx.TransportError as e:
                    if n >= attempts:
                        raise _connection_error(op, request, e, n) from e
                except _ManifestCorrupt:
                    if n >= attempts:
                        raise
                finally:
                    response.close()
                self._backoff(n)
            raise AssertionError("unreachable")  # pragma: no cover

        if endpoint is not None:
            return attempt(endpoint)
        return self._on_endpoints(ref, attempt)

    def _check_manifest(
        self, ref: Reference, ep: Endpoint, op: _Op, response: httpx.Response, data: bytes
    ) -> FetchedManifest:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        claimed = response.headers.get("docker-content-digest")
        expected = ref.digest or (claimed if claimed and claimed.startswith("sha256:") else None)
        if expected is not None and expected != digest:
            raise _ManifestCorrupt(
                f"{op}: the manifest's bytes hash to {digest}, not {expected}",
                hint="the registry or a proxy altered the manifest; try again or another mirror",
            )
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if media_type not in mt.MANIFEST_TYPES | mt.INDEX_TYPES:
            media_type = _sniff_media_type(data, op)
        return FetchedManifest(data, media_type, digest, ep)

    def head_manifest(self, ref: Reference) -> ManifestInfo | None:
        """The digest, media type and size of ``ref`` at the origin; None when absent."""
        ep = self.origin(ref)
        op = _Op("checking manifest", ref.registry, ref.repository, ref.api_reference)
        request = self._http.build_request(
            "HEAD",
            self._manifest_url(ep, ref.repository, ref.api_reference),
            headers={"Accept": MANIFEST_ACCEPT},
        )
        response = self._send_handling_auth(request, op, retry=True)
        response.close()
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise self.status_error(response, op)
        digest = response.headers.get("docker-content-digest", "")
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        size = int(response.headers.get("content-length") or 0)
        if not digest.startswith("sha256:"):
            fetched = self.get_manifest(ref, endpoint=ep)
            return ManifestInfo(fetched.digest, fetched.media_type, len(fetched.data))
        return ManifestInfo(digest, media_type, size)

    def resolve_digest(self, ref: Reference) -> str:
        """The digest ``ref`` points at (a digest reference resolves to itself)."""
        if ref.digest is not None:
            return ref.digest

        def attempt(ep: Endpoint) -> FetchedManifest:
            op = _Op("resolving", ref.registry, ref.repository, ref.api_reference)
            request = self._http.build_request(
                "HEAD",
                self._manifest_url(ep, ref.repository, ref.api_reference),
                headers={"Accept": MANIFEST_ACCEPT},
            )
            response = self.send(request, op)
            response.close()
            digest = response.headers.get("docker-content-digest", "")
            if digest.startswith("sha256:") and len(digest) == 71:
                return FetchedManifest(b"", "", digest, ep)
            return self.get_manifest(ref, endpoint=ep)  # no header: hash the bytes

        return self._on_endpoints(ref, attempt).digest

    def put_manifest(self, ref: Reference, data: bytes, media_type: str) -> str:
        """Upload a manifest or index under ``ref``'s tag (or digest); return its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        target = ref.tag if ref.tag is not None else digest
        op = _Op("pushing manifest", ref.registry, ref.repository, target)
        request = self._http.build_request(
            "PUT",
            self._manifest_url(self.origin(ref), ref.repository, target),
            content=data,
            headers={"Content-Type": media_type},
        )
        response = self.send(request, op)  # PUT of the same bytes is idempotent
        response.close()
        claimed = response.headers.get("docker-content-digest")
        if claimed and claimed != digest:
            raise ManifestError(
                f"{op}: the registry recorded digest {claimed}, expected {digest}",
                hint="the registry rewrote the manifest; it may not support this media type",
            )
        return digest

    # -- blobs: reading ----------------------------------------------------------

    def _blob_url(self, ep: Endpoint, repository: str, digest: str) -> str:
        return f"{ep.base_url}/v2/{repository}/blobs/{digest}"

    def remember_blob(self, registry: str, repository: str, digest: str) -> None:
        with self._lock:
            self._known_blobs.setdefault(digest, set()).add((registry, repository))

    def known_repositories(self, registry: str, digest: str) -> list[str]:
        """Repositories on ``registry`` this client has seen holding ``digest``."""
        with self._lock:
            return sorted(r for g, r in self._known_blobs.get(digest, set()) if g == registry)

    def blob_exists(self, ref: Reference, digest: str) -> bool:
        ep = self.origin(ref)
        op = _Op("checking blob", ref.registry, ref.repository, digest)
        request = self._http.build_request("HEAD", self._blob_url(ep, ref.repository, digest))
        response = self._send_handling_auth(request, op, retry=True)
        response.close()
        if response.status_code == 404:
            return False
        if not response.is_success:
            raise self.status_error(response, op)
        self.remember_blob(ref.registry, ref.repository, digest)
        return True

    def fetch_blob(self, ref: Reference, digest: str, size: int | None, sink: BlobSink) -> None:
        """Stream a blob into ``sink``, verified while streaming; retried from scratch on
        a dropped connection, a truncated body or a digest mismatch. Mirrors first."""
        endpoints = self.pull_endpoints(ref)
        last: RegistryError | None = None
        for ep in endpoints:
            try:
                self._fetch_blob_from(ep, ref, digest, size, sink)
                self.remember_blob(ref.registry, ref.repository, digest)
                return
            except RegistryError as e:
                last = e
        assert last is not None
        raise last

    def _fetch_blob_from(
        self, ep: Endpoint, ref: Reference, digest: str, size: int | None, sink: BlobSink
    ) -> None:
        # Statuses and connection failures before the body are retried inside send();
        # this loop redoes the whole GET when the body itself fails (dropped mid-way,
        # truncated, corrupted). Each attempt writes through a fresh verifying writer,
        # which discards its temp file on error, so nothing unverified is ever kept.
        op = _Op("fetching blob", ref.registry, ref.repository, digest)
        url = self._blob_url(ep, ref.repository, digest)
        attempts = self.retry.attempts
        for attempt in range(1, attempts + 1):
            try:
                with sink.writer(expected_digest=digest, expected_size=size) as writer:
                    response = self.send(self._http.build_request("GET", url), op)
                    try:
                        received = 0
                        for chunk in response.iter_bytes(_READ_CHUNK):
                            received += len(chunk)
                            if size is not None and received > size:
                                raise BlobIntegrityError(
                                    f"{op}: the registry sent more than the {size} bytes "
                                    "the manifest declares"
                                )
                            writer.write(chunk)
                    finally:
                        response.close()
                return
            except httpx.TransportError as e:
                request = httpx.Request("GET", url)
                failure: RegistryError = _connection_error(op, request, e, attempt)
            except (BlobIntegrityError, DigestMismatchError) as e:
                failure = BlobIntegrityError(
                    f"{op}: {e.message} (attempt {attempt} of {attempts}); nothing was stored",
                    hint="the registry or a proxy serves damaged data; try again or use a mirror",
                )
            if attempt >= attempts:
                raise failure
            self._backoff(attempt)

    # -- blobs: writing ----------------------------------------------------------

    def mount_blob(self, ref: Reference, digest: str, source: str) -> str | None:
        """Ask the registry to link ``digest`` from repository ``source``.

        Returns None when mounted; otherwise the upload URL the registry opened
        instead (202), which the caller uses for a normal upload.
        """
        ep = self.origin(ref)
        op = _Op("mounting blob", ref.registry, ref.repository, digest)
        request = self._http.build_request(
            "POST",
            f"{ep.base_url}/v2/{ref.repository}/blobs/uploads/",
            params={"mount": digest, "from": source},
        )
        response = self.send(request, op)  # a mount is idempotent
        response.close()
        if response.status_code == 201:
            self.remember_blob(ref.registry, ref.repository, digest)
            return None
        return self._location(response, op)

    def start_upload(self, ref: Reference, digest: str) -> str:
        ep = self.origin(ref)
        op = _Op("starting upload of blob", ref.registry, ref.repository, digest)
        request = self._http.build_request(
            "POST", f"{ep.base_url}/v2/{ref.repository}/blobs/uploads/"
        )
        response = self.send(request, op)  # a repeated POST only leaves an unused session
        response.close()
        return self._location(response, op)

    def _location(self, response: httpx.Response, op: _Op) -> str:
        location = response.headers.get("location")
        if not location:
            raise RegistryResponseError(
                f"{op}: HTTP {response.status_code} without a Location header",
                status=response.status_code,
                registry=op.registry,
                repository=op.repository,
                target=op.target,
                hint="the registry does not follow the distribution spec for uploads",
            )
        return str(response.request.url.join(location))

    def upload_monolithic(self, ref: Reference, location: str, digest: str, data: bytes) -> None:
        op = _Op("uploading blob", ref.registry, ref.repository, digest)
        url = httpx.URL(location).copy_merge_params({"digest": digest})
        request = self._http.build_request(
            "PUT", url, content=data, headers={"Content-Type": "application/octet-stream"}
        )
        self.send(request, op, retry=False).close()
        self.remember_blob(ref.registry, ref.repository, digest)

    def upload_chunked(
        self, ref: Reference, location: str, digest: str, size: int, source: BinaryIO
    ) -> None:
        """PATCH ``chunk_size`` pieces with Content-Range, then PUT ?digest= to close."""
        op = _Op("uploading blob", ref.registry, ref.repository, digest)
        offset = 0
        while offset < size:
            chunk = source.read(min(self.chunk_size, size - offset))
            if not chunk:
                raise BlobIntegrityError(
                    f"{op}: the local blob ended at {offset} of {size} bytes",
                    hint="the content store entry is damaged; rebuild the image",
                )
            end = offset + len(chunk) - 1
            request = self._http.build_request(
                "PATCH",
                location,
                content=chunk,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{end}",
                },
            )
            response = self.send(request, op, retry=False)
            response.close()
            location = self._location(response, op)
            offset = end + 1
        url = httpx.URL(location).copy_merge_params({"digest": digest})
        self.send(self._http.build_request("PUT", url), op, retry=False).close()
        self.remember_blob(ref.registry, ref.repository, digest)

    def retry_sleep(self, failures: int) -> None:
        """Back off before redoing a whole operation (an upload) from the start."""
        self._backoff(failures)


class _ManifestCorrupt(ManifestError):
    """A manifest whose bytes do not match the digest it was asked or announced by."""


def _connection_error(
    op: _Op, request: httpx.Request, error: httpx.TransportError, attempts: int
) -> RegistryConnectionError:
    kind = type(error).__name__
    return RegistryConnectionError(
        f"{op}: {kind} talking to {request.url.scheme}://{host_of(request.url)} "
        f"after {attempts} attempt{'s' if attempts != 1 else ''}: {error}",
        hint="check that the registry is reachable (and whether it needs "
        "--insecure-registry for plain HTTP)",
    )


def _read_limited(response: httpx.Response, limit: int, op: _Op) -> bytes:
    parts: list[bytes] = []
    total = 0
    for chunk in response.iter_bytes(_READ_CHUNK):
        total += len(chunk)
        if total > limit:
            raise ManifestError(f"{op}: the manifest is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _sniff_media_type(data: bytes, op: _Op) -> str:
    """The media type of a manifest served without a usable Content-Type."""
    import json

    try:
        doc = json.loads(data)
    except ValueError:
        raise ManifestError(f"{op}: the registry sent something that is not JSON") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{op}: the manifest is not a JSON object")
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared in mt.MANIFEST_TYPES | mt.INDEX_TYPES:
        return declared
    if doc.get("schemaVersion") == 1:
        raise ManifestError(
            f"{op}: Docker schema 1 manifests are not supported",
            hint="push the image again with a current Docker or skopeo",
        )
    if "manifests" in doc:
        return mt.OCI_INDEX
    if "config" in doc and "layers" in doc:
        return mt.OCI_MANIFEST
    raise ManifestError(f"{op}: unrecognised manifest format")
