"""A Docker Bearer token server for test registries (``auth: token``), on 127.0.0.1.

Input: the users it accepts. Output: a :class:`TokenAuth` that plugs into
``support.registry.start_registry(auth=...)``: ``configure`` makes a
self-signed RSA key and certificate with the ``openssl`` CLI (the registry's
``rootcertbundle``), starts the token endpoint and returns the registry's
``auth.token`` section.

Tokens are RS256 JWTs signed by ``openssl dgst``; the header's ``kid`` is the
libtrust key id of the certificate's public key (sha256 of the DER SubjectPublicKeyInfo,
first 240 bits, base32, in groups of four), which is how distribution finds the
verifying key. A known user gets every action it asks for; an anonymous caller
gets ``pull`` when ``anonymous_pull`` is set and nothing otherwise; a wrong
password is a 401. Every request is recorded for assertions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .tools import require_tool

SERVICE = "layerkit-test-registry"
ISSUER = "layerkit-test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(public_der: bytes) -> str:
    digest = hashlib.sha256(public_der).digest()[:30]
    encoded = base64.b32encode(digest).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


@dataclass(frozen=True)
class TokenRequest:
    account: str | None
    scopes: tuple[str, ...]
    granted: bool


@dataclass
class TokenAuth:
    users: dict[str, str] = field(default_factory=lambda: {"tester": "s3cret-pass"})
    anonymous_pull: bool = False
    token_lifetime: int = 300
    requests: list[TokenRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _key: Path | None = None
    _kid: str = ""

    # -- the support.registry.RegistryAuth shape ---------------------------------

    def configure(self, workdir: Path) -> dict[str, object]:
        openssl = str(require_tool("openssl", "needed for the token server's certificate"))
        key, cert = workdir / "token.key", workdir / "token.crt"
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-out", str(cert), "-days", "2", "-subj", "/CN=layerkit-test-token"],
            check=True, capture_output=True,
        )  # fmt: skip
        pub = subprocess.run(
            [openssl, "x509", "-in", str(cert), "-pubkey", "-noout"],
            check=True, capture_output=True,
        ).stdout  # fmt: skip
        der = subprocess.run(
            [openssl, "pkey", "-pubin", "-outform", "DER"], input=pub, check=True,
            capture_output=True,
        ).stdout  # fmt: skip
        self._key, self._kid = key, libtrust_key_id(der)
        self._start()
        return {
            "token": {
                "realm": f"{self.realm}",
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(cert),
            }
        }

    def authorization_header(self) -> str | None:
        return None

    # -- the token endpoint ------------------------------------------------------

    @property
    def realm(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def _start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner._serve(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _account(self, header: str | None) -> tuple[bool, str | None]:
        """(credentials acceptable, account name or None for anonymous)."""
        if not header:
            return True, None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False, None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False, None
        ok = user in self.users and secrets.compare_digest(self.users[user], password)
        return ok, user

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
        scopes = tuple(query.get("scope", []))
        ok, account = self._account(handler.headers.get("Authorization"))
        self.requests.append(TokenRequest(account, scopes, ok))
        if not ok or query.get("service", [SERVICE])[0] != SERVICE:
            body = b'{"details":"invalid username or password"}'
            handler.send_response(401)
        else:
            access: list[dict[str, object]] = []
            for scope in scopes:
                kind, _, rest = scope.partition(":")
                name, _, actions = rest.rpartition(":")
                wanted = [a for a in actions.split(",") if a]
                allowed = wanted if account else (["pull"] if self.anonymous_pull else [])
                granted = [a for a in wanted if a in allowed]
                if kind == "repository" and granted:
                    access.append({"type": "repository", "name": name, "actions": granted})
            token = self._sign(account or "", access)
            body = json.dumps(
                {"token": token, "access_token": token, "expires_in": self.token_lifetime}
            ).encode()
            handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _sign(self, subject: str, access: list[dict[str, object]]) -> str:
        assert self._key is not None
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": self._kid}
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE,
                  "exp": now + self.token_lifetime, "nbf": now - 10, "iat": now,
                  "jti": secrets.token_hex(8), "access": access}  # fmt: skip
        encoded = [_b64url(json.dumps(part).encode()) for part in (header, claims)]
        signing_input = ".".join(encoded)
        signature = subprocess.run(
            [str(require_tool("openssl")), "dgst", "-sha256", "-sign", str(self._key)],
            input=signing_input.encode(), check=True, capture_output=True,
        ).stdout  # fmt: skip
        return f"{signing_input}.{_b64url(signature)}"
