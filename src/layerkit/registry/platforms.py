"""Turns an image index plus a wanted platform into the one manifest descriptor to pull.

Matching follows containerd's: os and architecture must match after
normalisation (``aarch64`` is ``arm64``, ``arm64/v8`` is ``arm64``); an exact
variant wins; a host asking for no variant takes any; an ``arm/v7`` host falls
back to ``v6`` then ``v5``. Entries without a platform, or with
``unknown/unknown`` (BuildKit's attestation manifests), are never chosen.
"""

from __future__ import annotations

from layerkit.content.oci import Descriptor, ImageIndex
from layerkit.errors import LayerkitError
from layerkit.frontend.platform import Platform, host_platform, parse_platform
from layerkit.registry.errors import PlatformNotFoundError

__all__ = ["Platform", "available_platforms", "normalize_platform", "select_manifest"]


def normalize_platform(value: Platform | str | None) -> Platform:
    """A :class:`Platform` from text (``linux/arm64/v8``), a Platform, or None (the host)."""
    if value is None:
        return host_platform()
    if isinstance(value, Platform):
        return parse_platform(str(value))
    return parse_platform(value)


def _descriptor_platform(desc: Descriptor) -> Platform | None:
    p = desc.platform
    if p is None or p.os == "unknown" or p.architecture == "unknown":
        return None
    text = f"{p.os}/{p.architecture}" + (f"/{p.variant}" if p.variant else "")
    try:
        return parse_platform(text)
    except LayerkitError:
        return None


def available_platforms(index: ImageIndex) -> list[str]:
    """The platforms an index offers, as ``os/arch[/variant]`` strings, in index order."""
    seen: list[str] = []
    for desc in index.manifests:
        plat = _descriptor_platform(desc)
        if plat is not None and str(plat) not in seen:
            seen.append(str(plat))
    return seen


def _arm_fallbacks(variant: str) -> list[str]:
    order = ["v8", "v7", "v6", "v5"]
    return order[order.index(variant) + 1 :] if variant in order else []


def select_manifest(
    index: ImageIndex, wanted: Platform | str | None, *, what: str = "the image"
) -> Descriptor:
    """The descriptor in ``index`` that best matches ``wanted`` (None: this machine)."""
    want = normalize_platform(wanted)
    candidates = [
        (plat, desc)
        for desc in index.manifests
        if (plat := _descriptor_platform(desc)) is not None
        and plat.os == want.os
        and plat.architecture == want.architecture
    ]
    for plat, desc in candidates:
        if plat.variant == want.variant:
            return desc
    if not want.variant and candidates:
        return candidates[0][1]
    if want.architecture == "arm":
        for variant in _arm_fallbacks(want.variant):
            for plat, desc in candidates:
                if plat.variant == variant:
                    return desc
    offered = tuple(available_platforms(index))
    listing = ", ".join(offered) if offered else "none"
    raise PlatformNotFoundError(
        f"{what} has no manifest for platform {want}; available platforms: {listing}",
        available=offered,
        hint="choose one of the available platforms with --platform",
    )
