"""Basic and Bearer authentication against a REAL registry: htpasswd, and our token
server (tests/support/registry_auth.py) in front of a registry with ``auth: token``."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Shared helpers of the sibling module (tests/integration is on sys.path, as pytest puts it).
from test_registry_distribution import first_image

from layerkit.content import ContentStore
from layerkit.registry import (
    Credentials,
    CredentialStore,
    RegistryClient,
    RegistryConfig,
    StaticCredentials,
    UnauthorizedError,
    login,
    logout,
    pull_image,
    push_image,
)
from support.images import OciImage
from support.registry import HtpasswdAuth, RunningRegistry, start_registry
from support.registry_auth import TokenAuth


def client_as(registry: RunningRegistry, user: str | None, password: str = "") -> RegistryClient:
    creds = {registry.address: Credentials(user, password, source="the test")} if user else {}
    return RegistryClient(config=RegistryConfig(), credentials=StaticCredentials(creds))


@pytest.fixture
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, tool: Callable[[str], Path]
) -> Iterator[tuple[RunningRegistry, TokenAuth]]:
    tool("openssl")
    auth = TokenAuth(users={"tester": "s3cret-pass"})
    running = start_registry(tmp_path_factory.mktemp("token-registry"), auth=auth)
    try:
        yield running, auth
    finally:
        running.stop()
        auth.stop()


def test_basic_auth_good_and_bad_credentials(
    basic_auth_registry: RunningRegistry, busybox_image: OciImage, tmp_path: Path
) -> None:
    auth = basic_auth_registry.auth
    assert isinstance(auth, HtpasswdAuth)
    manifest, config, blobs = first_image(busybox_image)
    ref = basic_auth_registry.ref("private", "v1")
    with client_as(basic_auth_registry, auth.username, auth.password) as good:
        result = push_image(ref, manifest, config, blobs, client=good)
        pulled = pull_image(ref, ContentStore(tmp_path / "s"), client=good)
    assert pulled.digest == result.digest
    with client_as(basic_auth_registry, auth.username, "wrong-password") as bad, pytest.raises(
        UnauthorizedError
    ) as info:
        pull_image(ref, ContentStore(tmp_path / "s2"), client=bad)
    rendered = info.value.render()
    assert "401" in rendered and f"user '{auth.username}' from the test" in rendered
    assert "wrong-password" not in rendered and ref in rendered
    assert f"layerkit login {basic_auth_registry.address}" in rendered
    anon = client_as(basic_auth_registry, None)
    with anon, pytest.raises(UnauthorizedError) as anon_info:
        pull_image(ref, ContentStore(tmp_path / "s3"), client=anon)
    assert "anonymous" in anon_info.value.message
    assert not list((tmp_path / "s2" / "blobs" / "sha256").iterdir())


def test_bearer_token_flow_push_and_pull(
    token_registry: tuple[RunningRegistry, TokenAuth], busybox_image: OciImage, tmp_path: Path,
    tool: Callable[[str], Path],
) -> None:  # fmt: skip
    registry, tokens = token_registry
    manifest, config, blobs = first_image(busybox_image)
    ref = registry.ref("secure/app", "v1")
    with client_as(registry, "tester", "s3cret-pass") as client:
        result = push_image(ref, manifest, config, blobs, client=client)
        pulled = pull_image(ref, ContentStore(tmp_path / "s"), client=client)
        fetched_tokens = client.auth.token_requests
    assert pulled.digest == result.digest
    granted = [r for r in tokens.requests if r.granted and r.account == "tester"]
    assert granted and all(r.scopes for r in granted)
    assert any("repository:secure/app:pull,push" in r.scopes for r in granted)
    # Tokens are cached per scope: far fewer token fetches than registry requests.
    assert fetched_tokens <= 4
    # skopeo (with the same credentials through the same token server) reads it back.
    import subprocess

    raw = subprocess.run(
        [str(tool("skopeo")), "inspect", "--tls-verify=false", "--raw",
         "--creds", "tester:s3cret-pass", f"docker://{ref}"],
        check=True, capture_output=True, stdin=subprocess.DEVNULL,
    ).stdout  # fmt: skip
    assert raw == manifest


def test_bearer_refusals_are_clear(
    token_registry: tuple[RunningRegistry, TokenAuth], busybox_image: OciImage, tmp_path: Path
) -> None:
    registry, _ = token_registry
    manifest, config, blobs = first_image(busybox_image)
    ref = registry.ref("secure/app", "v1")
    with client_as(registry, "tester", "s3cret-pass") as client:
        push_image(ref, manifest, config, blobs, client=client)
    with client_as(registry, "tester", "nope") as bad, pytest.raises(UnauthorizedError) as info:
        pull_image(ref, ContentStore(tmp_path / "a"), client=bad)
    assert "token server" in info.value.message and "user 'tester'" in info.value.message
    assert "nope" not in info.value.render()
    with client_as(registry, None) as anon, pytest.raises(UnauthorizedError) as anon_info:
        pull_image(ref, ContentStore(tmp_path / "b"), client=anon)
    assert "anonymous" in anon_info.value.message and ref in anon_info.value.message


def test_login_then_logout_against_token_registry(
    token_registry: tuple[RunningRegistry, TokenAuth], busybox_image: OciImage, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    registry, _ = token_registry
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    with pytest.raises(UnauthorizedError):
        login(registry.address, "tester", "bad-guess", config=RegistryConfig())
    auth_file = tmp_path / "xdg" / "layerkit" / "auth.json"
    assert not auth_file.exists()
    assert login(registry.address, "tester", "s3cret-pass", config=RegistryConfig()) == auth_file
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    assert registry.address in json.loads(auth_file.read_text())["auths"]
    # The default credential store now finds the login.
    manifest, config, blobs = first_image(busybox_image)
    with RegistryClient(config=RegistryConfig(), credentials=CredentialStore()) as client:
        push_image(registry.ref("after-login", "v1"), manifest, config, blobs, client=client)
    assert logout(registry.address) is True
    with RegistryClient(config=RegistryConfig(), credentials=CredentialStore()) as client, \
            pytest.raises(UnauthorizedError):  # fmt: skip
        pull_image(registry.ref("after-login", "v1"), ContentStore(tmp_path / "s"), client=client)
