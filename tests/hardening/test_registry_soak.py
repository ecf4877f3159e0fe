"""Faulty registries, as a soak: hundreds of pulls and pushes, and some full
``layerkit build --push --cache-to type=registry`` runs, through the fault-injecting
proxy (tests/support/faultproxy.py) in front of a REAL registry, with random 5xx,
resets, truncated and corrupted bodies and slowness at random rates.

After every operation: the content store holds only blobs that hash to their names
and no temp file; every manifest the real registry holds (read directly, not through
the proxy) names only blobs it serves intact; a failure is a ``LayerkitError`` that
names the registry address and carries a hint (the CLI prints ``error:`` and
``hint:``, exits 2, never a traceback). At the end every blob file in the registry's
storage hashes to its name, and every fault kind must have fired.

Knobs: ``LAYERKIT_SOAK_OPS`` (pulls, and pushes, each; default 200),
``LAYERKIT_SOAK_BUILDS`` (CLI builds; default 10), ``LAYERKIT_SOAK_SEED``.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from buildharness import build_cmd, fsck_cli, run, write_project
from figures import bump

from layerkit.content import ContentStore
from layerkit.errors import LayerkitError
from layerkit.registry import (
    RegistryClient,
    RegistryConfig,
    RetryPolicy,
    StaticCredentials,
    pull_image,
    push_image,
)
from support.faultproxy import ALL_FAULTS, FaultPlan, FaultProxy, run_fault_proxy
from support.images import OciImage
from support.images import push_image as skopeo_push
from support.registry import RunningRegistry
from support.registrycheck import (
    DirectRegistry,
    SyntheticLayer,
    make_image,
    make_layer,
    registry_blob_problems,
    sha256,
    store_problems,
)

SOAK_OPS = int(os.environ.get("LAYERKIT_SOAK_OPS", "200"))
SOAK_BUILDS = int(os.environ.get("LAYERKIT_SOAK_BUILDS", "10"))
SOAK_SEED = int(os.environ.get("LAYERKIT_SOAK_SEED", "20261124"))
LAYER_SIZES = (300, 4_000, 40_000, 150_000, 400_000)
MAX_PROBLEMS_SHOWN = 15


def random_plan(rng: random.Random, *, cli: bool = False) -> FaultPlan:
    """A fault plan at a random rate, with all kinds or a random few of them."""
    kinds = ALL_FAULTS if rng.random() < 0.5 else tuple(rng.sample(ALL_FAULTS, rng.randint(1, 4)))
    if cli and rng.random() < 0.4:
        # The CLI retries 5 times with real backoff: only a registry that keeps failing
        # makes a build fail, and those failures must be as clear as the recoveries.
        return FaultPlan(seed=rng.randrange(1 << 30), rate=0.9, faults=kinds,
                         max_consecutive=12, slow_seconds=0.05)
    return FaultPlan(
        seed=rng.randrange(1 << 30),
        rate=rng.choice((0.1, 0.2, 0.3) if cli else (0.05, 0.15, 0.3, 0.5, 0.7)),
        faults=kinds,
        # Above the client's attempts, a request can fail for good: clear failures too.
        max_consecutive=rng.randint(1, 6),
        slow_seconds=rng.choice((0.01, 0.05, 0.2)),
    )


def soak_client(rng: random.Random, plan: FaultPlan, **extra: object) -> RegistryClient:
    """A client with fast backoff; rarely a timeout shorter than a slow answer."""
    short = plan.slow_seconds >= 0.2 and "slow" in plan.faults and rng.random() < 0.3
    options: dict[str, object] = {
        "config": RegistryConfig(), "credentials": StaticCredentials(),
        "retry": RetryPolicy(attempts=rng.randint(2, 5), base_delay=0.005, max_delay=0.02,
                             max_retry_after=0.02),
        "timeout": httpx.Timeout(0.1 if short else 10.0),
        "seed": rng.randrange(1 << 30),
        **extra,
    }  # fmt: skip
    return RegistryClient(**options)  # type: ignore[arg-type]


@dataclass
class Soak:
    """Outcome counts and every problem seen (reported together at the end)."""

    counts: Counter[str]
    faults: Counter[str]
    problems: list[str]

    def failure(self, ops: str, what: str, error: BaseException, proxy: FaultProxy) -> None:
        """Count ``error`` as a clear failure of ``ops`` if it is one: a LayerkitError
        naming the proxy (the registry address the user gave), with a hint."""
        if not isinstance(error, LayerkitError):
            self.problems.append(f"{what}: unclear failure {type(error).__name__}: {error!r}")
        elif proxy.address not in error.message:
            self.problems.append(f"{what}: error does not name {proxy.address}: {error.message}")
        elif not error.hint:
            self.problems.append(f"{what}: error without a hint: {error.message}")
        else:
            self.counts[f"{ops} that failed clearly"] += 1
            self.counts[f"{ops} failed with {type(error).__name__}"] += 1

    @contextmanager
    def faulty(self, proxy: FaultProxy, plan: FaultPlan) -> Iterator[None]:
        """Run one operation with ``plan`` on the shared proxy, counting its faults and
        requests. (One proxy for the whole soak: starting one per operation costs half a
        second in ``shutdown``'s poll.)"""
        faults, requests = Counter(proxy.log.faults), Counter(proxy.log.requests)
        proxy.plan = plan
        try:
            yield
        finally:
            proxy.plan = FaultPlan(rate=0.0)
            self.faults.update(proxy.log.faults - faults)
            sent = proxy.log.requests - requests
            self.counts["requests through the proxy"] += sum(sent.values())
            self.counts["PATCH requests"] += sum(n for k, n in sent.items()
                                                 if k.startswith("PATCH "))

    def check(self, what: str, found: list[str]) -> None:
        self.problems += [f"{what}: {p}" for p in found]

    def report(self) -> str:
        shown = "\n  ".join(self.problems[:MAX_PROBLEMS_SHOWN])
        return f"{len(self.problems)} problems (seed {SOAK_SEED}):\n  {shown}"


@pytest.fixture
def soak_registry(registry: RunningRegistry, busybox_index_image: OciImage) -> RunningRegistry:
    """A fresh registry holding busybox (an amd64 + arm64 index) as busybox-multi:1.35."""
    skopeo_push(busybox_index_image, registry.ref("busybox-multi", "1.35"))
    return registry


def seed_images(registry: RunningRegistry, tmp: Path, rng: random.Random,
                pool: list[SyntheticLayer]) -> list[tuple[str, str | None]]:
    """Push synthetic images sharing layers (so a reused store holds some of each),
    directly; returns (repository:tag, platform) pairs to pull."""
    refs: list[tuple[str, str | None]] = [("busybox-multi:1.35", "linux/amd64"),
                                          ("busybox-multi:1.35", "linux/arm64")]
    source = ContentStore(tmp / "seed-src")
    for layer in pool:
        source.write_bytes(layer.blob)
    with soak_client(random.Random(0), FaultPlan(rate=0.0)) as client:
        for i in range(8):
            layers = rng.sample(pool, rng.randint(1, 4))
            manifest, config = make_image(layers, label=f"seed-{i}")
            push_image(f"{registry.address}/pull-src-{i % 3}:v{i}", manifest, config, source,
                       client=client)
            refs.append((f"pull-src-{i % 3}:v{i}", None))
    return refs


def pull_soak(registry: RunningRegistry, proxy: FaultProxy, tmp: Path, rng: random.Random,
              soak: Soak) -> None:
    pool = [make_layer(rng, rng.choice(LAYER_SIZES)) for _ in range(10)]
    refs = seed_images(registry, tmp, rng, pool)
    shared: ContentStore | None = None
    for i in range(SOAK_OPS):
        # Half the pulls reuse a store that already holds some blobs (replaced every
        # 25 pulls, so it does not end up holding everything); half start empty.
        if i % 25 == 0:
            shared = ContentStore(tmp / f"shared-{i}")
        assert shared is not None
        store = shared if rng.random() < 0.5 else ContentStore(tmp / f"pull-{i}")
        repo_tag, platform = rng.choice(refs)
        plan = random_plan(rng)
        what = f"pull {i} of {repo_tag} (plan {plan})"
        soak.counts["pulls"] += 1
        with soak.faulty(proxy, plan), soak_client(rng, plan) as client:
            try:
                pulled = pull_image(f"{proxy.address}/{repo_tag}", store, platform=platform,
                                    client=client)  # fmt: skip
            except Exception as e:  # classifying any failure is the test
                soak.failure("pulls", what, e, proxy)
                pulled = None
        soak.check(what, store_problems(store))
        if pulled is not None:
            soak.counts["pulls that succeeded"] += 1
            wanted = [pulled.config_digest, *(d.digest for d in pulled.layers)]
            soak.check(what, [f"{d} missing after the pull" for d in wanted if not store.has(d)])
            if sha256(pulled.config) != pulled.config_digest:
                soak.problems.append(f"{what}: returned config does not match its digest")


def push_soak(proxy: FaultProxy, tmp: Path, rng: random.Random, soak: Soak,
              direct: DirectRegistry) -> None:
    source = ContentStore(tmp / "push-src")
    pool = [make_layer(rng, rng.choice(LAYER_SIZES), f"shared-{n}") for n in range(8)]
    for layer in pool:
        source.write_bytes(layer.blob)
    holders: dict[str, set[str]] = {}  # layer digest -> repositories known to hold it
    for i in range(SOAK_OPS):
        # Shared layers (already there: HEAD says exists, or a cross-repository mount)
        # plus one new layer big enough to go up in several PATCHes.
        fresh = make_layer(rng, rng.randint(1_000, 300_000), f"fresh-{i}")
        source.write_bytes(fresh.blob)
        layers = [*rng.sample(pool, rng.randint(0, 3)), fresh]
        rng.shuffle(layers)
        manifest, config = make_image(layers, label=f"push-{i}")
        repository, tag = f"push-{rng.randrange(6)}", f"t{i}"
        mount_from = {d: sorted(r - {repository}) for d, r in holders.items()
                      if r - {repository}}
        plan = random_plan(rng)
        what = f"push {i} to {repository}:{tag} (plan {plan})"
        soak.counts["pushes"] += 1
        chunking = {"chunk_threshold": rng.choice((16_384, 65_536, 262_144)),
                    "chunk_size": rng.choice((32_768, 131_072))}
        with soak.faulty(proxy, plan), soak_client(rng, plan, **chunking) as client:
            try:
                result = push_image(f"{proxy.address}/{repository}:{tag}", manifest, config,
                                    source, client=client,
                                    mount_from=mount_from if rng.random() < 0.5 else None)
                pushed = True
                if result.digest != sha256(manifest):
                    soak.problems.append(f"{what}: push reported digest {result.digest}")
                soak.counts["blobs mounted by pushes"] += len(result.mounted)
            except Exception as e:  # classifying any failure is the test
                soak.failure("pushes", what, e, proxy)
                pushed = False
        # A failed push may still have landed (only the PUT's answer was lost), so
        # absence is not required; but whatever is there must be whole.
        stored = direct.manifest(repository, tag)
        if pushed:
            soak.counts["pushes that succeeded"] += 1
            if stored != manifest:
                soak.problems.append(f"{what}: succeeded but the registry holds {stored!r:.80}")
        if stored is not None:
            soak.counts["pushed manifests verified directly"] += 1
            soak.check(what, direct.manifest_problems(repository, tag, stored))
            for layer in layers:
                holders.setdefault(layer.digest, set()).add(repository)


@pytest.mark.timeout(900)
def test_registry_soak_pulls_and_pushes(soak_registry: RunningRegistry,
                                        tmp_path: Path) -> None:
    rng = random.Random(SOAK_SEED)
    soak = Soak(Counter(), Counter(), [])
    started = time.monotonic()
    with run_fault_proxy(soak_registry.address, FaultPlan(rate=0.0)) as proxy, \
            DirectRegistry(soak_registry.address) as direct:  # fmt: skip
        pull_soak(soak_registry, proxy, tmp_path / "pulls", rng, soak)
        pulled_at = time.monotonic()
        push_soak(proxy, tmp_path / "pushes", rng, soak, direct)
    pushed_at = time.monotonic()
    stored, checked = registry_blob_problems(soak_registry.root / "data")
    soak.check("registry storage", stored)
    print(f"\nregistry soak (seed {SOAK_SEED}): {SOAK_OPS} pulls in {pulled_at - started:.1f}s, "
          f"{SOAK_OPS} pushes in {pushed_at - pulled_at:.1f}s; {dict(soak.counts)}; "
          f"faults {dict(soak.faults)}")
    for name, n in soak.counts.items():
        bump(f"registry soak: {name}", n)
    for kind, n in soak.faults.items():
        bump(f"registry soak: faults injected ({kind})", n)
    bump("registry soak: registry blob files verified", checked)
    assert not soak.problems, soak.report()
    # The soak proves nothing unless faults really fired, of every kind, and both
    # outcomes happened: recoveries and clear failures.
    assert set(soak.faults) == set(ALL_FAULTS), soak.faults
    assert soak.counts["pulls that succeeded"] > SOAK_OPS // 3, soak.counts
    assert soak.counts["pushes that succeeded"] > SOAK_OPS // 3, soak.counts
    assert soak.counts["pulls that failed clearly"] > 0, soak.counts
    assert soak.counts["pushes that failed clearly"] > 0, soak.counts
    assert soak.counts["PATCH requests"] > SOAK_OPS, soak.counts
    assert checked > SOAK_OPS


# -- full CLI builds ---------------------------------------------------------------------

DOCKERFILE = """\
FROM {registry}/busybox-multi:1.35
COPY data.bin /data.bin
RUN wc -c < /data.bin > /size.txt
"""


@pytest.mark.timeout(900)
def test_registry_soak_cli_builds(soak_registry: RunningRegistry, tmp_path: Path) -> None:
    from support.buildenv import require_build_env

    require_build_env()
    rng = random.Random(SOAK_SEED + 1)
    soak = Soak(Counter(), Counter(), [])
    roots = [tmp_path / "root-a", tmp_path / "root-b"]
    started = time.monotonic()
    shown: set[str] = set()  # kinds of failure whose diagnostic was printed once
    with run_fault_proxy(soak_registry.address, FaultPlan(rate=0.0)) as proxy, \
            DirectRegistry(soak_registry.address) as direct:  # fmt: skip
        ctx = write_project(tmp_path / "ctx", {
            "Dockerfile": DOCKERFILE.format(registry=proxy.address)})
        for i in range(SOAK_BUILDS):
            # Fresh roots pull the base through the faults; reused ones resolve its digest
            # and may import the registry cache instead of running the step.
            root = rng.choice(roots) if rng.random() < 0.6 else tmp_path / f"root-{i}"
            if root not in roots:
                roots.append(root)
            (ctx / "data.bin").write_bytes(rng.randbytes(rng.choice((10, 200_000))))
            cache, tag = f"cache-{rng.randrange(2)}", f"b{i}"
            plan = random_plan(rng, cli=True)
            before = Counter(soak.faults)
            with soak.faulty(proxy, plan):
                done = run(build_cmd(
                    root, ctx, "-t", f"{proxy.address}/built:{tag}", "--push",
                    "--cache-from", f"type=registry,ref={proxy.address}/{cache}",
                    "--cache-to", f"type=registry,ref={proxy.address}/{cache},mode=max",
                ), timeout=300)
            fired = soak.faults - before
            what = f"build {i} (exit {done.code}, plan {plan}, faults {dict(fired)})"
            soak.counts["CLI builds"] += 1
            output = done.stdout + done.stderr
            if "Traceback" in output:
                soak.problems.append(f"{what}: printed a traceback:\n{done.stderr[-3000:]}")
            if done.code == 0:
                soak.counts["CLI builds that succeeded"] += 1
                soak.check(what, direct.manifest_problems("built", tag))
                soak.check(what, direct.manifest_problems(cache, "latest"))
            elif done.code != 2 or "error:" not in done.stderr or "hint:" not in done.stderr \
                    or proxy.address not in done.stderr:
                soak.problems.append(f"{what}: unclear failure:\n{done.stderr[-3000:]}")
            else:
                soak.counts["CLI builds that failed clearly"] += 1
                reference = next(line for line in done.stderr.splitlines()
                                 if line.startswith("error:"))
                soak.counts[f"CLI builds failed with {reference.removeprefix('error: ')}"] += 1
                if reference not in shown:
                    shown.add(reference)
                    print(f"\n{what}:\n{done.stderr[-1200:]}")
                # A failed build's push may have landed anyway; if so, it is whole.
                if direct.manifest("built", tag) is not None:
                    soak.check(what, direct.manifest_problems("built", tag))
    for root in roots:
        if root.exists():
            code, doc = fsck_cli(root)
            soak.counts["stores checked by fsck"] += 1
            if code != 0:
                soak.problems.append(f"fsck {root}: exit {code}: {json.dumps(doc)[:2000]}")
    stored, checked = registry_blob_problems(soak_registry.root / "data")
    soak.check("registry storage", stored)
    print(f"\nregistry soak CLI (seed {SOAK_SEED + 1}): {SOAK_BUILDS} builds in "
          f"{time.monotonic() - started:.1f}s; {dict(soak.counts)}; faults {dict(soak.faults)}")
    for name, n in soak.counts.items():
        if "PATCH" not in name:  # the CLI's chunk threshold (32 MiB) is above these layers
            bump(f"registry soak: {name.replace('CLI ', '')} (CLI)", n)
    for kind, n in soak.faults.items():
        bump(f"registry soak: faults injected in CLI builds ({kind})", n)
    assert not soak.problems, soak.report()
    assert sum(soak.faults.values()) > 0, "no fault fired during the CLI builds"
    assert soak.counts["CLI builds that succeeded"] > 0, soak.counts
    if SOAK_BUILDS >= 10:
        assert soak.counts["CLI builds that failed clearly"] > 0, soak.counts
    assert checked > 0

