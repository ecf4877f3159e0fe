"""What a push or cache export (perhaps killed half-way) left at its destination, read
without any layerkit code: a registry over plain HTTP (``urllib``) or an OCI layout
directory on disk. Every blob named is fetched and re-hashed.

The rule both destinations must keep: the top document (the tag's manifest, or
``index.json``) is either absent or everything it names, transitively, is there
with the right digest and size. Named transitively means: an index's manifests,
a manifest's config and layers, and for a BuildKit cache config
(``application/vnd.buildkit.cacheconfig.v0``) the ``blob`` of each of its layers.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CACHE_CONFIG = "application/vnd.buildkit.cacheconfig.v0"
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
ACCEPT = ", ".join((
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    *INDEX_TYPES,
))

# Requests that met a registry 5xx and were retried (see _get), for the figures.
RETRIED: list[str] = []

# (kind, digest) → the bytes, or None when the destination does not hold it.
Fetch = Callable[[str, str], "bytes | None"]


@dataclass
class Found:
    """The destination's state: ``top`` is None when nothing was written (yet)."""

    top: str | None = None
    blobs: list[str] = field(default_factory=list)  # every digest named and checked
    configs: list[str] = field(default_factory=list)  # image config digests seen
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.top is not None and not self.problems


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _walk(fetch: Fetch, desc: dict[str, Any], found: Found, seen: set[str]) -> None:
    """Check one descriptor's blob, then everything it names."""
    digest = str(desc.get("digest", ""))
    if digest in seen:
        return
    seen.add(digest)
    media_type = str(desc.get("mediaType", ""))
    is_manifest = "manifest" in media_type or media_type in INDEX_TYPES
    data = fetch("manifests" if is_manifest else "blobs", digest)
    found.blobs.append(digest)
    if data is None:
        found.problems.append(f"{media_type or 'blob'} {digest} is named but missing")
        return
    if _sha256(data) != digest:
        found.problems.append(f"{digest} holds bytes hashing to {_sha256(data)}")
        return
    if "size" in desc and int(desc["size"]) != len(data):
        found.problems.append(f"{digest} is {len(data)} bytes, its descriptor says "
                              f"{desc['size']}")
    if not (is_manifest or media_type == CACHE_CONFIG):
        return
    try:
        doc = json.loads(data)
    except ValueError as e:
        found.problems.append(f"{digest} ({media_type}) is not JSON: {e}")
        return
    _walk_document(fetch, doc, media_type, found, seen)


def _walk_document(fetch: Fetch, doc: dict[str, Any], media_type: str, found: Found,
                   seen: set[str]) -> None:
    if media_type == CACHE_CONFIG:
        # The cache's layers name their blobs without a media type: plain blobs.
        for layer in doc.get("layers") or []:
            _walk(fetch, {"digest": layer.get("blob")}, found, seen)
        return
    for child in doc.get("manifests") or []:
        _walk(fetch, child, found, seen)
    config = doc.get("config")
    if config:
        if config.get("mediaType") != CACHE_CONFIG:
            found.configs.append(str(config.get("digest")))
        _walk(fetch, config, found, seen)
    for layer in doc.get("layers") or []:
        _walk(fetch, layer, found, seen)


# -- a registry ----------------------------------------------------------------------


def _get(url: str, accept: str | None = None,
         method: str = "GET") -> tuple[bytes, dict[str, str]] | None:
    """The body and headers, or None for a 404. A 5xx is retried for about two seconds:
    the registry goes on serving a killed client's last request after the client is
    gone, and its filesystem storage writes a tag's link file in place, so a read in
    that moment can meet a half-written link ("invalid checksum digest format")."""
    request = urllib.request.Request(url, method=method)
    if accept:
        request.add_header("Accept", accept)
    for attempt in range(20):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.read(), dict(response.headers.items())
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            if e.code < 500 or attempt == 19:
                raise
            RETRIED.append(f"{method} {url}: {e.code}")
        time.sleep(0.1)
    raise AssertionError("unreachable")


def registry_state(base_url: str, repository: str, tag: str) -> Found:
    """What ``repository:tag`` holds in the registry at ``base_url`` (http://host:port)."""
    found = Found()

    def fetch(kind: str, digest: str) -> bytes | None:
        got = _get(f"{base_url}/v2/{repository}/{kind}/{digest}", ACCEPT)
        return None if got is None else got[0]

    got = _get(f"{base_url}/v2/{repository}/manifests/{tag}", ACCEPT)
    if got is None:
        return found
    data, headers = got
    found.top = _sha256(data)
    lower = {k.lower(): v for k, v in headers.items()}
    served = lower.get("docker-content-digest")
    if served and served != found.top:
        found.problems.append(f"the registry says the manifest is {served}, its bytes hash "
                              f"to {found.top}")
    try:
        doc = json.loads(data)
    except ValueError as e:
        found.problems.append(f"{repository}:{tag} is not JSON: {e}")
        return found
    media_type = str(doc.get("mediaType") or lower.get("content-type", ""))
    _walk_document(fetch, doc, media_type, found, {found.top})
    return found


def registry_has_blobs(base_url: str, repository: str, digests: list[str]) -> int:
    """How many of ``digests`` the repository holds (HEAD, as a client would ask)."""
    return sum(_get(f"{base_url}/v2/{repository}/blobs/{d}", method="HEAD") is not None
               for d in digests)


def delete_blob(base_url: str, repository: str, digest: str) -> None:
    """Remove a blob from a repository (the registry must allow deletes)."""
    request = urllib.request.Request(f"{base_url}/v2/{repository}/blobs/{digest}",
                                     method="DELETE")
    with urllib.request.urlopen(request, timeout=30):
        pass


# -- an OCI layout directory ---------------------------------------------------------


def layout_state(root: Path) -> Found:
    """What the OCI layout at ``root`` holds: ``index.json`` and what it names."""
    found = Found()
    index_path = root / "index.json"
    if not index_path.exists():
        return found

    def fetch(kind: str, digest: str) -> bytes | None:
        algorithm, _, encoded = digest.partition(":")
        path = root / "blobs" / algorithm / encoded
        if not encoded or not path.is_file():
            return None
        return path.read_bytes()

    data = index_path.read_bytes()
    found.top = _sha256(data)
    try:
        doc = json.loads(data)
    except ValueError as e:
        found.problems.append(f"{index_path} is not JSON: {e}")
        return found
    if not doc.get("manifests"):
        found.problems.append(f"{index_path} lists no manifest")
    _walk_document(fetch, doc, INDEX_TYPES[0], found, set())
    return found


def layout_blob_count(root: Path) -> int:
    """Blobs (not temp files) already in the layout, for saying where a kill landed."""
    blobs = root / "blobs" / "sha256"
    return sum(1 for p in blobs.iterdir() if not p.name.startswith(".")) \
        if blobs.is_dir() else 0
