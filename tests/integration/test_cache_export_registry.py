"""The cache in a real registry: BuildKit's image-manifest layout (skopeo reads it), a
second export uploads nothing, an import reads documents only and fetches a layer just
when a chain is needed. Build-free: records come from a store filled by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from layerkit.cache.remote import (
    RemoteCaches,
    RemoteResults,
    export_cache,
    load_registry_cache,
    parse_cache_from,
    parse_cache_to,
)
from layerkit.content import mediatypes as mt
from layerkit.content.store import ContentStore
from layerkit.registry.client import RegistryClient
from support.registry import RunningRegistry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_remote_cache_lazy import _Build


def _client() -> RegistryClient:
    from layerkit.registry.config import RegistryConfig

    return RegistryClient(config=RegistryConfig())


def test_export_layout_and_lazy_import(tmp_path: Path, registry: RunningRegistry,
                                       tool: object) -> None:
    built = _Build(tmp_path / "a")
    ref = registry.ref("app-cache", "main")
    records = RemoteCaches(built.content).records(built.result, built.keys, "max")
    with _client() as client:
        first = export_cache(parse_cache_to(f"type=registry,ref={ref},mode=max"), records,
                             built.content, client=client)
        assert first.digest and len(first.uploaded) == 5  # 4 layers + the cache config
        again = export_cache(parse_cache_to(f"type=registry,ref={ref},mode=max"), records,
                             built.content, client=client)
        assert again.digest == first.digest and again.uploaded == []

    skopeo = tool("skopeo")  # type: ignore[operator]
    raw = subprocess.run([str(skopeo), "inspect", "--raw", "--tls-verify=false",
                          f"docker://{ref}"], capture_output=True, text=True, check=True)
    manifest = json.loads(raw.stdout)
    assert manifest["mediaType"] == mt.OCI_MANIFEST
    assert manifest["config"]["mediaType"] == mt.BUILDKIT_CACHE_CONFIG
    assert all("containerd.io/uncompressed" in x["annotations"] for x in manifest["layers"])

    store_b = ContentStore(tmp_path / "b")
    results = RemoteResults(store_b)
    with _client() as client:
        cache = load_registry_cache(ref, client, results)
        assert cache.problem is None and len(cache) == 5
        assert cache.name == f"registry cache {registry.address}/app-cache:main"
        assert client.stats.requests["GET blob"] == 1  # the cache config only
        rec = cache.get("k-b1")
        assert rec is not None
        results.ensure_chain(rec.result["result"]["ref"])
        assert client.stats.requests["GET blob"] == 3  # + base layer + builder layer
    assert store_b.has(built.diffs[0]) and not store_b.has(built.diffs[1])


def test_missing_cache_ref_is_a_warning(registry: RunningRegistry, tmp_path: Path) -> None:
    caches = RemoteCaches(ContentStore(tmp_path / "b"), client=_client,
                          cache_from=[parse_cache_from(registry.ref("nothing-here"))])
    assert len(caches.load()[0]) == 0
    assert "not found" in caches.warnings[0]
