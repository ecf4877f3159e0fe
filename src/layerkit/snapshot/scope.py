"""Maps a path inside a root filesystem to a host path that stays inside it.

Symlinks met on the way are resolved as the container would see them:
absolute targets restart at the root, and ``..`` never climbs above the root
(the same idea as Go's securejoin / containerd's ``fs.RootPath``). This is what
stops a layer, or an image's ``/etc/passwd``, from making us touch host files.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

MAX_SYMLINKS = 255


class ScopeError(Exception):
    """Too many symlinks, or a non-directory where a directory was expected."""


def clean(name: str) -> str:
    """Normalise a path inside the root: strip leading '/', fold '.' and '..'
    (clamped at the root). Callers check for escapes first with `escapes`."""
    return posixpath.normpath("/" + name).lstrip("/")


def escapes(name: str) -> bool:
    """True when a *relative* tar member name climbs above its root."""
    norm = posixpath.normpath(name.lstrip("/")) if name.strip("/") else "."
    return norm == ".." or norm.startswith("../")


def resolve_in_root(root: Path, name: str, *, follow_final: bool = False) -> Path:
    """Host path for ``name`` inside ``root``, following symlinks in scope.

    The final component is followed only when ``follow_final`` is set, so a
    caller replacing an entry replaces the link itself, never its target.
    """
    parts = [p for p in name.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(str(root), *resolved, part)
        is_final = not parts
        if is_final and not follow_final:
            resolved.append(part)
            break
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(part)
            continue
        if (st.st_mode & 0o170000) == 0o120000:
            links += 1
            if links > MAX_SYMLINKS:
                raise ScopeError(f"too many levels of symbolic links in {name!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return Path(root, *resolved)
