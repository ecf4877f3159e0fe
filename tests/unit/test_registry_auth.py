"""The auth generator flow driven by hand: challenges, scopes, token caching."""

from __future__ import annotations

import base64

import httpx
import pytest

from layerkit.registry import Credentials, RegistryAuth, StaticCredentials, UnauthorizedError
from layerkit.registry.auth import parse_challenges, parse_scope, request_scopes


def test_parse_challenges() -> None:
    got = parse_challenges([
        'Bearer realm="https://auth.io/token",service="reg.io",'
        'scope="repository:a/b:pull,push"',
        'Basic realm="x \\"quoted\\""',
    ])  # fmt: skip
    assert got[0].scheme == "bearer"
    assert got[0].params == {
        "realm": "https://auth.io/token", "service": "reg.io", "scope": "repository:a/b:pull,push"
    }
    assert got[1].scheme == "basic" and got[1].params["realm"] == 'x "quoted"'


def test_request_scopes() -> None:
    get = httpx.Request("GET", "https://r.io/v2/ns/app/manifests/latest")
    assert request_scopes(get) == {"ns/app": frozenset({"pull"})}
    mount = httpx.Request(
        "POST", "https://r.io/v2/app/blobs/uploads/?mount=sha256:aa&from=other/repo"
    )
    assert request_scopes(mount) == {
        "app": frozenset({"pull", "push"}), "other/repo": frozenset({"pull"})
    }
    assert request_scopes(httpx.Request("GET", "https://r.io/v2/")) == {}
    assert parse_scope("repository:a:pull repository:a:push registry:catalog:*") == {
        "a": frozenset({"pull", "push"})
    }


def _drive(auth: RegistryAuth, request: httpx.Request, server: object) -> list[httpx.Request]:
    """Run the flow against ``server(request) -> Response``; return what was sent."""
    sent: list[httpx.Request] = []
    flow = auth.flow(request)
    current = next(flow)
    while True:
        sent.append(current)
        response = server(current)  # type: ignore[operator]
        response.read()
        try:
            current = flow.send(response)
        except StopIteration:
            return sent


CHALLENGE = 'Bearer realm="https://auth.example/token",service="reg.example"'


def _bearer_server(token_calls: list[httpx.Request]) -> object:
    def server(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            token_calls.append(request)
            return httpx.Response(200, json={"token": "T1", "expires_in": 300})
        if request.headers.get("authorization") == "Bearer T1":
            return httpx.Response(200)
        return httpx.Response(401, headers={"WWW-Authenticate": CHALLENGE})

    return server


def test_bearer_flow_fetches_once_and_reuses_covering_tokens() -> None:
    creds = StaticCredentials({"reg.example": Credentials("alice", "pw", source="test")})
    auth = RegistryAuth(creds)
    calls: list[httpx.Request] = []
    server = _bearer_server(calls)
    push = httpx.Request("PUT", "https://reg.example/v2/app/manifests/v1")
    sent = _drive(auth, push, server)
    assert [r.url.host for r in sent] == ["reg.example", "auth.example", "reg.example"]
    token_request = calls[0]
    assert token_request.url.params.get_list("scope") == ["repository:app:pull,push"]
    assert token_request.url.params["service"] == "reg.example"
    expected = "Basic " + base64.b64encode(b"alice:pw").decode()
    assert token_request.headers["authorization"] == expected
    # A pull of the same repository is covered by the pull,push token: no new fetch,
    # and the challenge is now known, so the first request already carries the token.
    sent = _drive(auth, httpx.Request("GET", "https://reg.example/v2/app/blobs/sha256:aa"), server)
    assert len(sent) == 1 and sent[0].headers["authorization"] == "Bearer T1"
    assert len(calls) == 1
    # Another repository needs its own scope: fetched up front, one round trip saved.
    sent = _drive(auth, httpx.Request("GET", "https://reg.example/v2/other/tags/list"), server)
    assert [r.url.host for r in sent] == ["auth.example", "reg.example"]
    assert calls[-1].url.params.get_list("scope") == ["repository:other:pull"]


def test_token_expiry_refetches() -> None:
    now = [1000.0]
    auth = RegistryAuth(StaticCredentials(), clock=lambda: now[0])
    calls: list[httpx.Request] = []
    server = _bearer_server(calls)
    request = httpx.Request("GET", "https://reg.example/v2/app/manifests/v1")
    _drive(auth, request, server)
    _drive(auth, httpx.Request("GET", "https://reg.example/v2/app/manifests/v1"), server)
    assert len(calls) == 1
    now[0] += 400  # past expires_in
    _drive(auth, httpx.Request("GET", "https://reg.example/v2/app/manifests/v1"), server)
    assert len(calls) == 2
    assert "authorization" not in calls[0].headers  # anonymous token request


def test_refused_token_names_the_user_not_the_secret() -> None:
    creds = StaticCredentials({"reg.example": Credentials("alice", "hunter2", source="f.json")})

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            return httpx.Response(401, json={"details": "bad"})
        return httpx.Response(401, headers={"WWW-Authenticate": CHALLENGE})

    with pytest.raises(UnauthorizedError) as info:
        _drive(RegistryAuth(creds), httpx.Request("GET", "https://reg.example/v2/a/tags/list"),
               server)  # fmt: skip
    message = info.value.message
    assert "user 'alice' from f.json" in message and "hunter2" not in message
    assert "https://auth.example/token" in message


def test_basic_flow_and_refusal_stops() -> None:
    creds = StaticCredentials({"reg.example": Credentials("bob", "pw")})
    good = "Basic " + base64.b64encode(b"bob:pw").decode()
    seen: list[str | None] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        if request.headers.get("authorization") == good:
            return httpx.Response(200)
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})

    auth = RegistryAuth(creds)
    _drive(auth, httpx.Request("GET", "https://reg.example/v2/a/manifests/1"), server)
    assert seen == [None, good]
    _drive(auth, httpx.Request("GET", "https://reg.example/v2/a/manifests/1"), server)
    assert seen[-1] == good and len(seen) == 3  # preemptive Basic

    # Anonymous against a Basic registry: the 401 is the caller's answer, no loop.
    anon = RegistryAuth(StaticCredentials())
    sent = _drive(anon, httpx.Request("GET", "https://reg.example/v2/a/manifests/1"), server)
    assert len(sent) == 1
    assert "anonymous" in anon.describe("reg.example")


def test_identity_token_uses_refresh_grant() -> None:
    creds = StaticCredentials(
        {"reg.example": Credentials("<token>", "", source="helper", identity_token="RT")}
    )
    calls: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            calls.append(request)
            return httpx.Response(200, json={"access_token": "T1"})
        if request.headers.get("authorization") == "Bearer T1":
            return httpx.Response(200)
        return httpx.Response(401, headers={"WWW-Authenticate": CHALLENGE})

    _drive(RegistryAuth(creds), httpx.Request("GET", "https://reg.example/v2/a/tags/list"), server)
    assert calls[0].method == "POST"
    body = calls[0].read().decode()
    assert "grant_type=refresh_token" in body and "refresh_token=RT" in body
