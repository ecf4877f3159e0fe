"""Turns a registry request into an authenticated one, as a generator flow.

:meth:`RegistryAuth.flow` yields the requests to send and receives their
responses (the shape of httpx's ``Auth.auth_flow``), so the client drives it
through its retrying send layer and unit tests drive it by hand::

    request ──► 401 + WWW-Authenticate: Bearer realm=…,service=…,scope=…
            ──► GET realm?service=…&scope=… (Basic credentials if any) ──► token
            ──► request + Authorization: Bearer <token>

Anonymous, Basic and Bearer registries all go through it. Once a host's
challenge is known, later requests authenticate up front; tokens are cached
per (host, scopes) until shortly before they expire.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable, Generator, Mapping
from typing import Protocol

import httpx

from layerkit.fastclass import dataclass, field
from layerkit.registry.credentials import Credentials
from layerkit.registry.errors import RegistryResponseError, UnauthorizedError
from layerkit.registry.reference import normalize_registry

AuthFlow = Generator[httpx.Request, httpx.Response, None]
Scopes = Mapping[str, frozenset[str]]  # repository -> actions

_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
_API_PATH_RE = re.compile(r"/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)(?:/|$)")
_TOKEN_MARGIN = 10.0  # seconds: refresh a token this long before it expires
_MIN_TOKEN_LIFETIME = 60.0


class CredentialProvider(Protocol):
    def get(self, registry: str) -> Credentials | None: ...

    def searched(self) -> list[str]: ...


@dataclass
class StaticCredentials:
    """Credentials given directly (API callers, tests): host -> credentials."""

    by_host: Mapping[str, Credentials] = field(default_factory=dict)

    def get(self, registry: str) -> Credentials | None:
        for host, creds in self.by_host.items():
            if normalize_registry(host) == normalize_registry(registry):
                return creds
        return None

    def searched(self) -> list[str]:
        return ["credentials passed to the client"]


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-case: "bearer" or "basic"
    params: Mapping[str, str]


def parse_challenges(headers: list[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` values (``Bearer realm="…",service="…"``)."""
    out: list[Challenge] = []
    for header in headers:
        scheme, _, rest = header.strip().partition(" ")
        params: dict[str, str] = {}
        pos = 0
        while pos < len(rest):
            m = _PARAM_RE.match(rest, pos)
            if m is None or m.end() == pos:
                break
            quoted, bare = m.group(2), m.group(3)
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else (bare or "")
            params[m.group(1).lower()] = value
            pos = m.end()
        if scheme:
            out.append(Challenge(scheme.lower(), params))
    return out


