"""Pulls and pushes through a fault-injecting proxy (tests/support/faultproxy.py) in front
of a REAL registry: 500/503/429, connection resets, truncated and corrupted bodies,
slow answers. A pull either succeeds after retries or fails with a clear error and
never leaves a corrupt blob; a push never leaves a manifest pointing at a missing blob."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest
from test_registry_distribution import first_image

from layerkit.content import ContentStore
from layerkit.registry import (
    RegistryClient,
    RegistryConfig,
    RegistryError,
    RetryPolicy,
    StaticCredentials,
    parse_reference,
    pull_image,
    push_image,
)
from support.faultproxy import ALL_FAULTS, FaultPlan, run_fault_proxy
from support.images import OciImage
from support.registry import RunningRegistry

SEEDS = range(8)


def fast_client(**kwargs: object) -> RegistryClient:
    options: dict[str, object] = {
        "config": RegistryConfig(), "credentials": StaticCredentials(),
        "retry": RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05, max_retry_after=0.05),
        "timeout": httpx.Timeout(5.0),
    }  # fmt: skip
    options.update(kwargs)
    return RegistryClient(**options)  # type: ignore[arg-type]


def assert_store_clean(store: ContentStore) -> None:
    """Every blob in the store hashes to its name, and no temp file is left behind."""
    for digest in store.iter_digests():
        assert store.verify(digest), f"corrupt blob kept: {digest}"
    assert not list(store.tmp_dir.iterdir())


@pytest.mark.parametrize("seed", SEEDS)
def test_pull_through_faults_succeeds_or_fails_cleanly(
    session_registry: RunningRegistry, pushed_busybox_index: str, tmp_path: Path, seed: int
) -> None:
    plan = FaultPlan(seed=seed, rate=0.5, max_consecutive=2, slow_seconds=0.05)
    repo_tag = pushed_busybox_index.split("/", 1)[1]
    store = ContentStore(tmp_path / "store")
    with run_fault_proxy(session_registry.address, plan) as proxy, fast_client() as client:
        try:
            pulled = pull_image(f"{proxy.address}/{repo_tag}", store, platform="linux/amd64",
                                client=client)  # fmt: skip
        except RegistryError as e:
            # A clear error: names the proxy's address and what was being fetched.
            assert proxy.address in e.message
            pulled = None
    assert_store_clean(store)
    if pulled is not None:
        for digest in [pulled.config_digest, *(d.digest for d in pulled.layers)]:
            assert store.has(digest)


def test_faults_really_happen_and_pulls_recover(
    session_registry: RunningRegistry, pushed_busybox_index: str, tmp_path: Path
) -> None:
    """Across seeds, every fault kind fires and retries carry each pull through."""
    seen: Counter[str] = Counter()
    repo_tag = pushed_busybox_index.split("/", 1)[1]
    for seed in range(16):
        plan = FaultPlan(seed=seed, rate=0.6, max_consecutive=2, slow_seconds=0.05)
        store = ContentStore(tmp_path / f"store{seed}")
        with run_fault_proxy(session_registry.address, plan) as proxy, fast_client() as client:
            pulled = pull_image(f"{proxy.address}/{repo_tag}", store, platform="linux/arm64",
                                client=client)  # fmt: skip
            seen.update(proxy.log.faults)
        assert_store_clean(store)
        assert json.loads(pulled.config)["architecture"] == "arm64"
    assert set(seen) >= {"500", "503", "429", "reset", "truncate", "truncate_nolength", "corrupt"}


def test_slow_responses_time_out_and_retry(
    session_registry: RunningRegistry, pushed_busybox: str, tmp_path: Path
) -> None:
    plan = FaultPlan(seed=3, rate=1.0, faults=("slow",), max_consecutive=1, slow_seconds=1.0)
    repo_tag = pushed_busybox.split("/", 1)[1]
    store = ContentStore(tmp_path / "store")
    with run_fault_proxy(session_registry.address, plan) as proxy, \
            fast_client(timeout=httpx.Timeout(0.3)) as client:  # fmt: skip
        pull_image(f"{proxy.address}/{repo_tag}", store, client=client)
        assert client.stats.retries >= 1 and proxy.log.faults["slow"] >= 1
    assert_store_clean(store)


def test_unrecoverable_corruption_fails_without_keeping_anything(
    session_registry: RunningRegistry, pushed_busybox: str, tmp_path: Path
) -> None:
    plan = FaultPlan(seed=0, rate=1.0, faults=("corrupt",), max_consecutive=100,
                     methods=frozenset({"GET"}))  # fmt: skip
    repo_tag = pushed_busybox.split("/", 1)[1]
    store = ContentStore(tmp_path / "store")
    with run_fault_proxy(session_registry.address, plan) as proxy, fast_client() as client, \
            pytest.raises(RegistryError) as info:  # fmt: skip
        pull_image(f"{proxy.address}/{repo_tag}", store, client=client)
    assert proxy.address in info.value.message
    assert list(store.iter_digests()) == []
    assert_store_clean(store)


def verify_repository_directly(registry: RunningRegistry, ref: str, tmp_path: Path) -> bool:
    """True if ``ref`` exists; then every blob it references is fetched from the registry
    itself (no proxy) and verified. Raises if any referenced blob is missing."""
    reference = parse_reference(ref)
    with fast_client() as client:
        if client.head_manifest(reference) is None:
            return False
        fetched = client.get_manifest(reference)
        doc = json.loads(fetched.data)
        store = ContentStore(tmp_path / "verify")
        for desc in [doc["config"], *doc["layers"]]:
            client.fetch_blob(reference, desc["digest"], desc["size"], store)
            data = store.read_bytes(desc["digest"])
            assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"]
    return True


@pytest.mark.parametrize("seed", SEEDS)
def test_push_through_faults_never_leaves_dangling_manifest(
    registry: RunningRegistry, busybox_image: OciImage, tmp_path: Path, seed: int
) -> None:
    manifest, config, blobs = first_image(busybox_image)
    plan = FaultPlan(seed=seed, rate=0.4, faults=ALL_FAULTS, max_consecutive=2,
                     slow_seconds=0.05)  # fmt: skip
    # A small threshold makes the layer go up in several PATCHes, each a fault target.
    with run_fault_proxy(registry.address, plan) as proxy, \
            fast_client(chunk_threshold=64 * 1024, chunk_size=256 * 1024) as client:  # fmt: skip
        try:
            result = push_image(f"{proxy.address}/faulty:v1", manifest, config, blobs,
                                client=client)  # fmt: skip
            pushed = True
            assert result.digest == "sha256:" + hashlib.sha256(manifest).hexdigest()
        except RegistryError as e:
            assert proxy.address in e.message
            pushed = False
    # Whatever happened, a manifest that exists has all its blobs. (A failed push may
    # still have landed if only the PUT's response was lost, so absence is not required.)
    present = verify_repository_directly(registry, registry.ref("faulty", "v1"), tmp_path)
    if pushed:
        assert present
