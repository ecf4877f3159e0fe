"""Turns image names and ids into image details: config, layer sizes, names and age.

Names are stored normalised as docker shows them: ``name:tag`` with the tag
defaulting to ``latest`` and Docker Hub's ``docker.io/library/`` prefix dropped
(``busybox`` → ``busybox:latest``, ``docker.io/library/alpine:3`` → ``alpine:3``).
Lookups accept a name in any of those spellings, a full ``sha256:`` id or an
unambiguous id prefix, as ``docker`` does.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from pathlib import Path
from typing import Any

from layerkit.content.errors import ContentError, InvalidDocumentError
from layerkit.content.images import ImageIndex, ImageRecord
from layerkit.content.oci import ImageConfig
from layerkit.content.store import ContentStore
from layerkit.fastclass import dataclass

_HUB_PREFIXES = ("docker.io/library/", "index.docker.io/library/", "docker.io/")


def normalize_name(name: str) -> str:
    """``busybox`` → ``busybox:latest``; ``docker.io/library/x:1`` → ``x:1``.

    Raises ContentError for a name docker would refuse.
    """
    from layerkit.exporter.refs import parse_ref

    text = name.strip()
    for prefix in _HUB_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    try:
        return parse_ref(text).repo_tag
    except ContentError:
        raise
    except Exception as e:  # ExportError: re-labelled for the image commands
        raise ContentError(
            f"invalid image name {name!r}",
            hint="use lower-case name[:tag], e.g. myapp:1.0 or registry.example.com/team/app:v2",
            reference="invalid-image-name",
        ) from e


def split_name(name: str) -> tuple[str, str]:
    """``repo:tag`` → (repo, tag) for display."""
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:]
    return name, "<none>"


def resolve(index: ImageIndex, name_or_id: str) -> ImageRecord:
    """A stored name, a normalised name, a full id or an id prefix."""
    found = index.get(name_or_id)
    if found is not None:
        return found
    try:
        normal = normalize_name(name_or_id)
    except ContentError:
        normal = None
    if normal is not None:
        found = index.get(normal)
        if found is not None:
            return found
    return index.resolve(name_or_id)


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def parse_created(text: str | None) -> float | None:
    """RFC 3339 → epoch seconds; None when absent or unreadable."""
    if not text:
        return None
    m = _RFC3339.match(text.strip())
    if m is None:
        return None
    base = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    frac = float(m.group(2)) if m.group(2) else 0.0
    zone = m.group(3)
    offset = 0
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return base + frac - offset


@dataclass(frozen=True)
class ImageDetails:
    """One image as the management commands show it."""

    id: str  # the config digest
    names: tuple[str, ...]
    raw: dict[str, Any]  # the config JSON as stored (all fields, even unknown ones)
    config: ImageConfig
    layer_sizes: tuple[int, ...]  # bytes of each uncompressed layer blob (-1: missing)
    manifest: str | None

    @property
    def size(self) -> int:
        return sum(s for s in self.layer_sizes if s > 0)

    @property
    def created(self) -> float | None:
        return parse_created(self.config.created)

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]


def details(store: ContentStore, index: ImageIndex, record: ImageRecord) -> ImageDetails:
    """Read an image's config and layer sizes from the blob store."""
    try:
        data = store.read_bytes(record.config_digest)
    except ContentError as e:
        raise ContentError(
            f"image {record.name} ({record.short_id}): its config is missing from the store",
            hint="the store is damaged; remove the name with `layerkit rmi` and load or "
            "build the image again",
            reference="image-corrupt",
        ) from e
    try:
        config = ImageConfig.from_json(data)
        raw = json.loads(data)
    except (InvalidDocumentError, ValueError) as e:
        raise ContentError(f"image {record.name}: unreadable config: {e}",
                           reference="image-corrupt") from e
    sizes = []
    for diff_id in config.rootfs.diff_ids:
        try:
            sizes.append(store.size(diff_id))
        except ContentError:
            sizes.append(-1)
    return ImageDetails(record.config_digest, tuple(index.names_for(record.config_digest)),
                        raw, config, tuple(sizes), record.manifest_digest)


def open_index(root: Path) -> tuple[ContentStore, ImageIndex]:
    return ContentStore(root), ImageIndex(root)
