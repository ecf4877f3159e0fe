"""Starts a real OCI registry (Debian's ``docker-registry``) on 127.0.0.1:<random port>.

Input: a scratch directory and an optional authentication scheme. Output: a
``RunningRegistry`` whose ``/v2/`` already answers, stopped again on exit.

The configuration is written as JSON, which is also valid YAML, so no YAML
library is needed. Authentication is pluggable: anything with the
``RegistryAuth`` shape contributes the ``auth:`` section of the config.
``HtpasswdAuth`` (Basic) is provided; a Bearer token server belongs in a
second class with the same two methods (see docs/benchmarks.md, "Test support").
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .tools import require_tool

HOST = "127.0.0.1"


class RegistryStartError(RuntimeError):
    """The registry process exited or never answered on /v2/."""


class RegistryAuth(Protocol):
    """What a registry authentication scheme must provide."""

    def configure(self, workdir: Path) -> dict[str, object]:
        """Write any files the scheme needs into ``workdir``; return the ``auth`` section."""
        ...

    def authorization_header(self) -> str | None:
        """The ``Authorization`` value a client should send, if it is static."""
        ...


@dataclass(frozen=True)
class HtpasswdAuth:
    """HTTP Basic authentication from an htpasswd file with a bcrypt hash."""

    username: str = "tester"
    password: str = "s3cret-pass"
    realm: str = "layerkit-test"

    def configure(self, workdir: Path) -> dict[str, object]:
        path = workdir / "htpasswd"
        path.write_text(f"{self.username}:{bcrypt_hash(self.password)}\n")
        return {"htpasswd": {"realm": self.realm, "path": str(path)}}

    def authorization_header(self) -> str | None:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash the registry accepts, from whatever is installed.

    Tried in order: the ``bcrypt`` package, libcrypt through the ``crypt``
    module (glibc/libxcrypt on Debian supports ``$2b$``), then ``htpasswd -B``.
    """
    try:
        import bcrypt  # type: ignore[import-not-found, unused-ignore]

        hashed: bytes = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5))
        return hashed.decode()
    except ImportError:
        pass
    with contextlib.suppress(ImportError, AttributeError):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        method = crypt.METHOD_BLOWFISH
        if method in crypt.methods:
            result = crypt.crypt(password, crypt.mksalt(method, rounds=32))
            if result and result.startswith("$2"):
                return result
    htpasswd = require_tool("htpasswd", "needed to hash a registry password")
    out = subprocess.run(
        [str(htpasswd), "-nbB", "-C", "5", "user", password],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().split(":", 1)[1]


@dataclass
class RunningRegistry:
    """A registry process listening on ``HOST:port``."""

    port: int
    root: Path
    process: subprocess.Popen[bytes]
    auth: RegistryAuth | None = None
    log_path: Path = field(default_factory=Path)

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, the registry part of an image reference."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def ref(self, repository: str, tag: str = "latest") -> str:
        """A full reference such as ``127.0.0.1:PORT/busybox:1.35``."""
        return f"{self.address}/{repository}:{tag}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    """A port the kernel considers free right now (racy; callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def registry_config(root: Path, port: int, auth: dict[str, object] | None) -> dict[str, object]:
    """The distribution registry configuration for local filesystem storage."""
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "data")},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"{HOST}:{port}", "secret": "layerkit-test-secret"},
    }
    if auth:
        config["auth"] = auth
    return config


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # 401 from an authenticated registry still means it is up
    except OSError:
        return False


def start_registry(
    workdir: Path,
    *,
    auth: RegistryAuth | None = None,
    timeout: float = 15.0,
    attempts: int = 3,
) -> RunningRegistry:
    """Start ``docker-registry`` in ``workdir`` and wait until ``/v2/`` answers."""
    binary = require_tool("docker-registry", "needed for a local OCI registry")
    workdir.mkdir(parents=True, exist_ok=True)
    auth_section = auth.configure(workdir) if auth is not None else None
    last_log = ""
    for attempt in range(attempts):
        port = free_port()
        config_path = workdir / "config.yml"
        config_path.write_text(json.dumps(registry_config(workdir, port, auth_section), indent=2))
        log_path = workdir / f"registry-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(binary), "serve", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "OTEL_TRACES_EXPORTER": "none"},
            )
        running = RunningRegistry(port, workdir, process, auth, log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(f"{running.url}/v2/"):
                return running
            time.sleep(0.05)
        running.stop()
        last_log = running.log()
        # A lost race for the port makes the process exit: try another port.
    raise RegistryStartError(
        f"docker-registry did not answer on /v2/ after {attempts} attempts; last log:\n{last_log}"
    )


@contextlib.contextmanager
def run_registry(
    workdir: Path, *, auth: RegistryAuth | None = None
) -> Iterator[RunningRegistry]:
    """Context manager form of ``start_registry``: the process is stopped on exit."""
    running = start_registry(workdir, auth=auth)
    try:
        yield running
    finally:
        running.stop()
