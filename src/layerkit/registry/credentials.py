"""Turns a registry host into the credentials to use for it, and stores our own logins.

Lookup order for a host:

1. ``$XDG_CONFIG_HOME/layerkit/auth.json`` (written by ``layerkit login``);
2. ``~/.docker/config.json`` (or ``$DOCKER_CONFIG/config.json``): ``credHelpers[host]``,
   then an inline ``auths[host].auth`` (base64 ``user:password``), then ``credsStore``.

Helpers are run as ``docker-credential-<name> get`` with the server URL on stdin.
Secrets never appear in ``repr`` or in error messages: :attr:`Credentials.source`
says where a credential came from, and that is what errors show.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from layerkit.fastclass import dataclass, field
from layerkit.registry.config import config_home
from layerkit.registry.errors import CredentialHelperError, RegistryConfigError
from layerkit.registry.reference import DOCKER_HUB, DOCKER_HUB_AUTH_KEY, normalize_registry


@dataclass(frozen=True)
class Credentials:
    """A username and secret for one registry. ``identity_token`` is an OAuth refresh
    token (what credential helpers return with the username ``<token>``)."""

    username: str
    password: str = field(repr=False)
    source: str = ""
    identity_token: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """What error messages show: never the secret."""
        who = "an identity token" if self.identity_token else f"user {self.username!r}"
        return f"{who} from {self.source}" if self.source else who


# Runs ``docker-credential-<helper> get``; a seam so tests need no real helper.
HelperRunner = Callable[[str, str], "Credentials | None"]


def run_credential_helper(helper: str, server: str) -> Credentials | None:
    """Ask ``docker-credential-<helper>`` for ``server``; None when it has nothing."""
    program = f"docker-credential-{helper}"
    try:
        proc = subprocess.run(
            [program, "get"], input=server.encode(), capture_output=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise CredentialHelperError(
            f"credential helper {program} is not installed (configured in docker config.json)",
            hint=f"install {program}, or remove it from credHelpers/credsStore",
        ) from None
    except subprocess.TimeoutExpired:
        raise CredentialHelperError(f"{program} get did not answer within 60s") from None
    out = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0:
        if "credentials not found" in (out + proc.stderr.decode(errors="replace")).lower():
            return None
        raise CredentialHelperError(
            f"{program} get failed with exit status {proc.returncode}",
            hint="run it by hand to see why: echo SERVER | " + program + " get",
        )
    try:
        data = json.loads(out)
        username, secret = str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError):
        raise CredentialHelperError(f"{program} get printed something that is not JSON") from None
    source = f"credential helper {program}"
    if username == "<token>":
        return Credentials("<token>", "", source=source, identity_token=secret)
    return Credentials(username, secret, source=source)


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def default_auth_path() -> Path:
    return config_home() / "auth.json"


def _server_url(registry: str) -> str:
    """The key ``docker login`` uses for ``registry``."""
    return DOCKER_HUB_AUTH_KEY if registry == DOCKER_HUB else registry


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RegistryConfigError(f"cannot read {path}: {e.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise RegistryConfigError(
            f"{path} is not valid JSON: {e}", hint="fix or delete the file"
        ) from None
    if not isinstance(data, dict):
        raise RegistryConfigError(f"{path}: expected a JSON object")
    return data


def _entry_for(table: Mapping[str, Any], registry: str) -> tuple[str, Any] | None:
    """Find ``registry``'s entry whatever form the key was saved in (URL, host, ...)."""
    for key, value in table.items():
        if isinstance(key, str) and normalize_registry(key) == registry:
            return key, value
    return None


def _decode_auth(path: Path, key: str, entry: Any) -> Credentials | None:
    if not isinstance(entry, Mapping):
        return None
    source = str(path)
    token = entry.get("identitytoken")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            username, sep, password = base64.b64decode(encoded, validate=True).decode().partition(
                ":"
            )
        except (binascii.Error, UnicodeDecodeError):
            raise RegistryConfigError(
                f"{path}: auths[{key!r}].auth is not base64 of 'user:password'",
                hint=f"log in again to {key}",
            ) from None
        if not sep:
            raise RegistryConfigError(f"{path}: auths[{key!r}].auth has no ':'")
        return Credentials(username, password, source, token if isinstance(token, str) else None)
    if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        return Credentials(entry["username"], entry["password"], source)
    return None


@dataclass
class CredentialStore:
    """Looks credentials up for a host (see the module docstring for the order)."""

    auth_path: Path | None = None
    docker_config: Path | None = None
    helper: HelperRunner = run_credential_helper

    def searched(self) -> list[str]:
        """The files consulted, for "no credentials found in ..." messages."""
        return [str(self.auth_path or default_auth_path()),
                str(self.docker_config or docker_config_path())]  # fmt: skip

    def get(self, registry: str) -> Credentials | None:
        registry = normalize_registry(registry)
        own_path = self.auth_path or default_auth_path()
        own = _read_json(own_path) or {}
        found = _entry_for(own.get("auths") or {}, registry)
        if found and (creds := _decode_auth(own_path, *found)):
            return creds
        docker_path = self.docker_config or docker_config_path()
        docker = _read_json(docker_path) or {}
        helpers = docker.get("credHelpers") or {}
        found_helper = _entry_for(helpers, registry) if isinstance(helpers, Mapping) else None
        if found_helper and isinstance(found_helper[1], str):
            return self.helper(found_helper[1], _server_url(registry))
        found = _entry_for(docker.get("auths") or {}, registry)
        if found and (creds := _decode_auth(docker_path, *found)):
            return creds
        store = docker.get("credsStore")
        if isinstance(store, str) and store:
            return self.helper(store, _server_url(registry))
        return None


def _write_private_json(path: Path, data: Mapping[str, Any]) -> None:
    """Atomically replace ``path`` with ``data``, readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".auth-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def store_login(registry: str, username: str, password: str, *, path: Path | None = None) -> Path:
    """Record credentials for ``registry`` in our auth.json (0600); return its path."""
    if not username or ":" in username:
        raise RegistryConfigError(
            f"invalid username {username!r}", hint="a username is non-empty and has no ':'"
        )
    target = path or default_auth_path()
    data = _read_json(target) or {}
    auths = {k: v for k, v in (data.get("auths") or {}).items()
             if normalize_registry(k) != normalize_registry(registry)}  # fmt: skip
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    auths[normalize_registry(registry)] = {"auth": token}
    data["auths"] = auths
    _write_private_json(target, data)
    return target


def remove_login(registry: str, *, path: Path | None = None) -> bool:
    """Forget ``registry`` in our auth.json; True when there was something to forget."""
    target = path or default_auth_path()
    data = _read_json(target)
    if not data:
        return False
    auths = data.get("auths") or {}
    kept = {k: v for k, v in auths.items() if normalize_registry(k) != normalize_registry(registry)}
    if len(kept) == len(auths):
        return False
    data["auths"] = kept
    _write_private_json(target, data)
    return True
