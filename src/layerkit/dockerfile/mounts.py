"""RUN ``--mount`` values: turns ``type=cache,target=/root/.cache`` into a :class:`Mount`.

Follows BuildKit (frontend/dockerfile/instructions/commands_runmount.go for the
parsing and validation, dockerfile2llb/convert_runmount.go, convert_secrets.go
and convert_ssh.go for the defaults):

- the value is one CSV record of ``key=value`` fields (keys case-insensitive);
  ``ro``/``readonly``/``rw``/``readwrite``/``required`` may stand alone;
- the type defaults to ``bind``; bind and secret/ssh mounts are read-only by
  default, cache and tmpfs mounts are writable;
- ``from`` may not use variables ("define alias stage instead");
- ``mode``/``uid``/``gid`` only on cache, secret and ssh mounts; ``size`` only
  on tmpfs; ``required`` only on secret and ssh; ``sharing`` only on cache;
- defaults: a cache's ``id`` is its cleaned target; a secret's ``id`` is its
  source, else the base name of its target, and its target is
  ``/run/secrets/<id>`` unless it is exposed only as ``env``; an ssh mount's
  ``id`` is ``default``.

Values may contain variables: :func:`parse_mount` takes an ``expand`` callable
applied to every value (BuildKit expands them when the RUN is dispatched).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

from layerkit.dockerfile.flags import FlagError, suggest
from layerkit.fastclass import dataclass, replace

__all__ = [
    "MOUNT_TYPES",
    "SHARING_MODES",
    "Mount",
    "mount_from",
    "parse_mount",
    "parse_ram_bytes",
]

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")
_ALL_KEYS = (
    "type", "from", "source", "target", "readonly", "id", "sharing", "required", "size",
    "mode", "uid", "gid", "src", "dst", "destination", "ro", "rw", "readwrite", "env",
)
_TRUE = {"1", "t", "true", "TRUE", "True", "T"}
_FALSE = {"0", "f", "false", "FALSE", "False", "F"}


@dataclass(frozen=True)
class Mount:
    """One ``--mount`` of a RUN, with BuildKit's defaults applied."""

    type: str = "bind"
    from_: str | None = None  # stage name or image; None = the build context (or empty for cache)
    source: str | None = None
    target: str | None = None
    readonly: bool = True
    id: str | None = None  # cache id, secret id or ssh id
    sharing: str | None = None  # cache only; None means "shared"
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    size: int | None = None  # tmpfs size limit in bytes
    env: str | None = None  # secret exposed as this environment variable
    spec: str = ""  # the value as written

    @property
    def effective_sharing(self) -> str:
        return self.sharing or "shared"

    def resolve_target(self, workdir: str) -> str:
        """The absolute mount point: a relative target is joined to the WORKDIR.

        Raises :class:`FlagError` when that is ``/`` (BuildKit: invalid mount target).
        """
        target = self.target or ""
        if posixpath.isabs(posixpath.normpath(target or ".")):
            resolved = posixpath.normpath(target)
        else:
            resolved = posixpath.normpath(posixpath.join("/", workdir or "/", target))
        if resolved == "/":
            raise FlagError('invalid mount target "/"', "mount somewhere below /, e.g. target=/src")
        return resolved


def _parse_bool(key: str, value: str) -> bool:
    # Go's strconv.ParseBool
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise FlagError(f"invalid value for {key}: {value}", f"use {key}=true or {key}=false")


_RAM_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$", re.IGNORECASE)
_RAM_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_ram_bytes(value: str) -> int:
    """Parse a size like docker/go-units ``RAMInBytes``: ``128m`` is 128 MiB."""
    m = _RAM_RE.match(value.strip())
    if m is None:
        raise FlagError(f"invalid size: {value!r}", "write a size such as 64m or 1g")
    return int(float(m.group(1)) * _RAM_UNITS[m.group(2).lower()])


def _split_csv(value: str) -> list[str]:
    import csv  # only --mount values need it

    try:
        rows = list(csv.reader([value], strict=True))
    except csv.Error as exc:
        raise FlagError(f"failed to parse csv mounts: {exc}") from exc
    return rows[0] if rows else []


_VAR_RE = re.compile(r"\$.")


def mount_from(spec: str) -> str | None:
    """The ``from=`` value of a mount spec, without expanding anything."""
    for item in _split_csv(spec):
        key, eq, value = item.partition("=")
        if eq and key.lower() == "from":
            return value
    return None


def check_mount_from(spec: str) -> None:
    """Reject ``from=$VAR`` at parse time, as BuildKit does."""
    value = mount_from(spec)
    if value is not None and _VAR_RE.search(value):
        raise FlagError(
            "'from' doesn't support variable expansion, define alias stage instead",
            "add a stage `FROM <image> AS <name>` (the FROM line may use global ARGs) "
            "and mount from=<name>",
        )


