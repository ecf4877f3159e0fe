"""Turns image reference strings into normalised :class:`Reference` values, as Docker does.

``python`` becomes ``docker.io/library/python:latest``; ``host:port/ns/name:tag@digest``
keeps every part. The first path component names a registry when it contains a
``.`` or a ``:``, is ``localhost``, or has upper-case letters (Docker's rule);
otherwise the image lives on Docker Hub. The grammar is that of
distribution's ``reference`` package.
"""

from __future__ import annotations

import re

from layerkit.fastclass import dataclass, replace
from layerkit.registry.errors import InvalidReferenceError

DOCKER_HUB = "docker.io"
# The host Docker Hub's API really lives on, and the key ``docker login`` stores under.
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_HEX64_RE = re.compile(r"^[a-f0-9]{64}$")
_MAX_NAME = 255

_HINT = "write [registry[:port]/]name[:tag][@digest], e.g. alpine:3.20 or localhost:5000/app:v1"


def _bad(text: str, why: str) -> InvalidReferenceError:
    return InvalidReferenceError(f"invalid image reference {text!r}: {why}", hint=_HINT)


def normalize_registry(host: str) -> str:
    """``index.docker.io`` and friends become ``docker.io``; other hosts are lower-cased."""
    host = host.strip().lower()
    for prefix in ("https://", "http://"):
        if host.startswith(prefix):
            host = host[len(prefix) :]
    host = host.split("/", 1)[0]
    return DOCKER_HUB if host in _HUB_ALIASES else host


@dataclass(frozen=True)
class Reference:
    """A fully qualified image reference. ``tag`` is None only when ``digest`` is set."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_reference(self) -> str:
        """What goes after ``/manifests/`` in the API: the digest when known, else the tag."""
        if self.digest is not None:
            return self.digest
        assert self.tag is not None
        return self.tag

    @property
    def api_registry(self) -> str:
        """The host the registry API is served from (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def familiar(self) -> str:
        """The short form Docker prints: ``python:3.12``, ``me/app``, ``ghcr.io/x/y:1``."""
        name = self.name
        if self.registry == DOCKER_HUB:
            name = self.repository
            # Only an official image loses "library/" (distribution's
            # FamiliarName): "library/library/a" must stay "library/library/a".
            if name.startswith("library/") and "/" not in name[len("library/"):]:
                name = name[len("library/"):]
            elif "/" in name:
                first = name.split("/", 1)[0]
                if "." in first or ":" in first or first == "localhost":
                    # Without its registry, "a.b/c" would read as host "a.b".
                    name = f"{DOCKER_HUB}/{name}"
        return name + self._suffix()

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=digest)

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_RE.match(tag):
            raise _bad(tag, "a tag is up to 128 letters, digits, '_', '.' and '-'")
        return replace(self, tag=tag)

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag is not None else ""
        return out + (f"@{self.digest}" if self.digest is not None else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    is_domain = sep and (
        "." in first or ":" in first or first == "localhost" or first.lower() != first
    )
    if not is_domain:
        return DOCKER_HUB, name
    return first, rest


def parse_reference(text: str, *, default_tag: str | None = "latest") -> Reference:
    """Parse and normalise ``text``; raise :class:`InvalidReferenceError` with the reason.

    ``default_tag`` is added when neither a tag nor a digest is given (pass None
    to keep such references tag-less).
    """
    if not isinstance(text, str) or not text:
        raise _bad(str(text), "it is empty")
    if text != text.strip():
        raise _bad(text, "it has leading or trailing whitespace")
    remainder, at, digest = text.partition("@")
    if at and not _DIGEST_RE.match(digest):
        raise _bad(text, f"{digest!r} is not a digest (algorithm:hex)")
    if at and digest.startswith("sha256:") and not _HEX64_RE.match(digest[7:]):
        raise _bad(text, "a sha256 digest has 64 lower-case hex digits")
    name, tag = remainder, None
    slash, colon = remainder.rfind("/"), remainder.rfind(":")
    if colon > slash:
        name, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise _bad(text, f"tag {tag!r} must be up to 128 letters, digits, '_', '.' and '-'")
    if not name:
        raise _bad(text, "the repository name is empty")
    domain, path = _split_domain(name)
    if not _DOMAIN_RE.match(domain):
        raise _bad(text, f"{domain!r} is not a valid registry host[:port]")
    if path.lower() != path and _PATH_RE.match(path.lower()):
        raise _bad(text, "repository name must be lowercase")
    if not _PATH_RE.match(path):
        raise _bad(
            text,
            f"repository {path!r} may only hold lower-case letters, digits and "
            "'.', '_', '__', '-' separators between '/'-separated components",
        )
    if len(domain) + 1 + len(path) > _MAX_NAME:
        raise _bad(text, f"the name is longer than {_MAX_NAME} characters")
    registry = normalize_registry(domain) if domain.lower() in _HUB_ALIASES else domain
    if registry == DOCKER_HUB:
        if _HEX64_RE.match(path):
            raise _bad(text, "a 64-hex-digit repository name looks like an image id")
        if "/" not in path:
            path = f"library/{path}"
    if tag is None and not at:
        tag = default_tag
    return Reference(registry, path, tag, digest if at else None)
