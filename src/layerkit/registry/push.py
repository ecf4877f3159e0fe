"""Turns a manifest, its config and a source of blobs into an image in a registry (a push).

Per blob: HEAD (skip when the registry has it), then a cross-repository mount
when the blob is known to live in another repository of that registry, else
POST to open an upload and either one PUT (small blobs) or PATCHes with
``Content-Range`` then a closing PUT (blobs above ``chunk_threshold``). Blobs
upload in parallel; any failure redoes that blob's whole sequence (starting
with the HEAD, which notices an upload that did land). The manifest is PUT only
after every blob it references is confirmed, and an index only after all its
manifests, so a registry never holds a manifest pointing at a missing blob.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

import httpx

from layerkit.content import mediatypes as mt
from layerkit.fastclass import dataclass, field
from layerkit.registry.client import RegistryClient
from layerkit.registry.errors import (
    BlobIntegrityError,
    ManifestError,
    RegistryConnectionError,
    RegistryServerError,
)
from layerkit.registry.pull import _as_ref, _client_or_new
from layerkit.registry.reference import Reference

BlobOutcome = Literal["exists", "mounted", "uploaded"]


class BlobProvider(Protocol):
    """Where pushed blobs come from (``ContentStore`` is one)."""

    def open(self, digest: str) -> BinaryIO: ...

    def size(self, digest: str) -> int: ...


@dataclass(frozen=True)
class ImageToPush:
    """One platform's image inside an index push."""

    manifest: bytes
    config: bytes


@dataclass
class PushResult:
    """What a push did, blob by blob (digest lists), and the manifest digest it wrote."""

    ref: Reference
    digest: str
    uploaded: list[str] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)

    def record(self, digest: str, outcome: BlobOutcome) -> None:
        {"uploaded": self.uploaded, "mounted": self.mounted, "existing": self.existing}[
            "existing" if outcome == "exists" else outcome
        ].append(digest)