def parse_mount(spec: str, expand: Callable[[str], str] | None = None) -> Mount:
    """Parse one ``--mount`` value; ``expand`` is applied to each value first."""
    check_mount_from(spec)
    m = Mount(spec=spec)
    ro_auto = True
    for item in _split_csv(spec):
        key, eq, value = item.partition("=")
        key = key.lower()
        if not eq:
            if key in ("readonly", "ro"):
                m, ro_auto = replace(m, readonly=True), False
                continue
            if key in ("readwrite", "rw"):
                m, ro_auto = replace(m, readonly=False), False
                continue
            if key == "required":
                if m.type not in ("secret", "ssh"):
                    raise FlagError(f"unexpected key '{key}' for mount type '{m.type}'")
                m = replace(m, required=True)
                continue
            raise FlagError(
                f"invalid field '{item}' must be a key=value pair",
                "write key=value, e.g. target=/x",
            )
        if expand is not None:
            value = expand(value)
        if key == "type":
            kind = value.lower()
            if kind not in MOUNT_TYPES:
                close = suggest(value, MOUNT_TYPES)
                raise FlagError(
                    f"unsupported mount type {value!r}",
                    f"did you mean {close}?" if close else "use one of: " + ", ".join(MOUNT_TYPES),
                )
            m = replace(m, type=kind)
        elif key == "from":
            m = replace(m, from_=value)
        elif key in ("source", "src"):
            m = replace(m, source=value)
        elif key in ("target", "dst", "destination"):
            m = replace(m, target=value)
        elif key in ("readonly", "ro"):
            m, ro_auto = replace(m, readonly=_parse_bool(key, value)), False
        elif key in ("readwrite", "rw"):
            m, ro_auto = replace(m, readonly=not _parse_bool(key, value)), False
        elif key == "required":
            if m.type not in ("secret", "ssh"):
                raise FlagError(f"unexpected key '{key}' for mount type '{m.type}'")
            m = replace(m, required=_parse_bool(key, value))
        elif key == "size":
            if m.type != "tmpfs":
                raise FlagError(f"unexpected key '{key}' for mount type '{m.type}'")
            m = replace(m, size=parse_ram_bytes(value))
        elif key == "id":
            m = replace(m, id=value)
        elif key == "sharing":
            mode = value.lower()
            if mode not in SHARING_MODES:
                close = suggest(value, SHARING_MODES)
                raise FlagError(
                    f"unsupported sharing value {value!r}",
                    f"did you mean {close}?" if close else "use shared, private or locked",
                )
            m = replace(m, sharing=mode)
        elif key == "mode":
            m = replace(m, mode=_parse_uint(value, 8, "mode"))
        elif key == "uid":
            m = replace(m, uid=_parse_uint(value, 10, "uid"))
        elif key == "gid":
            m = replace(m, gid=_parse_uint(value, 10, "gid"))
        elif key == "env":
            m = replace(m, env=value)
        else:
            close = suggest(key, _ALL_KEYS)
            raise FlagError(
                f"unexpected key '{key}' in '{item}'",
                f"did you mean {close}?" if close else "valid keys: " + ", ".join(_ALL_KEYS),
            )
    return _validate_and_default(m, ro_auto)


def _parse_uint(value: str, base: int, what: str) -> int:
    try:
        number = int(value, base)
    except ValueError:
        number = -1
    if number < 0 or number > 0xFFFFFFFF or not value.isdigit():
        raise FlagError(f"invalid value {value} for {what}")
    return number


def _validate_and_default(m: Mount, ro_auto: bool) -> Mount:
    if m.type not in ("secret", "ssh", "cache"):
        for name in ("mode", "uid", "gid"):
            if getattr(m, name) is not None:
                raise FlagError(f"{name} not allowed for {m.type!r} type mounts")
    if ro_auto:
        m = replace(m, readonly=m.type not in ("cache", "tmpfs"))
    if m.type == "secret":
        if m.from_:
            raise FlagError("secret mount should not have a from")
        if m.sharing:
            raise FlagError("secret mount should not define sharing")
        if not m.source and not m.target and not m.id:
            raise FlagError(
                "invalid secret mount. one of source, target required",
                "write --mount=type=secret,id=<name>",
            )
        if m.source and m.id:
            raise FlagError("both source and id can't be set")
    if m.sharing and m.type != "cache":
        raise FlagError(f"invalid cache sharing set for {m.type} mount")
    if m.type == "cache" and not m.id:
        m = replace(m, id=posixpath.normpath(m.target or "."))
    elif m.type == "secret":
        secret_id = m.source or m.id or posixpath.basename(m.target or "")
        target = m.target
        if not target and m.env is None:
            target = "/run/secrets/" + posixpath.basename(secret_id)
        m = replace(m, id=secret_id, target=target)
    elif m.type == "ssh":
        if m.source:
            raise FlagError("ssh does not support source")
        m = replace(m, id=m.id or "default")
    return m
