"""``--cache-to`` / ``--cache-from`` flag text → typed specs, spelled as ``docker buildx``.

    --cache-to   type=registry,ref=REF[,mode=min|max][,compression=gzip|zstd][,ignore-error=true]
    --cache-to   type=local,dest=DIR[,mode=min|max][,compression=…][,ignore-error=true]
    --cache-to   type=inline
    --cache-from type=registry,ref=REF | type=local,src=DIR | REF
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from layerkit.errors import BuildError
from layerkit.fastclass import dataclass

__all__ = ["CacheFromSpec", "CacheToSpec", "parse_cache_from", "parse_cache_to"]

_TO_HINT = ("write --cache-to type=registry,ref=REGISTRY/REPO:TAG[,mode=max], "
            "--cache-to type=local,dest=DIR or --cache-to type=inline")
_FROM_HINT = ("write --cache-from type=registry,ref=REGISTRY/REPO:TAG, "
              "--cache-from type=local,src=DIR or --cache-from IMAGE")


def _bad(flag: str, value: str, problem: str, hint: str) -> BuildError:
    return BuildError(f"{flag} {value!r}: {problem}", hint=hint, reference="bad-flag")


def _pairs(flag: str, value: str, hint: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        key, eq, val = part.partition("=")
        if not eq:
            raise _bad(flag, value, f"{part!r} is not key=value", hint)
        out[key.strip().lower()] = val.strip()
    return out


def _flag(flag: str, value: str, name: str, raw: str | None, hint: str) -> bool:
    if raw is None:
        return False
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise _bad(flag, value, f"{name}={raw!r} is not true or false", hint)


@dataclass(frozen=True)
class CacheToSpec:
    type: Literal["registry", "local", "inline"]
    ref: str | None = None
    dest: Path | None = None
    mode: Literal["min", "max"] = "min"
    compression: Literal["gzip", "zstd"] = "gzip"
    ignore_error: bool = False
    tag: str = "latest"  # type=local: the index.json ref name


@dataclass(frozen=True)
class CacheFromSpec:
    type: Literal["registry", "local"]
    ref: str | None = None
    src: Path | None = None
    tag: str = "latest"


def parse_cache_to(value: str) -> CacheToSpec:
    flag = "--cache-to"
    kv = _pairs(flag, value, _TO_HINT)
    kind = kv.pop("type", "registry" if "ref" in kv else "")
    mode = kv.pop("mode", "min").lower()
    if mode not in ("min", "max"):
        raise _bad(flag, value, f"mode={mode!r} is not min or max", _TO_HINT)
    compression = kv.pop("compression", "gzip").lower()
    if compression not in ("gzip", "zstd"):
        raise _bad(flag, value, f"compression={compression!r} is not gzip or zstd", _TO_HINT)
    ignore = _flag(flag, value, "ignore-error", kv.pop("ignore-error", None), _TO_HINT)
    kv.pop("oci-mediatypes", None)  # always OCI media types; accepted for compatibility
    kv.pop("image-manifest", None)  # always the image-manifest layout
    tag = kv.pop("tag", "latest")
    if kind == "registry":
        ref = kv.pop("ref", "")
        if not ref:
            raise _bad(flag, value, "type=registry needs ref=", _TO_HINT)
        spec = CacheToSpec("registry", ref=ref, mode=mode,  # type: ignore[arg-type]
                           compression=compression, ignore_error=ignore)  # type: ignore[arg-type]
    elif kind == "local":
        dest = kv.pop("dest", "")
        if not dest:
            raise _bad(flag, value, "type=local needs dest=DIR", _TO_HINT)
        spec = CacheToSpec("local", dest=Path(dest), mode=mode,  # type: ignore[arg-type]
                           compression=compression, ignore_error=ignore,  # type: ignore[arg-type]
                           tag=tag)
    elif kind == "inline":
        if mode == "max":
            raise _bad(flag, value, "inline cache holds the final image's steps only "
                       "(mode=min)", "use type=registry or type=local for mode=max")
        spec = CacheToSpec("inline", ignore_error=ignore)
    else:
        raise _bad(flag, value, f"unknown type {kind!r}" if kind else "no type=", _TO_HINT)
    if kv:
        raise _bad(flag, value, f"unknown option {sorted(kv)[0]!r}", _TO_HINT)
    return spec


def parse_cache_from(value: str) -> CacheFromSpec:
    flag = "--cache-from"
    if "=" not in value:
        if not value.strip():
            raise _bad(flag, value, "empty", _FROM_HINT)
        return CacheFromSpec("registry", ref=value.strip())
    kv = _pairs(flag, value, _FROM_HINT)
    kind = kv.pop("type", "registry" if "ref" in kv else "")
    tag = kv.pop("tag", "latest")
    if kind == "registry":
        ref = kv.pop("ref", "")
        if not ref:
            raise _bad(flag, value, "type=registry needs ref=", _FROM_HINT)
        spec = CacheFromSpec("registry", ref=ref)
    elif kind == "local":
        src = kv.pop("src", "")
        if not src:
            raise _bad(flag, value, "type=local needs src=DIR", _FROM_HINT)
        spec = CacheFromSpec("local", src=Path(src), tag=tag)
    else:
        raise _bad(flag, value, f"unknown type {kind!r}" if kind else "no type=", _FROM_HINT)
    if kv:
        raise _bad(flag, value, f"unknown option {sorted(kv)[0]!r}", _FROM_HINT)
    return spec


def parse_cache_flags(
    cache_to: Sequence[str], cache_from: Sequence[str]
) -> tuple[list[CacheToSpec], list[CacheFromSpec]]:
    """Both flag lists at once, so a typo fails before anything runs."""
    return [parse_cache_to(v) for v in cache_to], [parse_cache_from(v) for v in cache_from]
