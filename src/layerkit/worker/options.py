"""BuildOptions: the one options object the CLI (``layerkit build``/``plan``) and the
Python API (``layerkit.build``/``layerkit.plan``) share, named after ``docker buildx build``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["BuildOptions"]


@dataclass(frozen=True)
class BuildOptions:
    """What to build and how. Paths may be relative to the current directory.

    ``build_args`` values of None are taken from the environment (``--build-arg NAME``).
    ``secrets``, ``ssh``, ``outputs`` and ``build_contexts`` hold the flag values as
    typed on the command line (``id=x,src=f``, ``default``, ``type=oci,dest=o.tar``,
    ``name=path``).
    """

    context: str = "."
    file: str | None = None
    tags: tuple[str, ...] = ()
    build_args: Mapping[str, str | None] = field(default_factory=dict)
    target: str | None = None
    platform: str | None = None
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    ssh: tuple[str, ...] = ()
    network: str = "default"
    outputs: tuple[str, ...] = ()
    progress: str = "auto"
    metadata_file: str | None = None
    build_contexts: tuple[str, ...] = ()
    root: str | None = None
    jobs: int = 4
