"""RegistryClient, pull and push over httpx.MockTransport: an in-memory registry that
follows the distribution API closely enough to check every request we make."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from layerkit.content import ContentStore
from layerkit.content import mediatypes as mt
from layerkit.registry import (
    BlobIntegrityError,
    ImageToPush,
    ManifestError,
    NotFoundError,
    PlatformNotFoundError,
    RegistryClient,
    RegistryConfig,
    RegistryConnectionError,
    RegistryServerError,
    RetryPolicy,
    StaticCredentials,
    UnauthorizedError,
    parse_reference,
    pull_image,
    push_image,
    push_index,
    resolve_digest,
)
from layerkit.registry.config import HostConfig


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


Injector = Callable[[httpx.Request], "httpx.Response | None"]


class FakeRegistry:
    """Blobs per repository, manifests by tag and digest, upload sessions, mounts."""

    def __init__(self, host: str = "reg.example") -> None:
        self.host = host
        self.blobs: dict[str, dict[str, bytes]] = {}
        self.manifests: dict[str, dict[str, tuple[bytes, str]]] = {}
        self.uploads: dict[str, bytearray] = {}
        self.log: list[tuple[str, str]] = []
        self.inject: Injector | None = None
        self.send_digest_header = True

    def repo_blobs(self, repo: str) -> dict[str, bytes]:
        return self.blobs.setdefault(repo, {})

    def put_manifest(self, repo: str, tag: str, data: bytes, media_type: str) -> str:
        d = sha(data)
        self.manifests.setdefault(repo, {})[tag] = (data, media_type)
        self.manifests[repo][d] = (data, media_type)
        return d

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.log.append((request.method, path + ("?" + request.url.query.decode()
                                                 if request.url.query else "")))  # fmt: skip
        if self.inject is not None and (injected := self.inject(request)) is not None:
            return injected
        if path == "/v2/":
            return httpx.Response(200, json={})
        m = re.match(r"^/v2/(.+)/(manifests|blobs)/(.+)$", path)
        if not m:
            return httpx.Response(404)
        repo, kind, rest = m.groups()
        if kind == "manifests":
            return self._manifest(request, repo, rest)
        if rest.startswith("uploads"):
            return self._upload(request, repo, rest)
        blob = self.repo_blobs(repo).get(rest)
        if blob is None:
            return httpx.Response(404, json={"errors": [{"code": "BLOB_UNKNOWN",
                                                         "message": "blob unknown"}]})  # fmt: skip
        headers = {"Docker-Content-Digest": rest, "Content-Length": str(len(blob))}
        return httpx.Response(200, headers=headers,
                              content=b"" if request.method == "HEAD" else blob)  # fmt: skip

    def _manifest(self, request: httpx.Request, repo: str, ref: str) -> httpx.Response:
        if request.method == "PUT":
            data = request.read()
            doc = json.loads(data)
            for desc in [doc["config"], *doc["layers"]] if "config" in doc else doc["manifests"]:
                known = self.repo_blobs(repo) if "config" in doc else self.manifests.get(repo, {})
                if desc["digest"] not in known:
                    return httpx.Response(400, json={"errors": [{"code": "MANIFEST_BLOB_UNKNOWN",
                                                                 "message": desc["digest"]}]})
            d = self.put_manifest(repo, ref, data, request.headers["content-type"])
            return httpx.Response(201, headers={"Docker-Content-Digest": d})
        found = self.manifests.get(repo, {}).get(ref)
        if found is None:
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN",
                                                         "message": "manifest unknown"}]})
        data, media_type = found
        headers = {"Content-Type": media_type, "Content-Length": str(len(data))}
        if self.send_digest_header:
            headers["Docker-Content-Digest"] = sha(data)
        return httpx.Response(200, headers=headers,
                              content=b"" if request.method == "HEAD" else data)  # fmt: skip

    def _upload(self, request: httpx.Request, repo: str, rest: str) -> httpx.Response:
        if request.method == "POST":
            mount, source = request.url.params.get("mount"), request.url.params.get("from")
            if mount and source and mount in self.blobs.get(source, {}):
                self.repo_blobs(repo)[mount] = self.blobs[source][mount]
                return httpx.Response(201, headers={"Location": f"/v2/{repo}/blobs/{mount}"})
            session = uuid.uuid4().hex
            self.uploads[session] = bytearray()
            return httpx.Response(202, headers={"Location": f"/v2/{repo}/blobs/uploads/{session}"})
        session = rest.split("/", 1)[1]
        buf = self.uploads[session]
        body = request.read()
        if request.method == "PATCH":
            start, end = map(int, request.headers["content-range"].split("-"))
            if start != len(buf) or end - start + 1 != len(body):
                return httpx.Response(416)
            buf.extend(body)
            return httpx.Response(202, headers={"Location": f"/v2/{repo}/blobs/uploads/{session}",
                                                "Range": f"0-{len(buf) - 1}"})  # fmt: skip
        buf.extend(body)
        digest = request.url.params["digest"]
        if sha(bytes(buf)) != digest:
            return httpx.Response(400, json={"errors": [{"code": "DIGEST_INVALID"}]})
        self.repo_blobs(repo)[digest] = bytes(buf)
        del self.uploads[session]
        return httpx.Response(201, headers={"Location": f"/v2/{repo}/blobs/{digest}"})

    def count(self, method: str, fragment: str = "") -> int:
        return sum(1 for m, p in self.log if m == method and fragment in p)


def make_image(fake: FakeRegistry | None, repo: str, tag: str, *, arch: str = "amd64",
               layers: tuple[bytes, ...] = (b"layer-one", b"layer-two")
               ) -> tuple[bytes, bytes, dict[str, bytes]]:  # fmt: skip
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha(b"diff" + x) for x in layers]},
    }).encode()  # fmt: skip
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": sha(x), "size": len(x)}
                   for x in layers],
    }).encode()  # fmt: skip
    blobs = {sha(config): config, **{sha(x): x for x in layers}}
    if fake is not None:
        fake.repo_blobs(repo).update(blobs)
        fake.put_manifest(repo, tag, manifest, mt.OCI_MANIFEST)
    return manifest, config, blobs


def client_for(*fakes: FakeRegistry, sleeps: list[float] | None = None,
               **kwargs: object) -> RegistryClient:  # fmt: skip
    by_host = {f.host: f for f in fakes}

    def route(request: httpx.Request) -> httpx.Response:
        return by_host[request.url.host].handler(request)

    recorded = sleeps if sleeps is not None else []
    options: dict[str, object] = {
        "config": RegistryConfig(), "credentials": StaticCredentials(),
        "retry": RetryPolicy(attempts=4, base_delay=0.01), "sleep": recorded.append, "seed": 1,
    }  # fmt: skip
    options.update(kwargs)
    return RegistryClient(transport=httpx.MockTransport(route), **options)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "store")


# -- pull -------------------------------------------------------------------------


def test_pull_single_manifest(store: ContentStore) -> None:
    fake = FakeRegistry()
    manifest, config, blobs = make_image(fake, "team/app", "v1")
    with client_for(fake) as client:
        pulled = pull_image("reg.example/team/app:v1", store, client=client)
    assert pulled.digest == sha(manifest)
    assert pulled.config == config and pulled.config_digest == sha(config)
    assert [d.digest for d in pulled.layers] == [sha(b"layer-one"), sha(b"layer-two")]
    assert pulled.diff_ids == (sha(b"difflayer-one"), sha(b"difflayer-two"))
    for digest, data in blobs.items():
        assert store.read_bytes(digest) == data
    assert store.read_bytes(sha(manifest)) == manifest
    accept = fake.log[0]
    assert accept == ("GET", "/v2/team/app/manifests/v1")


def test_pull_selects_platform_from_index(store: ContentStore) -> None:
    fake = FakeRegistry()
    amd = make_image(fake, "app", "amd", arch="amd64", layers=(b"amd-layer",))
    arm = make_image(fake, "app", "arm", arch="arm64", layers=(b"arm-layer",))
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": sha(amd[0]), "size": len(amd[0]),
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": mt.OCI_MANIFEST, "digest": sha(arm[0]), "size": len(arm[0]),
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": mt.OCI_MANIFEST, "digest": sha(b"att"), "size": 3,
         "platform": {"os": "unknown", "architecture": "unknown"}},
    ]}).encode()  # fmt: skip
    fake.put_manifest("app", "multi", index, mt.OCI_INDEX)
    with client_for(fake) as client:
        pulled = pull_image("reg.example/app:multi", store, platform="linux/arm64", client=client)
        assert pulled.digest == sha(arm[0]) and pulled.index_digest == sha(index)
        assert store.has(sha(b"arm-layer")) and not store.has(sha(b"amd-layer"))
        assert resolve_digest("reg.example/app:multi", client=client) == sha(index)
        with pytest.raises(PlatformNotFoundError) as info:
            pull_image("reg.example/app:multi", store, platform="linux/s390x", client=client)
    assert info.value.available == ("linux/amd64", "linux/arm64")
    assert "linux/s390x" in info.value.message and "linux/amd64, linux/arm64" in info.value.message


def test_resolve_digest_uses_head_and_falls_back_to_hashing() -> None:
    fake = FakeRegistry()
    manifest, _, _ = make_image(fake, "app", "v1")
    with client_for(fake) as client:
        assert resolve_digest("reg.example/app:v1", client=client) == sha(manifest)
        assert fake.count("HEAD", "/manifests/") == 1 and fake.count("GET") == 0
        fake.send_digest_header = False
        assert resolve_digest("reg.example/app:v1", client=client) == sha(manifest)
        assert fake.count("GET", "/manifests/v1") == 1
        pinned = f"reg.example/app@{sha(b'x')}"
        assert resolve_digest(pinned, client=client) == sha(b"x")


def test_corrupt_blob_is_never_kept(store: ContentStore) -> None:
    fake = FakeRegistry()
    make_image(fake, "app", "v1")
    bad = sha(b"layer-two")
    fake.repo_blobs("app")[bad] = b"layer-twX"  # same size, wrong bytes
    sleeps: list[float] = []
    with client_for(fake, sleeps=sleeps) as client, pytest.raises(BlobIntegrityError) as info:
        pull_image("reg.example/app:v1", store, client=client)
    assert bad in info.value.message and "nothing was stored" in info.value.message
    assert not store.has(bad)
    assert fake.count("GET", bad) == 4  # retried, bounded
    assert not list((store.root / "blobs" / "tmp").iterdir())


def test_truncated_then_good_blob_succeeds(store: ContentStore) -> None:
    fake = FakeRegistry()
    make_image(fake, "app", "v1")
    target = sha(b"layer-one")
    state = {"n": 0}

    def inject(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and request.url.path.endswith(target) and state["n"] < 2:
            state["n"] += 1
            return httpx.Response(200, content=b"layer")  # short body
        return None

    fake.inject = inject
    with client_for(fake) as client:
        pulled = pull_image("reg.example/app:v1", store, client=client)
    assert store.verify(target) and len(pulled.layers) == 2
    assert fake.count("GET", target) == 3


def test_corrupt_manifest_is_an_error() -> None:
    fake = FakeRegistry()
    manifest, _, _ = make_image(fake, "app", "v1")
    altered = manifest.replace(b"layer", b"LAYER")
    fake.manifests["app"][sha(manifest)] = (altered, mt.OCI_MANIFEST)
    fake.send_digest_header = False
    with client_for(fake) as client, pytest.raises(ManifestError, match="hash"):
        client.get_manifest(parse_reference(f"reg.example/app@{sha(manifest)}"))


def test_retries_honour_retry_after_then_succeed(store: ContentStore) -> None:
    fake = FakeRegistry()
    make_image(fake, "app", "v1")
    answers = iter([httpx.Response(503, headers={"Retry-After": "3"}),
                    httpx.Response(429, headers={"Retry-After": "1"})])  # fmt: skip
    fake.inject = lambda request: next(answers, None)
    sleeps: list[float] = []
    with client_for(fake, sleeps=sleeps) as client:
        pulled = pull_image("reg.example/app:v1", store, client=client)
        assert client.stats.retries == 2
    assert pulled.digest
    assert sleeps[0] >= 3 and sleeps[1] >= 1


def test_persistent_5xx_and_dropped_connections_give_clear_errors() -> None:
    fake = FakeRegistry()
    make_image(fake, "app", "v1")
    fake.inject = lambda request: httpx.Response(500)
    sleeps: list[float] = []
    ref = parse_reference("reg.example/app:v1")
    with client_for(fake, sleeps=sleeps) as client, pytest.raises(RegistryServerError) as info:
        client.get_manifest(ref)
    assert "reg.example/app:v1" in info.value.message and "500" in info.value.message
    assert info.value.status == 500 and len(sleeps) == 3
    assert all(0 <= s <= 8.0 for s in sleeps)

    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fake.inject = drop
    with client_for(fake) as client, pytest.raises(RegistryConnectionError) as conn:
        client.get_manifest(ref)
    assert "after 4 attempts" in conn.value.message and "reg.example" in conn.value.message


def test_404_and_401_name_reference_and_credentials() -> None:
    from layerkit.registry import Credentials

    fake = FakeRegistry()
    with client_for(fake) as client, pytest.raises(NotFoundError) as info:
        client.get_manifest(parse_reference("reg.example/nope:v9"))
    assert "reg.example/nope:v9" in info.value.message and "MANIFEST_UNKNOWN" in info.value.message
    fake.inject = lambda r: httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="x"'})
    creds = StaticCredentials({"reg.example": Credentials("carol", "sekrit", source="cfg")})
    with client_for(fake, credentials=creds) as client, pytest.raises(UnauthorizedError) as auth:
        client.get_manifest(parse_reference("reg.example/app:v1"))
    assert "user 'carol' from cfg" in auth.value.message and "sekrit" not in auth.value.render()
    assert "layerkit login reg.example" in (auth.value.hint or "")


def test_mirrors_are_tried_in_order_then_origin(store: ContentStore) -> None:
    origin, broken, good = FakeRegistry("reg.example"), FakeRegistry("m1.example"), FakeRegistry(
        "m2.example"
    )
    make_image(origin, "app", "v1", layers=(b"from-origin",))
    manifest, _, _ = make_image(good, "app", "v1", layers=(b"from-mirror",))
    broken.inject = lambda r: httpx.Response(500)
    config = RegistryConfig({"reg.example": HostConfig(
        mirrors=("https://m1.example", "https://m2.example"))})  # fmt: skip
    with client_for(origin, broken, good, config=config) as client:
        pulled = pull_image("reg.example/app:v1", store, client=client)
    assert pulled.digest == sha(manifest)
    assert broken.count("GET") >= 1 and origin.log == []
    good.inject = lambda r: httpx.Response(404)
    with client_for(origin, broken, good, config=config) as client:
        pulled = pull_image("reg.example/app:v1", store, client=client)
    assert store.has(sha(b"from-origin")) and origin.count("GET") >= 1


def test_loopback_probes_https_then_uses_http() -> None:
    fake = FakeRegistry("127.0.0.1")
    make_image(fake, "app", "v1")
    schemes: list[str] = []

    def route(request: httpx.Request) -> httpx.Response:
        schemes.append(request.url.scheme)
        if request.url.scheme == "https":
            raise httpx.ConnectError("tls handshake failed", request=request)
        return fake.handler(request)

    client = RegistryClient(config=RegistryConfig(), credentials=StaticCredentials(),
                            transport=httpx.MockTransport(route))  # fmt: skip
    with client:
        client.get_manifest(parse_reference("127.0.0.1:5000/app:v1"))
        client.get_manifest(parse_reference("127.0.0.1:5000/app:v1"))
        assert client.origin(parse_reference("ghcr.io/x")).base_url == "https://ghcr.io"
        hub = client.origin(parse_reference("python"))
        assert hub.base_url == "https://registry-1.docker.io"
    assert schemes == ["https", "http", "http"]


# -- push -------------------------------------------------------------------------


def _store_blobs(store: ContentStore, blobs: dict[str, bytes]) -> None:
    for data in blobs.values():
        store.write_bytes(data)


def test_push_uploads_then_puts_manifest_last_and_dedupes(store: ContentStore) -> None:
    fake = FakeRegistry()
    manifest, config, blobs = make_image(None, "app", "v1")
    _store_blobs(store, blobs)
    with client_for(fake) as client:
        result = push_image("reg.example/app:v1", manifest, config, store, client=client)
        assert result.digest == sha(manifest)
        assert sorted(result.uploaded) == sorted(blobs)
        assert fake.log[-1] == ("PUT", "/v2/app/manifests/v1")
        assert fake.manifests["app"]["v1"][0] == manifest
        for digest, data in blobs.items():
            assert fake.blobs["app"][digest] == data
        fake.log.clear()
        again = push_image("reg.example/app:v1", manifest, config, store, client=client)
    assert sorted(again.existing) == sorted(blobs) and not again.uploaded
    assert fake.count("POST") == 0 and fake.count("PATCH") == 0
    assert fake.count("PUT", "/blobs/") == 0


def test_chunked_upload_over_threshold(store: ContentStore) -> None:
    fake = FakeRegistry()
    big = bytes(range(256)) * 40  # 10240 bytes
    manifest, config, blobs = make_image(None, "app", "v1", layers=(big,))
    _store_blobs(store, blobs)
    with client_for(fake, chunk_threshold=1000, chunk_size=4096) as client:
        push_image("reg.example/app:v1", manifest, config, store, client=client)
    assert fake.blobs["app"][sha(big)] == big
    patches = [p for m, p in fake.log if m == "PATCH"]
    assert len(patches) == 3  # 4096 + 4096 + 2048


def test_cross_repository_mount(store: ContentStore) -> None:
    fake = FakeRegistry()
    manifest, config, blobs = make_image(fake, "base", "v1")
    _store_blobs(store, blobs)
    with client_for(fake) as client:
        result = push_image("reg.example/derived:v1", manifest, config, store, client=client,
                            mount_from={d: ["base"] for d in blobs})  # fmt: skip
    assert sorted(result.mounted) == sorted(blobs) and not result.uploaded
    mounts = [p for m, p in fake.log if m == "POST"]
    assert all("mount=sha256" in p and "from=base" in p for p in mounts)
    assert fake.count("PUT", "/blobs/") == 0


def test_failed_blob_upload_never_puts_manifest(store: ContentStore) -> None:
    fake = FakeRegistry()
    manifest, config, blobs = make_image(None, "app", "v1")
    _store_blobs(store, blobs)
    fake.inject = lambda r: httpx.Response(503) if r.method == "PUT" else None
    with client_for(fake) as client, pytest.raises(RegistryServerError):
        push_image("reg.example/app:v1", manifest, config, store, client=client)
    assert fake.count("PUT", "/manifests/") == 0


def test_push_index_after_its_manifests(store: ContentStore) -> None:
    fake = FakeRegistry()
    amd = make_image(None, "app", "", arch="amd64", layers=(b"a1",))
    arm = make_image(None, "app", "", arch="arm64", layers=(b"b1",))
    for image in (amd, arm):
        _store_blobs(store, image[2])
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": sha(m), "size": len(m),
         "platform": {"os": "linux", "architecture": a}}
        for m, a in ((amd[0], "amd64"), (arm[0], "arm64"))]}).encode()  # fmt: skip
    images = [ImageToPush(amd[0], amd[1]), ImageToPush(arm[0], arm[1])]
    with client_for(fake) as client:
        result = push_index("reg.example/app:multi", index, images, store, client=client)
    assert result.digest == sha(index)
    manifest_puts = [p for m, p in fake.log if m == "PUT" and "/manifests/" in p]
    assert manifest_puts == [f"/v2/app/manifests/{sha(amd[0])}",
                             f"/v2/app/manifests/{sha(arm[0])}", "/v2/app/manifests/multi"]
    with pytest.raises(ManifestError, match="not given"):
        push_index("reg.example/app:multi", index, images[:1], store, client=client_for(fake))


def test_config_must_match_manifest(store: ContentStore) -> None:
    manifest, _, blobs = make_image(None, "app", "v1")
    _store_blobs(store, blobs)
    with client_for(FakeRegistry()) as client, pytest.raises(ManifestError, match="config"):
        push_image("reg.example/app:v1", manifest, b"{}", store, client=client)
