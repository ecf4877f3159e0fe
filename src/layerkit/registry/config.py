"""Turns ``$XDG_CONFIG_HOME/layerkit/config.toml`` into per-registry settings.

Format (see docs/registry.md)::

    [registry."docker.io"]
    mirrors = ["http://127.0.0.1:5000", "https://mirror.example.com"]

    [registry."myregistry.local:5000"]
    insecure = true      # allow plain HTTP / unverified TLS for this host

Hosts are keys as they appear in image references (``docker.io`` for Docker Hub).
Mirrors only serve pulls and are tried in order before the registry itself.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from layerkit.fastclass import dataclass, field, replace
from layerkit.registry.errors import RegistryConfigError
from layerkit.registry.reference import normalize_registry


def config_home() -> Path:
    """``$XDG_CONFIG_HOME/layerkit`` (``~/.config/layerkit`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "layerkit"


def default_config_path() -> Path:
    return config_home() / "config.toml"


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1``, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HostConfig:
    """Settings for one registry host."""

    mirrors: tuple[str, ...] = ()
    insecure: bool = False


@dataclass(frozen=True)
class RegistryConfig:
    """All per-host settings; hosts without an entry get :class:`HostConfig` defaults."""

    hosts: Mapping[str, HostConfig] = field(default_factory=dict)
    source: Path | None = None

    def host(self, registry: str) -> HostConfig:
        return self.hosts.get(normalize_registry(registry), HostConfig())

    def is_insecure(self, registry: str) -> bool:
        """Plain HTTP is allowed for loopback hosts and hosts marked insecure."""
        return is_loopback_host(registry) or self.host(registry).insecure

    def with_insecure(self, registries: Iterable[str]) -> RegistryConfig:
        """A copy with ``registries`` marked insecure (``--insecure-registry``)."""
        hosts = dict(self.hosts)
        for reg in registries:
            key = normalize_registry(reg)
            hosts[key] = replace(hosts.get(key, HostConfig()), insecure=True)
        return replace(self, hosts=hosts)


def _fail(path: Path, what: str) -> RegistryConfigError:
    return RegistryConfigError(
        f"{path}: {what}",
        hint='expected e.g. [registry."docker.io"] mirrors = ["http://127.0.0.1:5000"]',
    )


def _parse_mirror(path: Path, host: str, value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise _fail(path, f"registry.{host!r}.mirrors: {value!r} is not an http(s):// URL")
    return value.rstrip("/")


def parse_config(text: str, path: Path) -> RegistryConfig:
    """Parse config.toml text; ``path`` is only used in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _fail(path, f"not valid TOML: {e}") from None
    section = data.get("registry", {})
    if not isinstance(section, dict):
        raise _fail(path, "[registry] must be a table of hosts")
    hosts: dict[str, HostConfig] = {}
    for host, table in section.items():
        if not isinstance(table, dict):
            raise _fail(path, f'[registry."{host}"] must be a table')
        unknown = sorted(set(table) - {"mirrors", "insecure"})
        if unknown:
            raise _fail(path, f'[registry."{host}"]: unknown keys {", ".join(unknown)}')
        mirrors = table.get("mirrors", [])
        if not isinstance(mirrors, list):
            raise _fail(path, f"registry.{host!r}.mirrors must be a list of URLs")
        insecure = table.get("insecure", False)
        if not isinstance(insecure, bool):
            raise _fail(path, f"registry.{host!r}.insecure must be true or false")
        hosts[normalize_registry(host)] = HostConfig(
            mirrors=tuple(_parse_mirror(path, host, m) for m in mirrors), insecure=insecure
        )
    return RegistryConfig(hosts=hosts, source=path)


def load_config(path: Path | None = None) -> RegistryConfig:
    """Read the config file; a missing default file means "no settings", a missing
    explicit one is an error."""
    explicit = path is not None
    target = Path(path) if path is not None else default_config_path()
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise RegistryConfigError(
                f"registry config file {target} does not exist",
                hint="check the path, or leave it out to use the default location",
            ) from None
        return RegistryConfig()
    except OSError as e:
        raise RegistryConfigError(f"cannot read {target}: {e.strerror}") from None
    return parse_config(text, target)
