"""Platforms: turns ``linux/arm64/v8`` (or the host machine) into a :class:`Platform`.

Follows containerd's ``platforms.Parse`` and ``Normalize`` as BuildKit uses
them: architecture aliases (``x86_64`` → ``amd64``, ``aarch64`` → ``arm64``),
``arm`` defaulting to variant ``v7``, ``arm64``'s ``v8`` variant dropped, and a
single component read as an OS (``linux``) or, failing that, an architecture
of the host OS.
"""

from __future__ import annotations

import os
import re

from layerkit.errors import FrontendError
from layerkit.fastclass import dataclass

__all__ = ["Platform", "host_platform", "parse_platform"]

_KNOWN_OS = {
    "aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js", "linux",
    "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows",
}
_COMPONENT = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch = arch.lower()
    variant = variant.lower()
    if arch in ("i386", "i486", "i586", "i686"):
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        return "arm64", "" if variant in ("8", "v8", "") else variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            return "arm", "v7"
        if variant in ("5", "6", "8"):
            return "arm", "v" + variant
        return "arm", variant
    return arch, variant


def host_platform(machine: str | None = None, system: str | None = None) -> Platform:
    """The platform of this machine (``uname -m``), normalised."""
    # os.uname, not the platform module: the same answer without its ~2 ms import.
    uname = os.uname()
    arch_raw = machine if machine is not None else uname.machine
    os_raw = (system if system is not None else uname.sysname).lower() or "linux"
    variant = ""
    if arch_raw.lower().startswith("armv"):  # e.g. armv7l, armv6l
        variant = "v" + re.sub(r"\D.*$", "", arch_raw[4:])
        arch_raw = "arm"
    arch, variant = _normalize_arch(arch_raw or "amd64", variant)
    return Platform(os_raw, arch, variant)


def parse_platform(text: str, *, host: Platform | None = None) -> Platform:
    """Parse ``os[/arch[/variant]]`` (or a bare architecture), normalised.

    Raises :class:`FrontendError` for malformed text.
    """
    host = host or host_platform()
    parts = text.strip().split("/")
    if not text.strip() or len(parts) > 3 or not all(_COMPONENT.match(p) for p in parts):
        raise FrontendError(
            f"invalid platform {text!r}",
            hint="write os/arch[/variant], for example linux/amd64 or linux/arm64/v8",
            reference="invalid-platform",
        )
    if len(parts) == 1:
        word = parts[0].lower()
        if word in _KNOWN_OS:
            if word == host.os:
                return host
            return Platform(word, host.architecture, host.variant)
        arch, variant = _normalize_arch(word, "")
        return Platform(host.os, arch, variant)
    os_name = parts[0].lower()
    arch, variant = _normalize_arch(parts[1], parts[2] if len(parts) == 3 else "")
    return Platform(os_name, arch, variant)
