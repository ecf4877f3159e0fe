"""Builds FROM registry images against a REAL registry: a multi-platform index, pushing the
result (read back by skopeo), offline rebuilds and ``--pull``, Basic auth after
``layerkit login``, the Bearer token flow, and a fault-injecting proxy in front of it.

Needs root and runc (real builds); skipped loudly otherwise.
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.buildenv import REPO, require_build_env
from support.docker import DockerDaemon
from support.faultproxy import FaultPlan, FaultProxy, run_fault_proxy
from support.images import OciImage, push_image
from support.registry import HtpasswdAuth, RunningRegistry, start_registry
from support.registry_auth import TokenAuth

RANDOM = "head -c 8 /dev/urandom | od -An -tx1"


@pytest.fixture(autouse=True)
def _needs_builds() -> None:
    require_build_env()


def _project(tmp: Path, dockerfile: str, name: str = "proj") -> Path:
    ctx = tmp / name
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "app.txt").write_text("app v1\n")
    return ctx


def _build(ctx: Path, root: Path, stream: io.StringIO | None = None, **kw: Any) -> Any:
    import layerkit

    return layerkit.build(ctx, root=str(root), progress="plain",
                          stream=stream or io.StringIO(), **kw)


def _statuses(result: Any) -> list[tuple[str, str]]:
    return [(o.text, o.status) for o in result.solve.steps if o.number is not None]


def _skopeo(tool: Callable[[str], Path], ref: str, *extra: str) -> dict[str, Any]:
    out = subprocess.run([str(tool("skopeo")), "inspect", "--tls-verify=false", *extra,
                          f"docker://{ref}"], capture_output=True, text=True, check=True,
                         stdin=subprocess.DEVNULL)
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def _requests(proxy: FaultProxy) -> int:
    return sum(proxy.log.requests.values())


def test_build_from_a_multiplatform_index_and_push(
    tmp_path: Path, registry: RunningRegistry, busybox_index_image: OciImage,
    tool: Callable[[str], Path],
) -> None:
    base = registry.ref("library/busybox", "multi")
    push_image(busybox_index_image, base)
    ctx = _project(tmp_path, f"FROM {base}\nCOPY app.txt /app/\nRUN {RANDOM} > /id\n")
    dest = registry.ref("built/app", "1")
    meta = tmp_path / "meta.json"
    out = io.StringIO()
    result = _build(ctx, tmp_path / "store", out, tags=(dest,), push=True,
                    metadata_file=str(meta))
    assert {s for _, s in _statuses(result)} == {"ran"}
    assert f"pushed {dest}" in out.getvalue()
    pushed = json.loads(meta.read_text())["containerimage.digest"]
    inspected = _skopeo(tool, dest)
    assert inspected["Digest"] == pushed
    # The pushed image has the base's layers plus ours, and its config is the image id.
    config = json.loads(subprocess.run(
        [str(tool("skopeo")), "inspect", "--tls-verify=false", "--config", f"docker://{dest}"],
        capture_output=True, text=True, check=True).stdout)
    from layerkit.content.store import ContentStore

    ours = json.loads(ContentStore(tmp_path / "store").read_bytes(result.image_id))
    assert config["rootfs"]["diff_ids"] == ours["rootfs"]["diff_ids"]
    assert len(inspected["Layers"]) == len(ours["rootfs"]["diff_ids"]) == 3
    # -o type=registry,name=… pushes too, and a second push uploads nothing new.
    again = io.StringIO()
    second = registry.ref("built/app", "2")
    _build(ctx, tmp_path / "store", again, outputs=(f"type=registry,name={second}",))
    assert "(0 uploaded" in again.getvalue() or "0 uploaded" in again.getvalue()
    assert _skopeo(tool, second)["Digest"] == pushed


def test_a_known_base_builds_offline_and_pull_refreshes(
    tmp_path: Path, registry: RunningRegistry, busybox_image: OciImage,
) -> None:
    push_image(busybox_image, registry.ref("library/busybox", "1.35"))
    root = tmp_path / "store"
    from layerkit.content.images import ImageIndex
    from layerkit.errors import LayerkitError

    # Requests are counted by a pass-through proxy (the registry's access log is off).
    with run_fault_proxy(registry.address, FaultPlan(rate=0.0)) as proxy:
        base = f"{proxy.address}/library/busybox:1.35"
        ctx = _project(tmp_path, f"FROM {base}\nRUN {RANDOM} > /id\n")
        first = _build(ctx, root)
        assert [t for t, s in _statuses(first) if s == "ran"] == [f"FROM {base}",
                                                                  f"RUN {RANDOM} > /id"]
        seen = _requests(proxy)
        assert seen >= 3  # manifest, config, layer
        again = _build(ctx, root)
        assert {s for _, s in _statuses(again)} == {"cached"}
        assert _requests(proxy) == seen  # no network at all
        # The layers were needed (a RUN ran on them): the base is named in the store.
        with ImageIndex(root) as index:
            assert index.get(base) is not None
        refreshed = _build(ctx, root, pull=True)
        assert _requests(proxy) > seen  # --pull asked again
        assert {s for _, s in _statuses(refreshed)} == {"cached"}  # same digest, same keys
    # The registry is gone now: a known base still builds, --pull fails clearly.
    offline = _build(ctx, root)
    assert offline.image_id == first.image_id
    with pytest.raises(LayerkitError) as info:
        _build(ctx, root, pull=True)
    assert proxy.address in info.value.message


def test_build_from_a_basic_auth_registry_after_login(
    tmp_path: Path, basic_auth_registry: RunningRegistry, busybox_image: OciImage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = basic_auth_registry.auth
    assert isinstance(auth, HtpasswdAuth)
    base = basic_auth_registry.ref("private/busybox", "v1")
    push_image(busybox_image, base, creds=f"{auth.username}:{auth.password}")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    ctx = _project(tmp_path, f"FROM {base}\nRUN {RANDOM} > /id\n")
    from layerkit.errors import LayerkitError

    with pytest.raises(LayerkitError) as info:
        _build(ctx, tmp_path / "denied")
    assert "401" in info.value.message and basic_auth_registry.address in info.value.message
    login = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-m", "layerkit", "login", "-u", auth.username,
         "--password-stdin", basic_auth_registry.address],
        input=auth.password + "\n", capture_output=True, text=True, cwd=REPO)
    assert login.returncode == 0, login.stderr
    result = _build(ctx, tmp_path / "store", tags=(basic_auth_registry.ref("private/app"),),
                    push=True)
    assert {s for _, s in _statuses(result)} == {"ran"}


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


def test_bearer_token_registry_pull_build_cache_and_push(
    tmp_path: Path, token_registry: tuple[RunningRegistry, TokenAuth],
    busybox_image: OciImage, monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry, tokens = token_registry
    base = registry.ref("secure/busybox", "v1")
    push_image(busybox_image, base, creds="tester:s3cret-pass")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    from layerkit.registry import login

    login(registry.address, "tester", "s3cret-pass")
    ctx = _project(tmp_path, f"FROM {base}\nCOPY app.txt /\nRUN {RANDOM} > /id\n")
    cache = registry.ref("secure/cache", "main")
    cold = _build(ctx, tmp_path / "A", cache_to=(f"type=registry,ref={cache},mode=max",))
    warm = _build(ctx, tmp_path / "B", cache_from=(f"type=registry,ref={cache}",))
    assert {s for _, s in _statuses(warm)} == {"cached"}
    assert warm.image_id == cold.image_id
    granted = [r for r in tokens.requests if r.granted and r.account == "tester"]
    assert any("repository:secure/cache:pull,push" in r.scopes for r in granted)


@pytest.mark.parametrize("seed", range(4))
def test_builds_through_faults_succeed_or_fail_clearly(
    tmp_path: Path, registry: RunningRegistry, busybox_image: OciImage, seed: int,
) -> None:
    push_image(busybox_image, registry.ref("library/busybox", "1.35"))
    plan = FaultPlan(seed=seed, rate=0.3, max_consecutive=2, slow_seconds=0.05)
    from layerkit.content.store import ContentStore
    from layerkit.errors import LayerkitError

    with run_fault_proxy(registry.address, plan) as proxy:
        base = f"{proxy.address}/library/busybox:1.35"
        ctx = _project(tmp_path, f"FROM {base}\nCOPY app.txt /\nRUN {RANDOM} > /id\n")
        cache = f"{proxy.address}/faulty/cache:main"
        outcomes = []
        for store, kw in (("A", {"cache_to": (f"type=registry,ref={cache},mode=max",),
                                 "tags": (f"{proxy.address}/faulty/app:1",), "push": True}),
                          ("B", {"cache_from": (f"type=registry,ref={cache}",)})):
            try:
                _build(ctx, tmp_path / store, **kw)
                outcomes.append("ok")
            except LayerkitError as e:
                # A clear error: it names the registry (the proxy) it was talking to.
                assert proxy.address in e.message, e.message
                outcomes.append("failed")
            content = ContentStore(tmp_path / store)
            for digest in content.iter_digests():
                assert content.verify(digest), f"corrupt blob kept: {digest}"
        assert sum(proxy.log.faults.values()) > 0  # the faults really happened
    # Whatever happened, what the registry holds is whole: every manifest's blobs exist.
    from test_registry_faults import verify_repository_directly

    for repo, tag in (("faulty/cache", "main"), ("faulty/app", "1")):
        verify_repository_directly(registry, registry.ref(repo, tag), tmp_path / repo)
    assert len(outcomes) == 2
    print(f"seed {seed}: {outcomes}")


def test_unrecoverable_corruption_fails_the_build_clearly_and_keeps_nothing_bad(
    tmp_path: Path, registry: RunningRegistry, busybox_image: OciImage,
) -> None:
    push_image(busybox_image, registry.ref("library/busybox", "1.35"))
    # Every blob GET comes back corrupted: the layer can never be fetched.
    plan = FaultPlan(seed=0, rate=1.0, faults=("corrupt",), max_consecutive=100,
                     methods=frozenset({"GET"}))
    from layerkit.content.store import ContentStore
    from layerkit.errors import LayerkitError

    with run_fault_proxy(registry.address, plan) as proxy:
        ctx = _project(tmp_path, f"FROM {proxy.address}/library/busybox:1.35\n"
                                 f"RUN {RANDOM} > /id\n")
        with pytest.raises(LayerkitError) as info:
            _build(ctx, tmp_path / "store")
    assert proxy.address in info.value.message
    content = ContentStore(tmp_path / "store")
    for digest in content.iter_digests():
        assert content.verify(digest), f"corrupt blob kept: {digest}"
    assert not list(content.tmp_dir.iterdir())


def test_cli_push_cache_to_and_cache_from_with_metadata_sources(
    tmp_path: Path, registry: RunningRegistry, busybox_image: OciImage,
    tool: Callable[[str], Path],
) -> None:
    from support.buildenv import cli

    base = registry.ref("library/busybox", "1.35")
    push_image(busybox_image, base)
    ctx = _project(tmp_path, f"FROM {base}\nCOPY app.txt /\nRUN {RANDOM} > /id\n")
    image, cache = registry.ref("cli/app", "1"), registry.ref("cli/cache", "main")
    cold = cli("build", "--progress", "plain", "-t", image, "--push",
               "--cache-to", f"type=registry,ref={cache},mode=max", str(ctx),
               root=tmp_path / "A")
    assert f"pushed {image}" in cold.stderr and "exported cache" in cold.stderr
    meta = tmp_path / "meta.json"
    warm = cli("build", "--progress", "plain", "--cache-from", f"type=registry,ref={cache}",
               "--cache-from", "type=local,src=/nonexistent-cache-dir",
               "--metadata-file", str(meta), str(ctx), root=tmp_path / "B")
    assert warm.stdout.strip() == cold.stdout.strip()  # the same image id
    assert "WARNING: cache directory /nonexistent-cache-dir: not found" in warm.stderr
    steps = [s for s in json.loads(meta.read_text())["steps"] if s["number"]]
    assert {s["status"] for s in steps} == {"cached"}
    assert {s["source"] for s in steps} == {f"registry cache {registry.address}/cli/cache:main"}
    assert f"CACHED (from registry cache {registry.address}/cli/cache:main)" in warm.stderr
    assert _skopeo(tool, image)["Digest"].startswith("sha256:")


def test_a_pushed_image_is_pulled_and_run_by_a_real_docker_engine(
    tmp_path: Path, registry: RunningRegistry, busybox_image: OciImage,
    docker_daemon: DockerDaemon,
) -> None:
    base = registry.ref("library/busybox", "1.35")
    push_image(busybox_image, base)
    ctx = _project(tmp_path, f"FROM {base}\nCOPY app.txt /app/\n"
                             'CMD ["/bin/busybox", "cat", "/app/app.txt"]\n')
    dest = registry.ref("built/runme", "1")
    meta = tmp_path / "meta.json"
    _build(ctx, tmp_path / "store", tags=(dest,), push=True, metadata_file=str(meta))
    pushed = json.loads(meta.read_text())["containerimage.digest"]
    # Docker treats loopback registries as insecure (plain HTTP) by default.
    docker_daemon.run("pull", dest)
    try:
        digests = docker_daemon.run("inspect", "--format", "{{json .RepoDigests}}", dest)
        assert pushed in digests.stdout
        ran = docker_daemon.run("run", "--rm", "--network", "none", dest)
        assert ran.stdout == "app v1\n"
    finally:
        docker_daemon.run("rmi", "-f", dest, check=False)
