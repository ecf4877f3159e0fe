"""config.toml parsing, credential lookup (docker config, helpers) and login/logout storage."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import httpx
import pytest

from layerkit.registry import (
    Credentials,
    CredentialStore,
    RegistryConfig,
    RegistryConfigError,
    UnauthorizedError,
    load_config,
    login,
    logout,
)
from layerkit.registry.config import HostConfig, is_loopback_host


def test_config_file_mirrors_and_insecure(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[registry."docker.io"]\n'
        'mirrors = ["http://127.0.0.1:5000/", "https://mirror.example.com"]\n'
        '[registry."myreg.local:5000"]\n'
        "insecure = true\n"
    )
    cfg = load_config(path)
    assert cfg.host("index.docker.io").mirrors == (
        "http://127.0.0.1:5000", "https://mirror.example.com"
    )
    assert cfg.is_insecure("myreg.local:5000")
    assert not cfg.is_insecure("ghcr.io")
    assert cfg.host("ghcr.io") == HostConfig()
    assert cfg.with_insecure(["ghcr.io"]).is_insecure("ghcr.io")


def test_default_location_is_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert load_config() == RegistryConfig()  # missing default file: no settings
    (tmp_path / "layerkit").mkdir()
    (tmp_path / "layerkit" / "config.toml").write_text('[registry."a.io"]\ninsecure = true\n')
    assert load_config().is_insecure("a.io")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[registry", "not valid TOML"),
        ('[registry."a.io"]\nmirrors = "http://x"\n', "list of URLs"),
        ('[registry."a.io"]\nmirrors = ["ftp://x"]\n', "not an http(s):// URL"),
        ('[registry."a.io"]\ninsecure = "yes"\n', "true or false"),
        ('[registry."a.io"]\nmirror = []\n', "unknown keys mirror"),
    ],
)
def test_config_errors_name_the_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(RegistryConfigError) as info:
        load_config(path)
    assert str(path) in info.value.message
    assert fragment in info.value.message


def test_explicit_missing_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost:5000", True), ("127.0.0.1", True), ("127.1.2.3:80", True),
     ("[::1]:5000", True), ("10.0.0.1:5000", False), ("example.com", False)],
)  # fmt: skip
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_docker_config_auths_and_hub_key(tmp_path: Path) -> None:
    docker = tmp_path / "docker.json"
    docker.write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": _b64("hubuser:hubpass")},
        "http://reg.example.com:5000/v2/": {"auth": _b64("u:p:with:colons")},
    }}))  # fmt: skip
    store = CredentialStore(auth_path=tmp_path / "none.json", docker_config=docker)
    hub = store.get("docker.io")
    assert hub is not None and (hub.username, hub.password) == ("hubuser", "hubpass")
    other = store.get("reg.example.com:5000")
    assert other is not None and other.password == "p:with:colons"
    assert store.get("ghcr.io") is None
    assert "hubpass" not in repr(hub) and "hubpass" not in hub.describe()
    assert str(docker) in hub.describe()


def test_broken_docker_config_is_a_clear_error(tmp_path: Path) -> None:
    docker = tmp_path / "docker.json"
    docker.write_text(json.dumps({"auths": {"a.io": {"auth": "!!!"}}}))
    store = CredentialStore(auth_path=tmp_path / "none.json", docker_config=docker)
    with pytest.raises(RegistryConfigError, match="not base64"):
        store.get("a.io")


def test_cred_helpers_and_store_are_consulted(tmp_path: Path) -> None:
    docker = tmp_path / "docker.json"
    docker.write_text(json.dumps({
        "credHelpers": {"ecr.example.com": "ecr-login"},
        "credsStore": "desktop",
        "auths": {"inline.io": {"auth": _b64("i:p")}, "store.io": {}},
    }))  # fmt: skip
    calls: list[tuple[str, str]] = []

    def helper(name: str, server: str) -> Credentials | None:
        calls.append((name, server))
        return Credentials("h", "secret", source=f"docker-credential-{name}")

    store = CredentialStore(auth_path=tmp_path / "none.json", docker_config=docker, helper=helper)
    got = store.get("ecr.example.com")
    assert got is not None and got.source == "docker-credential-ecr-login"
    inline = store.get("inline.io")
    assert inline is not None and inline.username == "i"
    assert store.get("store.io") is not None
    hub = store.get("docker.io")
    assert hub is not None
    assert calls == [
        ("ecr-login", "ecr.example.com"),
        ("desktop", "store.io"),
        ("desktop", "https://index.docker.io/v1/"),
    ]


def test_real_helper_program_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A docker-credential-* script on PATH gets the server on stdin and prints JSON."""
    script = tmp_path / "docker-credential-fake"
    script.write_text(
        "#!/bin/sh\nread server\n"
        'if [ "$server" = "known.io" ]; then\n'
        '  printf \'{"ServerURL":"known.io","Username":"bob","Secret":"pw"}\'\n'
        "else echo 'credentials not found in native keychain'; exit 1; fi\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    docker = tmp_path / "docker.json"
    docker.write_text(json.dumps({"credsStore": "fake"}))
    store = CredentialStore(auth_path=tmp_path / "none.json", docker_config=docker)
    got = store.get("known.io")
    assert got is not None and (got.username, got.password) == ("bob", "pw")
    assert store.get("unknown.io") is None


def test_login_logout_round_trip_with_0600(tmp_path: Path) -> None:
    auth = tmp_path / "layerkit" / "auth.json"
    path = login("Reg.Example.com:5000", "alice", "pw1", verify=False, auth_path=auth)
    assert path == auth
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600
    login("docker.io", "hub", "pw2", verify=False, auth_path=auth)
    store = CredentialStore(auth_path=auth, docker_config=tmp_path / "none.json")
    got = store.get("reg.example.com:5000")
    assert got is not None and (got.username, got.password) == ("alice", "pw1")
    assert store.get("index.docker.io") is not None
    assert logout("reg.example.com:5000", auth_path=auth) is True
    assert logout("reg.example.com:5000", auth_path=auth) is False
    assert store.get("reg.example.com:5000") is None
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600
    assert "pw1" not in auth.read_text()


def test_login_verifies_credentials_first(tmp_path: Path) -> None:
    good = "Basic " + _b64("alice:right")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") == good:
            return httpx.Response(200, json={})
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})

    auth = tmp_path / "auth.json"
    transport = httpx.MockTransport(handler)
    with pytest.raises(UnauthorizedError) as info:
        login("reg.example.com", "alice", "wrong", auth_path=auth, transport=transport,
              config=RegistryConfig())  # fmt: skip
    assert "user 'alice'" in info.value.message and "wrong" not in info.value.message
    assert not auth.exists()
    login("reg.example.com", "alice", "right", auth_path=auth, transport=transport,
          config=RegistryConfig())  # fmt: skip
    assert auth.exists()


def test_missing_credential_helper_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from layerkit.registry import CredentialHelperError

    monkeypatch.setenv("PATH", str(tmp_path))  # no docker-credential-* anywhere
    docker = tmp_path / "docker.json"
    docker.write_text(json.dumps({"credHelpers": {"a.io": "nosuch"}}))
    store = CredentialStore(auth_path=tmp_path / "none.json", docker_config=docker)
    with pytest.raises(CredentialHelperError) as info:
        store.get("a.io")
    assert "docker-credential-nosuch" in info.value.message and info.value.hint
