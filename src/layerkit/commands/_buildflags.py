"""The flags ``layerkit build`` and ``layerkit plan`` share (named as in ``docker buildx
build``), and their conversion to :class:`~layerkit.worker.options.BuildOptions`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from layerkit.commands.push import REGISTRY_FLAGS
from layerkit.errors import BuildError
from layerkit.worker.options import BuildOptions

F = TypeVar("F", bound=Callable[..., Any])

_FLAGS: list[Callable[[Any], Any]] = [
    click.argument("context", required=False, default="."),
    click.option("-f", "--file", "file", default=None,
                 help="Dockerfile (default: CONTEXT/Dockerfile)."),
    click.option("--build-arg", "build_arg", multiple=True, metavar="NAME[=VALUE]",
                 help="Set a build-time variable (NAME alone takes it from the environment)."),
    click.option("--target", default=None, help="Build this stage (and what it needs) only."),
    click.option("--platform", default=None, help="Target platform (the host's only, for now)."),
    click.option("--no-cache", "no_cache", is_flag=True, help="Run every step."),
    click.option("--no-cache-filter", "no_cache_filter", multiple=True, metavar="STAGE",
                 help="Run every step of these stages."),
    click.option("--secret", multiple=True, metavar="id=ID,src=FILE|env=VAR",
                 help="Secret for RUN --mount=type=secret (never stored)."),
    click.option("--ssh", multiple=True, metavar="default[=SOCKET]",
                 help="Forward the ssh-agent socket to RUN --mount=type=ssh."),
    click.option("--network", default="default",
                 type=click.Choice(["default", "host", "none"]),
                 help="Network for RUN steps (default: the host's)."),
    click.option("--build-context", "build_context", multiple=True,
                 metavar="NAME=PATH|oci-layout://DIR[:TAG]",
                 help="Extra named context for FROM / COPY --from / --mount from=."),
    click.option("--root", default=None, envvar="LAYERKIT_ROOT",
                 help="Store directory (default: $LAYERKIT_ROOT, /var/lib/layerkit as root, "
                      "else $XDG_DATA_HOME/layerkit)."),
    click.option("--jobs", default=4, show_default=True, type=click.IntRange(min=1),
                 help="How many independent stages may build at once."),
    click.option("--cache-from", "cache_from", multiple=True,
                 metavar="type=registry,ref=REF|type=local,src=DIR|IMAGE",
                 help="Import build cache from a registry, a directory, or an image's inline "
                      "cache (repeatable)."),
    click.option("--cache-to", "cache_to", multiple=True,
                 metavar="type=registry,ref=REF[,mode=max]|type=local,dest=DIR|type=inline",
                 help="Export the build cache after the build (repeatable)."),
    click.option("--pull", is_flag=True,
                 help="Ask the registry for every base image, even one the store has."),
    click.option("--push", is_flag=True, help="Push every -t name after the build."),
    *REGISTRY_FLAGS,
]


def build_flags(fn: F) -> F:
    """Decorate a click command with the shared flags."""
    for flag in reversed(_FLAGS):
        fn = flag(fn)
    return fn


def parse_build_args(values: Sequence[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for value in values:
        name, eq, val = value.partition("=")
        if not name:
            raise BuildError(f"--build-arg {value!r}: no name",
                             hint="write --build-arg NAME=VALUE", reference="bad-flag")
        out[name] = val if eq else None
    return out


def to_options(kw: dict[str, Any], **extra: Any) -> BuildOptions:
    return BuildOptions(
        context=kw["context"], file=kw["file"],
        build_args=parse_build_args(kw["build_arg"]), target=kw["target"],
        platform=kw["platform"], no_cache=kw["no_cache"],
        no_cache_filter=tuple(kw["no_cache_filter"]), secrets=tuple(kw["secret"]),
        ssh=tuple(kw["ssh"]), network=kw["network"],
        build_contexts=tuple(kw["build_context"]), root=kw["root"], jobs=kw["jobs"],
        cache_from=tuple(kw["cache_from"]), cache_to=tuple(kw["cache_to"]), pull=kw["pull"],
        push=kw["push"], insecure_registries=tuple(kw["insecure_registry"]),
        registry_config=kw["registry_config"], **extra,
    )