def host_of(url: httpx.URL) -> str:
    """``host[:port]`` as it appears in image references."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{url.port}" if url.port else host


def request_scopes(request: httpx.Request) -> dict[str, frozenset[str]]:
    """The repository scopes a distribution API request needs."""
    m = _API_PATH_RE.search(request.url.path)
    if m is None:
        return {}
    actions = {"pull"} if request.method in ("GET", "HEAD") else {"pull", "push"}
    if request.method == "DELETE":
        actions.add("delete")
    scopes: dict[str, frozenset[str]] = {m.group("name"): frozenset(actions)}
    source = request.url.params.get("from")
    if source and source != m.group("name"):
        scopes[source] = frozenset({"pull"})
    return scopes


def parse_scope(text: str) -> dict[str, frozenset[str]]:
    """``repository:a/b:pull,push repository:c:pull`` -> {"a/b": {...}, "c": {...}}."""
    out: dict[str, frozenset[str]] = {}
    for item in text.split():
        kind, _, rest = item.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind == "repository" and name:
            out[name] = out.get(name, frozenset()) | frozenset(a for a in actions.split(",") if a)
    return out


def _merge(a: Scopes, b: Scopes) -> dict[str, frozenset[str]]:
    out = dict(a)
    for name, actions in b.items():
        out[name] = out.get(name, frozenset()) | actions
    return out


def _scope_strings(scopes: Scopes) -> list[str]:
    return [f"repository:{n}:{','.join(sorted(a))}" for n, a in sorted(scopes.items())]


@dataclass
class _Token:
    value: str
    scopes: Scopes
    expires_at: float

    def covers(self, scopes: Scopes, now: float) -> bool:
        if now >= self.expires_at:
            return False
        return all(actions <= self.scopes.get(n, frozenset()) for n, actions in scopes.items())


class RegistryAuth:
    """Per-client authentication state: known challenges, credentials, cached tokens."""

    def __init__(
        self,
        credentials: CredentialProvider | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = credentials
        self._clock = clock
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge] = {}
        self._creds: dict[str, Credentials | None] = {}
        self._tokens: dict[str, list[_Token]] = {}
        self.token_requests = 0  # counted for tests and --debug output

    # -- credentials -------------------------------------------------------------

    def credentials_for(self, host: str) -> Credentials | None:
        with self._lock:
            if host in self._creds:
                return self._creds[host]
        creds = self._provider.get(host) if self._provider is not None else None
        with self._lock:
            self._creds[host] = creds
        return creds

    def describe(self, host: str) -> str:
        """Which credentials were tried for ``host`` (for 401 messages), never the secret."""
        creds = self.credentials_for(host)
        if creds is not None:
            return creds.describe()
        where = ", ".join(self._provider.searched()) if self._provider else "nowhere"
        return f"no credentials (anonymous; looked in {where})"

    # -- tokens ------------------------------------------------------------------

    def _cached_token(self, host: str, scopes: Scopes) -> str | None:
        now = self._clock()
        with self._lock:
            live = [t for t in self._tokens.get(host, []) if now < t.expires_at]
            self._tokens[host] = live
            for token in live:
                if token.covers(scopes, now):
                    return token.value
        return None

    def _token_request(self, host: str, challenge: Challenge, scopes: Scopes) -> httpx.Request:
        realm = challenge.params.get("realm", "")
        if not realm.startswith(("http://", "https://")):
            raise UnauthorizedError(
                f"{host} sent a Bearer challenge with an unusable realm {realm!r}",
                status=401,
                registry=host,
                hint="the registry's token auth is misconfigured; report it to its operators",
            )
        service = challenge.params.get("service")
        creds = self.credentials_for(host)
        if creds is not None and creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "client_id": "layerkit", "scope": " ".join(_scope_strings(scopes))}  # fmt: skip
            if service:
                form["service"] = service
            return httpx.Request("POST", realm, data=form)
        params: list[tuple[str, str | int | float | bool | None]] = []
        if service:
            params.append(("service", service))
        params.extend(("scope", s) for s in _scope_strings(scopes))
        if creds is not None:
            params.append(("account", creds.username))
        headers = {"Authorization": _basic(creds)} if creds is not None else {}
        return httpx.Request("GET", realm, params=params, headers=headers)

    def _fetch_token(
        self, host: str, challenge: Challenge, scopes: Scopes
    ) -> Generator[httpx.Request, httpx.Response, str]:
        request = self._token_request(host, challenge, scopes)
        with self._lock:
            self.token_requests += 1
        response = yield request
        realm = challenge.params.get("realm", "")
        if response.status_code in (401, 403):
            raise UnauthorizedError(
                f"token server {realm} refused {self.describe(host)} for "
                f"{' '.join(_scope_strings(scopes)) or 'registry access'} "
                f"(HTTP {response.status_code})",
                status=response.status_code,
                registry=host,
                hint=f"check the username and password: layerkit login {host}",
            )
        if response.status_code != 200:
            raise RegistryResponseError(
                f"token server {realm} answered HTTP {response.status_code}",
                status=response.status_code,
                registry=host,
                hint="the registry's token service is failing; try again later",
            )
        try:
            data = response.json()
            value = data.get("token") or data.get("access_token")
            lifetime = float(data.get("expires_in") or _MIN_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            value, lifetime = None, 0.0
        if not isinstance(value, str) or not value:
            raise RegistryResponseError(
                f"token server {realm} answered without a token",
                status=response.status_code,
                registry=host,
            )
        lifetime = max(lifetime, _MIN_TOKEN_LIFETIME)
        token = _Token(value, dict(scopes), self._clock() + lifetime - _TOKEN_MARGIN)
        with self._lock:
            self._tokens.setdefault(host, []).append(token)
        return value

    # -- the flow ----------------------------------------------------------------

    def flow(self, request: httpx.Request) -> AuthFlow:
        """Authenticate ``request``: yield it (and any token requests), get responses back.

        The last response the flow receives is the caller's answer; a 401 there
        means the credentials did not do.
        """
        host = host_of(request.url)
        scopes = request_scopes(request)
        with self._lock:
            known = self._challenges.get(host)
        sent_auth = False
        if known is not None:
            sent_auth = yield from self._authorize(request, host, known, scopes)
        response = yield request
        if response.status_code != 401:
            return
        challenges = parse_challenges(response.headers.get_list("www-authenticate"))
        chosen = next((c for c in challenges if c.scheme == "bearer"), None) or next(
            (c for c in challenges if c.scheme == "basic"), None
        )
        if chosen is None:
            return
        if sent_auth and known is not None and known.scheme == chosen.scheme == "basic":
            return  # the credentials we sent were refused; nothing else to try
        with self._lock:
            self._challenges[host] = chosen
        wanted = _merge(scopes, parse_scope(chosen.params.get("scope", "")))
        if chosen.scheme == "bearer":
            token = yield from self._fetch_token(host, chosen, wanted)
            request.headers["Authorization"] = f"Bearer {token}"
        else:
            creds = self.credentials_for(host)
            if creds is None or creds.identity_token:
                return
            request.headers["Authorization"] = _basic(creds)
        yield request

    def _authorize(
        self, request: httpx.Request, host: str, challenge: Challenge, scopes: Scopes
    ) -> Generator[httpx.Request, httpx.Response, bool]:
        """Add an Authorization header up front when the host's scheme is known."""
        if challenge.scheme == "basic":
            creds = self.credentials_for(host)
            if creds is None or creds.identity_token:
                return False
            request.headers["Authorization"] = _basic(creds)
            return True
        token = self._cached_token(host, scopes)
        if token is None:
            # Only this request's scopes: the remembered challenge's scope was for another.
            token = yield from self._fetch_token(host, challenge, scopes)
        request.headers["Authorization"] = f"Bearer {token}"
        return True


def _basic(creds: Credentials | None) -> str:
    assert creds is not None
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()
