"""Turns ``layerkit login``/``logout`` into checked entries in our auth.json.

``login`` first proves the credentials work (``GET /v2/`` through the full
auth flow, so Basic and Bearer registries are both exercised), then stores
them in ``$XDG_CONFIG_HOME/layerkit/auth.json`` with mode 0600.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import httpx

from layerkit.registry.auth import StaticCredentials
from layerkit.registry.client import RegistryClient, _Op
from layerkit.registry.config import RegistryConfig
from layerkit.registry.credentials import Credentials, remove_login, store_login
from layerkit.registry.reference import Reference, normalize_registry


def check_login(
    registry: str,
    username: str,
    password: str,
    *,
    config: RegistryConfig | None = None,
    insecure_registries: Iterable[str] = (),
    transport: httpx.BaseTransport | None = None,
) -> None:
    """Raise :class:`UnauthorizedError` unless ``registry`` accepts the credentials."""
    host = normalize_registry(registry)
    creds = Credentials(username, password, source="the login command")
    with RegistryClient(
        config=config,
        credentials=StaticCredentials({host: creds}),
        insecure_registries=insecure_registries,
        transport=transport,
    ) as client:
        origin = client.origin(Reference(host, "x", "latest"))
        request = httpx.Request("GET", f"{origin.base_url}/v2/")
        client.send(request, _Op("logging in to", host, "", "v2")).close()


def login(
    registry: str,
    username: str,
    password: str,
    *,
    verify: bool = True,
    auth_path: Path | None = None,
    config: RegistryConfig | None = None,
    insecure_registries: Iterable[str] = (),
    transport: httpx.BaseTransport | None = None,
) -> Path:
    """Check (unless ``verify=False``) and store credentials; return the auth.json path."""
    if verify:
        check_login(
            registry,
            username,
            password,
            config=config,
            insecure_registries=insecure_registries,
            transport=transport,
        )
    return store_login(registry, username, password, path=auth_path)


def logout(registry: str, *, auth_path: Path | None = None) -> bool:
    """Forget ``registry``'s credentials; False when none were stored."""
    return remove_login(registry, path=auth_path)