class _WithExtras:
    """A provider that also serves some blobs (configs) from memory."""

    def __init__(self, base: BlobProvider, extras: Mapping[str, bytes]) -> None:
        self._base = base
        self._extras = dict(extras)

    def open(self, digest: str) -> BinaryIO:
        if digest in self._extras:
            return io.BytesIO(self._extras[digest])
        return self._base.open(digest)

    def size(self, digest: str) -> int:
        if digest in self._extras:
            return len(self._extras[digest])
        return self._base.size(digest)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(
    client: RegistryClient,
    ref: Reference,
    digest: str,
    blobs: BlobProvider,
    *,
    mount_from: Iterable[str] = (),
) -> BlobOutcome:
    """Make sure ``ref``'s repository holds ``digest``; return how that was achieved."""
    size = blobs.size(digest)
    attempts = client.retry.attempts
    for attempt in range(1, attempts + 1):
        try:
            return _push_blob_once(client, ref, digest, size, blobs, mount_from)
        except (RegistryConnectionError, RegistryServerError, httpx.TransportError):
            if attempt >= attempts:
                raise
            client.retry_sleep(attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _push_blob_once(
    client: RegistryClient,
    ref: Reference,
    digest: str,
    size: int,
    blobs: BlobProvider,
    mount_from: Iterable[str],
) -> BlobOutcome:
    if client.blob_exists(ref, digest):
        return "exists"
    sources = [*mount_from, *client.known_repositories(ref.registry, digest)]
    location: str | None = None
    for source in dict.fromkeys(s for s in sources if s != ref.repository):
        location = client.mount_blob(ref, digest, source)
        if location is None:
            return "mounted"
        break  # the registry opened an ordinary upload instead; use it
    if location is None:
        location = client.start_upload(ref, digest)
    with blobs.open(digest) as source_file:
        if size <= client.chunk_threshold:
            data = source_file.read(size + 1)
            if len(data) != size or _sha256(data) != digest:
                raise BlobIntegrityError(
                    f"local blob {digest} does not match its digest or size ({size} bytes)",
                    hint="the content store entry is damaged; rebuild the image",
                )
            client.upload_monolithic(ref, location, digest, data)
        else:
            client.upload_chunked(ref, location, digest, size, source_file)
    return "uploaded"


def _referenced_blobs(manifest: bytes, what: str) -> tuple[str, list[tuple[str, int]]]:
    """The media type of a manifest and the (digest, size) of its config and layers."""
    try:
        doc = json.loads(manifest)
        config = doc["config"]
        blobs = [(config["digest"], int(config["size"]))]
        blobs += [(layer["digest"], int(layer["size"])) for layer in doc.get("layers") or []]
    except (ValueError, KeyError, TypeError) as e:
        raise ManifestError(f"{what}: cannot push a malformed manifest ({e})") from None
    media_type = doc.get("mediaType") or mt.OCI_MANIFEST
    return str(media_type), blobs


def _push_blobs(
    client: RegistryClient,
    ref: Reference,
    digests: Sequence[str],
    blobs: BlobProvider,
    mount_from: Mapping[str, Sequence[str]],
    result: PushResult,
) -> None:
    unique = list(dict.fromkeys(digests))
    with ThreadPoolExecutor(max_workers=client.max_workers, thread_name_prefix="push") as pool:
        futures = {
            d: pool.submit(push_blob, client, ref, d, blobs, mount_from=mount_from.get(d, ()))
            for d in unique
        }
        errors = [f.exception() for f in futures.values()]
    for error in errors:
        if error is not None:
            raise error
    for digest, future in futures.items():
        result.record(digest, future.result())


def _push_one(
    client: RegistryClient,
    ref: Reference,
    image: ImageToPush,
    blobs: BlobProvider,
    mount_from: Mapping[str, Sequence[str]],
    result: PushResult,
) -> str:
    media_type, referenced = _referenced_blobs(image.manifest, str(ref))
    config_digest = referenced[0][0]
    if _sha256(image.config) != config_digest:
        raise ManifestError(
            f"{ref}: the config bytes do not hash to the manifest's config digest {config_digest}",
            hint="pass the exact config blob the manifest was written for",
        )
    provider = _WithExtras(blobs, {config_digest: image.config})
    _push_blobs(client, ref, [d for d, _ in referenced], provider, mount_from, result)
    return client.put_manifest(ref, image.manifest, media_type)


def push_image(
    ref: Reference | str,
    manifest: bytes,
    config: bytes,
    blobs: BlobProvider,
    client: RegistryClient | None = None,
    *,
    mount_from: Mapping[str, Sequence[str]] | None = None,
) -> PushResult:
    """Push one image. ``mount_from`` maps a layer digest to repositories on the same
    registry known to hold it (tried as cross-repository mounts)."""
    reference = _as_ref(ref)
    with _client_or_new(client) as c:
        result = PushResult(reference, _sha256(manifest))
        digest = _push_one(
            c, reference, ImageToPush(manifest, config), blobs, mount_from or {}, result
        )
        result.digest = digest
        return result


def push_index(
    ref: Reference | str,
    index: bytes,
    images: Sequence[ImageToPush],
    blobs: BlobProvider,
    client: RegistryClient | None = None,
    *,
    mount_from: Mapping[str, Sequence[str]] | None = None,
) -> PushResult:
    """Push every image of a multi-platform index (by digest), then the index itself."""
    reference = _as_ref(ref)
    try:
        doc = json.loads(index)
        listed = {m["digest"] for m in doc["manifests"]}
    except (ValueError, KeyError, TypeError) as e:
        raise ManifestError(f"{reference}: cannot push a malformed index ({e})") from None
    given = {_sha256(image.manifest) for image in images}
    if listed - given:
        raise ManifestError(
            f"{reference}: the index lists manifests that were not given: "
            + ", ".join(sorted(listed - given)),
            hint="pass an ImageToPush for every manifest in the index",
        )
    with _client_or_new(client) as c:
        result = PushResult(reference, _sha256(index))
        for image in images:
            by_digest = Reference(reference.registry, reference.repository, None,
                                  _sha256(image.manifest))  # fmt: skip
            _push_one(c, by_digest, image, blobs, mount_from or {}, result)
        media_type = str(doc.get("mediaType") or mt.OCI_INDEX)
        result.digest = c.put_manifest(reference, index, media_type)
        return result


class LayoutBlobs:
    """A :class:`BlobProvider` over an OCI image layout directory (``blobs/sha256/<hex>``)."""

    def __init__(self, layout: Path) -> None:
        self.layout = Path(layout)

    def path(self, digest: str) -> Path:
        algorithm, _, encoded = digest.partition(":")
        return self.layout / "blobs" / algorithm / encoded

    def open(self, digest: str) -> BinaryIO:
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError:
            raise ManifestError(
                f"blob {digest} is missing from the OCI layout {self.layout}",
                hint="the layout is incomplete; export the image again",
            ) from None

    def size(self, digest: str) -> int:
        with self.open(digest) as f:
            return os.fstat(f.fileno()).st_size

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()


def _layout_top(layout: Path, tag: str | None) -> dict[str, Any]:
    """The index.json entry to push: the one annotated ``tag``, or the only one."""
    try:
        entries = json.loads((layout / "index.json").read_bytes())["manifests"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ManifestError(
            f"{layout} is not an OCI image layout: {e}", hint="point at a directory with index.json"
        ) from None
    if tag is not None:
        named = [m for m in entries
                 if (m.get("annotations") or {}).get(mt.ANNOTATION_REF_NAME) == tag]  # fmt: skip
        if named:
            return dict(named[0])
    if len(entries) == 1 and tag is None:
        return dict(entries[0])
    names = sorted(str((m.get("annotations") or {}).get(mt.ANNOTATION_REF_NAME)) for m in entries)
    raise ManifestError(
        f"{layout}: no single image to push"
        + (f" tagged {tag!r}" if tag else "")
        + f"; the layout holds: {', '.join(names) or 'nothing'}",
        hint="name the layout tag to push",
    )


def push_layout(
    layout: Path,
    ref: Reference | str,
    *,
    tag: str | None = None,
    client: RegistryClient | None = None,
) -> PushResult:
    """Push an image (or a whole index) from an OCI layout directory to ``ref``.

    This is the plumbing behind ``layerkit push``: the exporter writes a layout,
    this uploads it. ``tag`` picks the ``org.opencontainers.image.ref.name`` entry
    when the layout holds several.
    """
    blobs = LayoutBlobs(layout)
    top = _layout_top(Path(layout), tag)
    data = blobs.read(top["digest"])
    if top.get("mediaType") in mt.INDEX_TYPES:
        children = json.loads(data)["manifests"]
        images = []
        for child in children:
            manifest = blobs.read(child["digest"])
            config_digest = json.loads(manifest)["config"]["digest"]
            images.append(ImageToPush(manifest, blobs.read(config_digest)))
        return push_index(ref, data, images, blobs, client)
    config = blobs.read(json.loads(data)["config"]["digest"])
    return push_image(ref, data, config, blobs, client)
