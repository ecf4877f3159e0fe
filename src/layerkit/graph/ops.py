"""The op types: immutable descriptions of what one build step does, and their cache maps.

An op never does anything itself. Each op declares its :class:`CacheMap` the
BuildKit way: a ``base`` digest of its canonical form with the volatile fields
blanked (proxy values, URL checksums whose content is keyed separately), plus
one :class:`Dep` per input saying whether that input enters the key by its
own key or by a content checksum of the paths the op selects from it.

Inputs are referred to by index into the owning vertex's ``inputs`` (see
:mod:`layerkit.graph.model`); index 0 is the parent (the stage's previous
step) for exec and file ops.

Secret values, SSH sockets and the contents of cache and tmpfs mounts are not
fields of any op, so they can never enter a key.
"""

from __future__ import annotations

from typing import Any, Literal

from layerkit.fastclass import asdict, dataclass, field, fields
from layerkit.graph.digest import digest_of

SourceKind = Literal["scratch", "image", "local", "stage"]
MountType = Literal["bind", "cache", "tmpfs", "secret", "ssh"]


@dataclass(frozen=True)
class Dep:
    """How one input of an op enters its cache key.

    ``selectors`` None: by the input's own cache key. Otherwise by a content
    checksum of those paths (with ``excludes``) in the input's result.
    """

    input: int
    selectors: tuple[str, ...] | None = None
    excludes: tuple[str, ...] = ()
    follow_links: bool = True

    @property
    def by_content(self) -> bool:
        return self.selectors is not None


@dataclass(frozen=True)
class CacheMap:
    """An op's cache rules: its own digest plus one rule per input it depends on."""

    base: str
    deps: tuple[Dep, ...] = ()


def _canonical(obj: object, blank: tuple[str, ...] = ()) -> dict[str, Any]:
    data = asdict(obj)
    for name in blank:
        data[name] = None
    return {"type": type(obj).__name__, **data}


# -- source ------------------------------------------------------------------


@dataclass(frozen=True)
class SourceOp:
    """Where a stage starts: ``scratch``, an image, a local (named) context or a stage.

    An image's ``digest`` is filled in once the tag is resolved; the key uses
    the digest, never the tag alone.
    """

    kind: SourceKind
    ref: str = ""
    digest: str = ""
    platform: str = ""
    name: str = ""

    def cache_map(self) -> CacheMap:
        if self.kind == "stage":
            # FROM <stage>: exactly the key of that stage's result.
            return CacheMap(digest_of("source", _canonical(self)), (Dep(0),))
        if self.kind == "local":
            return CacheMap(digest_of("source", _canonical(self)), (Dep(0, (".",)),))
        return CacheMap(digest_of("source", _canonical(self)))


# -- exec ----------------------------------------------------------------------


@dataclass(frozen=True)
class ExecMount:
    """One ``RUN --mount``. ``input`` indexes the vertex inputs for bind/cache ``from``."""

    type: MountType
    target: str
    input: int | None = None
    source: str = ""
    readonly: bool = True
    id: str = ""
    sharing: str = ""
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    required: bool = False
    env: str = ""

    def describe(self) -> str:
        """Short canonical text, for explanations (``mounts`` input)."""
        parts = [f"type={self.type}", f"target={self.target}"]
        for f in fields(self):
            if f.name in ("type", "target", "input"):
                continue
            value = getattr(self, f.name)
            if value not in (None, "", False) and not (f.name == "readonly" and value):
                parts.append(f"{f.name}={value}")
        if self.type == "bind" and not self.readonly:
            parts.append("rw")
        return ",".join(parts)


@dataclass(frozen=True)
class ExecOp:
    """A RUN: the argv (shell already prepended), its environment and its mounts.

    ``proxy_env`` holds undeclared proxy build args: passed to the process but
    blanked from the key. ``inline_files`` are heredoc scripts made available
    read-only under ``/dev/pipes``.
    """

    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    cwd: str = "/"
    user: str = ""
    network: str = "default"
    security: str = "sandbox"
    mounts: tuple[ExecMount, ...] = ()
    inline_files: tuple[tuple[str, str], ...] = ()
    proxy_env: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def cache_map(self) -> CacheMap:
        deps = [Dep(0)]
        for m in self.mounts:
            if m.input is None:
                continue
            if m.type == "bind":
                # Read-only or not, a bind mount is keyed on the content of the
                # mounted subpath (testMountRWCache / testMountDuplicate).
                deps.append(Dep(m.input, (m.source or "/",)))
            elif m.type == "cache":
                deps.append(Dep(m.input))
        return CacheMap(digest_of("exec", _canonical(self, ("proxy_env",))), tuple(deps))


# -- file ----------------------------------------------------------------------


@dataclass(frozen=True)
class CopyAction:
    """Copy ``sources`` (paths or wildcards in input ``input``) to ``dest``."""

    input: int
    sources: tuple[str, ...]
    dest: str
    chown: str = ""
    chmod: str = ""
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()
    unpack: bool = False  # ADD: extract local archives
    follow_symlinks: bool = True
    allow_wildcard: bool = True


@dataclass(frozen=True)
class MkfileAction:
    """Create one file with inline content (COPY/ADD heredoc sources)."""

    path: str
    data: str
    mode: int = 0o644
    chown: str = ""
    chmod: str = ""


@dataclass(frozen=True)
class AddUrlAction:
    """Download input ``input`` (a URL) to ``dest``; ``checksum`` is verified, not keyed."""

    input: int
    url: str
    dest: str
    checksum: str = ""
    chown: str = ""
    chmod: str = ""


@dataclass(frozen=True)
class MkdirAction:
    """``WORKDIR``: create ``path`` (with parents), owned by ``chown`` (the USER)."""

    path: str
    mode: int = 0o755
    parents: bool = True
    chown: str = ""


FileAction = CopyAction | MkfileAction | AddUrlAction | MkdirAction


@dataclass(frozen=True)
class FileOp:
    """COPY, ADD or WORKDIR: a list of file actions applied onto the parent."""

    actions: tuple[FileAction, ...]

    def cache_map(self) -> CacheMap:
        deps = [Dep(0)]
        canon = []
        for a in self.actions:
            if isinstance(a, CopyAction):
                deps.append(Dep(a.input, a.sources, a.excludes, a.follow_symlinks))
                canon.append(_canonical(a))
            elif isinstance(a, AddUrlAction):
                # The downloaded content is keyed (through the URL input), so a
                # matching --checksum added later does not change the key.
                deps.append(Dep(a.input, ("/",)))
                canon.append(_canonical(a, ("checksum",)))
            else:
                canon.append(_canonical(a))
        return CacheMap(digest_of("file", canon), tuple(deps))


# -- config --------------------------------------------------------------------

ConfigField = Literal[
    "env", "labels", "user", "workdir", "shell", "cmd", "entrypoint", "expose", "volumes",
    "stopsignal", "healthcheck", "onbuild", "maintainer", "arg",
]


@dataclass(frozen=True)
class ConfigChange:
    """One change to the image config. ``values`` or ``pairs`` per field:

    env, labels, arg: ``pairs``; user, workdir, stopsignal, maintainer:
    ``values[0]``; shell, cmd, entrypoint, expose, volumes, onbuild: ``values``;
    healthcheck: ``values`` = the test, ``pairs`` = durations in ns and retries.
    """

    field: ConfigField
    values: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ConfigOp:
    """A metadata-only instruction: changes the image config, makes no layer, has no key."""

    changes: tuple[ConfigChange, ...] = ()


Op = SourceOp | ExecOp | FileOp | ConfigOp
