"""BuildOptions: the one options object the CLI (``layerkit build``/``plan``) and the
Python API (``layerkit.build``/``layerkit.plan``) share, named after ``docker buildx build``."""

from __future__ import annotations

from collections.abc import Mapping

from layerkit.fastclass import dataclass, field

__all__ = ["BuildOptions"]


@dataclass(frozen=True)
class BuildOptions:
    """What to build and how. Paths may be relative to the current directory.

    ``build_args`` values of None are taken from the environment (``--build-arg NAME``).
    ``secrets``, ``ssh``, ``outputs`` and ``build_contexts`` hold the flag values as
    typed on the command line (``id=x,src=f``, ``default``, ``type=oci,dest=o.tar``,
    ``name=path``). ``cache_from``/``cache_to`` hold ``--cache-from``/``--cache-to``
    values (``type=registry,ref=REF,mode=max``, ``type=local,dest=DIR``, ``type=inline``,
    or a plain image reference for ``cache_from``); ``push`` pushes every tag; ``pull``
    asks the registry for every base even when the store has it.
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
    pull: bool = False
    push: bool = False
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    registry_config: str | None = None  # mirrors / insecure hosts (TOML); None: the default
