"""Turns user image names (``name``, ``name:tag``, ``host:5000/ns/name:tag``) into the
forms archives need: a ``name:tag`` repo tag, the bare tag for
``org.opencontainers.image.ref.name`` and a fully qualified containerd name.

This is deliberately small; registry/ owns full reference parsing.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from layerkit.content.errors import ExportError

_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(r"^(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|[A-Za-z0-9.-]+:\d+)$")


class ImageRef(NamedTuple):
    name: str  # as given, without the tag: "busybox", "localhost:5000/x/y"
    tag: str

    @property
    def repo_tag(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def full_name(self) -> str:
        """``docker.io/library/busybox:latest`` style, as containerd records it."""
        first, _, rest = self.name.partition("/")
        if rest and _DOMAIN_RE.match(first):
            return self.repo_tag
        path = self.name if rest else f"library/{self.name}"
        return f"docker.io/{path}:{self.tag}"


def parse_ref(ref: str) -> ImageRef:
    """Split ``ref`` into name and tag (default ``latest``); digests are refused."""
    if "@" in ref:
        raise ExportError(
            f"image name {ref!r} has a digest; an archive tag needs name:tag",
            hint="drop the @sha256:... part",
        )
    name, tag = ref, "latest"
    slash, colon = ref.rfind("/"), ref.rfind(":")
    if colon > slash:
        name, tag = ref[:colon], ref[colon + 1 :]
    first, _, rest = name.partition("/")
    path = rest if rest and _DOMAIN_RE.match(first) else name
    if not _TAG_RE.match(tag) or not _NAME_RE.match(path):
        raise ExportError(
            f"invalid image name {ref!r}",
            hint="use lower-case name[:tag], e.g. myapp:1.0 or registry.example.com/team/app:v2",
        )
    return ImageRef(name, tag)
