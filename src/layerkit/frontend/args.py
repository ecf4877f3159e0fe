"""Build-arg scoping rules that do not depend on a stage: predefined and global args.

Turns the platforms, the ``--build-arg`` values and the global ``ARG`` lines
(those before the first FROM) into the *global scope* BuildKit uses to expand
FROM lines and to give a bare ``ARG NAME`` inside a stage its value
(dockerfile2llb ``defaultArgs`` and ``buildMetaArgs``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from layerkit.dockerfile.instructions import ArgInstruction
from layerkit.dockerfile.shell import ShellLex
from layerkit.errors import Location
from layerkit.fastclass import dataclass
from layerkit.frontend.platform import Platform

__all__ = [
    "BUILTIN_ARGS",
    "PLATFORM_ARGS",
    "PROXY_ARGS",
    "MetaArg",
    "default_args",
    "is_builtin_arg",
    "is_proxy_arg",
    "proxy_env",
    "resolve_meta_args",
]

PLATFORM_ARGS = (
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
)
# Usable in RUN without an ARG line, and kept out of cache keys unless declared.
PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
# Build args the builder itself reads: never reported as "not consumed".
BUILTIN_ARGS = frozenset({*PLATFORM_ARGS, "TARGETSTAGE", "SOURCE_DATE_EPOCH"})


def is_proxy_arg(name: str) -> bool:
    return name.upper() in PROXY_ARGS


def is_builtin_arg(name: str) -> bool:
    return name in BUILTIN_ARGS or is_proxy_arg(name) or name.startswith("BUILDKIT_")


def proxy_env(build_args: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The proxy build args (either case), passed to every RUN outside its cache key."""
    return tuple((k, v) for k, v in build_args.items() if is_proxy_arg(k))


def default_args(
    target_platform: Platform,
    build_platform: Platform,
    target_stage: str,
    overrides: Mapping[str, str],
) -> dict[str, str]:
    """The predefined global args; a ``--build-arg`` of the same name wins."""
    values = {
        "BUILDPLATFORM": str(build_platform),
        "BUILDOS": build_platform.os,
        "BUILDARCH": build_platform.architecture,
        "BUILDVARIANT": build_platform.variant,
        "TARGETPLATFORM": str(target_platform),
        "TARGETOS": target_platform.os,
        "TARGETARCH": target_platform.architecture,
        "TARGETVARIANT": target_platform.variant,
        "TARGETSTAGE": target_stage,
    }
    return {k: overrides.get(k, v) for k, v in values.items()}


@dataclass(frozen=True)
class MetaArg:
    """One global ARG after resolution."""

    name: str
    value: str | None  # None: declared without default and not given
    default: str | None  # as written
    from_build_arg: bool
    location: Location
    deps: frozenset[str] = frozenset()  # other args its default referenced


def resolve_meta_args(
    meta: Sequence[ArgInstruction],
    scope: dict[str, str],
    build_args: Mapping[str, str],
    lex: ShellLex,
) -> list[MetaArg]:
    """Evaluate the global ARGs in order, adding each value to ``scope``.

    A build arg replaces the default (which is then not even evaluated, so a
    ``${X:?msg}`` default does not fail); otherwise the default is expanded
    with the scope so far.
    """
    out: list[MetaArg] = []
    for instr in meta:
        for decl in instr.args:
            deps: frozenset[str] = frozenset()
            value: str | None
            if decl.name in build_args:
                value = build_args[decl.name]
            elif decl.default is not None:
                res = lex.process_word_with_matches(decl.default, scope, location=instr.location)
                value = res.result
                deps = res.matched - {decl.name}
            else:
                value = None
            if value is not None:
                scope.pop(decl.name, None)
                scope[decl.name] = value
            out.append(MetaArg(decl.name, value, decl.default, decl.name in build_args,
                               instr.location, deps))
    return out
