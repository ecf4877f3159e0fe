"""Turns the environment into store locations: the root and the well-known paths under it.

The root is ``$LAYERKIT_ROOT`` when set; otherwise ``/var/lib/layerkit`` for root
and ``$XDG_DATA_HOME/layerkit`` (``~/.local/share/layerkit``) for other users,
as DESIGN.md "Store layout" says. Every command that opens a store (build,
images, prune, ...) resolves its ``--root`` through :func:`default_root`.
"""

from __future__ import annotations

import os
from pathlib import Path

from layerkit.fastclass import dataclass

ROOT_ENV = "LAYERKIT_ROOT"


def default_root() -> Path:
    """The store root for this user, honouring ``LAYERKIT_ROOT`` and ``XDG_DATA_HOME``."""
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/layerkit")
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "layerkit"


@dataclass(frozen=True)
class StorePaths:
    """The files and directories one store root holds (see docs/store.md)."""

    root: Path

    @property
    def blobs(self) -> Path:
        return self.root / "blobs" / "sha256"

    @property
    def blobs_tmp(self) -> Path:
        return self.root / "blobs" / "tmp"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def cache_mounts(self) -> Path:
        return self.root / "cachemounts"

    @property
    def cache_db(self) -> Path:
        return self.root / "cache.db"

    @property
    def images_db(self) -> Path:
        return self.root / "images.db"

    @property
    def locks(self) -> Path:
        return self.root / "locks"


def resolve_root(root: str | os.PathLike[str] | None) -> Path:
    """``--root`` when given, else :func:`default_root`."""
    return Path(root) if root else default_root()
