"""The CI scenario against a real registry: a cold build on store A exports its cache;
a fresh runner (empty store B) imports it and every step is CACHED, with the same image
digest, downloading only the layers its output needs; an edit reruns only what follows.

Needs root and runc (real builds); skipped loudly otherwise.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest

from support.buildenv import require_build_env
from support.faultproxy import FaultPlan, FaultProxy, run_fault_proxy
from support.images import OciImage, push_image
from support.registry import RunningRegistry

DOCKERFILE = """\
FROM {base} AS builder
WORKDIR /src
COPY lib.txt .
RUN head -c 16 /dev/urandom | od -An -tx1 > /src/built && cat lib.txt >> /src/built

FROM {base}
COPY app.txt /app/
COPY --from=builder /src/built /app/built
RUN head -c 8 /dev/urandom | od -An -tx1 > /app/id
"""

BLOB_GET = re.compile(r"^GET /v2/(.+)/blobs/(sha256:[0-9a-f]{64})$")


@pytest.fixture
def base(registry: RunningRegistry, busybox_index_image: OciImage) -> str:
    require_build_env()
    ref = registry.ref("library/busybox", "1.35")
    push_image(busybox_index_image, ref)  # a multi-platform index
    return ref


def _project(tmp: Path, base: str, name: str = "proj") -> Path:
    ctx = tmp / name
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    (ctx / "lib.txt").write_text("lib v1\n")
    (ctx / "app.txt").write_text("app v1\n")
    return ctx


class _Built:
    """A build result and the progress text it printed."""

    def __init__(self, result: Any, progress: str) -> None:
        self.result = result
        self.progress = progress

    def __getattr__(self, name: str) -> Any:
        return getattr(self.result, name)


def _build(ctx: Path, root: Path, **kw: Any) -> Any:
    import layerkit

    stream = io.StringIO()
    result = layerkit.build(ctx, root=str(root), progress="plain", stream=stream, **kw)
    return _Built(result, stream.getvalue())


def _steps(result: Any) -> list[tuple[str, str, str | None]]:
    return [(o.text, o.status, o.source) for o in result.solve.steps if o.number is not None]


def _blob_gets(proxy: FaultProxy) -> list[tuple[str, str]]:
    """(repository, digest) of every blob GET that went through the proxy."""
    return [(m.group(1), m.group(2)) for key in proxy.log.requests
            if (m := BLOB_GET.match(key))]


def test_registry_cache_warms_an_empty_store(tmp_path: Path, registry: RunningRegistry,
                                             base: str) -> None:
    # Requests are counted by a pass-through proxy (the registry's access log is off).
    with run_fault_proxy(registry.address, FaultPlan(rate=0.0)) as proxy:
        _ci_scenario(tmp_path, registry, proxy, base.replace(registry.address, proxy.address))


def _ci_scenario(tmp_path: Path, registry: RunningRegistry, proxy: FaultProxy,
                 base: str) -> None:
    ctx = _project(tmp_path, base)
    cache = f"{proxy.address}/app-cache:main"
    cold = _build(ctx, tmp_path / "A", cache_to=(f"type=registry,ref={cache},mode=max",))
    # Everything ran (the second FROM of the same image reuses the first one's result).
    assert [t for t, s, _ in _steps(cold) if s == "cached"] == [f"FROM {base}"]

    import layerkit

    # plan on the empty store sees the imported cache too, and downloads no layer.
    proxy.log.requests.clear()
    predicted = layerkit.plan(ctx, root=str(tmp_path / "B"),
                              cache_from=(f"type=registry,ref={cache}",))
    assert {s.action for s in predicted.steps} == {"cached"}
    assert {repo for repo, _ in _blob_gets(proxy)} <= {"app-cache", "library/busybox"}
    assert len(_blob_gets(proxy)) == 2  # the cache config and the base's config only
    proxy.log.requests.clear()
    warm = _build(ctx, tmp_path / "B", cache_from=(f"type=registry,ref={cache}",))
    steps = _steps(warm)
    assert [s for _, s, _ in steps] == ["cached"] * len(steps)
    assert all(src == f"registry cache {proxy.address}/app-cache:main" for *_, src in steps)
    assert "CACHED (from registry cache" in warm.progress
    assert warm.image_id == cold.image_id

    # Only the output's layers were downloaded: the final image's, not the builder's.
    gets = _blob_gets(proxy)
    got = {d for repo, d in gets if repo == "app-cache"}
    final_layers = _image_layer_blobs(registry, "app-cache", "main", tmp_path / "A",
                                      cold.image_id)
    cache_blobs = {layer["digest"] for layer in _manifest(registry, "app-cache", "main")["layers"]}
    assert final_layers < cache_blobs  # mode=max: the builder's layers are in the cache too
    assert got - {_cache_config_digest(registry, "app-cache", "main")} <= final_layers
    assert len(gets) == len({d for _, d in gets})  # each blob fetched once at most
    # ... and all of them: the image store holds the final image (the base's layer may
    # come from the base image's own repository).
    assert len({d for _, d in gets} - {_cache_config_digest(registry, "app-cache", "main")}) \
        >= len(final_layers) - 1

    # An edit on the warm runner: the steps after it run, everything else is reused.
    (ctx / "app.txt").write_text("app v2\n")
    edited = _build(ctx, tmp_path / "B", cache_from=(f"type=registry,ref={cache}",))
    ran = [t for t, s, _ in _steps(edited) if s == "ran"]
    assert ran == ["COPY app.txt /app/", "COPY --from=builder /src/built /app/built",
                   "RUN head -c 8 /dev/urandom | od -An -tx1 > /app/id"]


def _image_layer_blobs(registry: RunningRegistry, repo: str, tag: str, root: Path,
                       image_id: str) -> set[str]:
    """The blobs of the cache at ``repo:tag`` that hold a layer of the image ``image_id``."""
    import json

    from layerkit.content.store import ContentStore

    diff_ids = set(json.loads(ContentStore(root).read_bytes(image_id))["rootfs"]["diff_ids"])
    manifest = _manifest(registry, repo, tag)
    return {layer["digest"] for layer in manifest["layers"]
            if layer["annotations"]["containerd.io/uncompressed"] in diff_ids}


def _manifest(registry: RunningRegistry, repo: str, tag: str) -> dict[str, Any]:
    import json
    import urllib.request

    req = urllib.request.Request(f"{registry.url}/v2/{repo}/manifests/{tag}", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
    return doc


def _cache_config_digest(registry: RunningRegistry, repo: str, tag: str) -> str:
    return str(_manifest(registry, repo, tag)["config"]["digest"])


@pytest.mark.parametrize("mode", ["min", "max"])
def test_intermediate_stages_are_cached_only_with_mode_max(
    tmp_path: Path, registry: RunningRegistry, base: str, mode: str,
) -> None:
    ctx = _project(tmp_path, base)
    cache = registry.ref(f"cache-{mode}", "main")
    _build(ctx, tmp_path / "A", cache_to=(f"type=registry,ref={cache},mode={mode}",))
    warm = _build(ctx, tmp_path / "B", cache_from=(cache,))
    builder = [s for t, s, _ in _steps(warm) if (t.startswith(("WORKDIR", "COPY lib", "RUN h"))
               and "/src" in t) or t == "COPY lib.txt ."]
    assert builder, _steps(warm)
    expected = "cached" if mode == "max" else "ran"
    assert set(builder) == {expected}
    final = [s for t, s, _ in _steps(warm) if t.startswith(("COPY app", "COPY --from"))]
    assert set(final) == {"cached"}


def test_local_cache_directory(tmp_path: Path, base: str) -> None:
    ctx = _project(tmp_path, base)
    cold = _build(ctx, tmp_path / "A", cache_to=(f"type=local,dest={tmp_path / 'c'},mode=max",))
    assert (tmp_path / "c" / "index.json").is_file()
    warm = _build(ctx, tmp_path / "B", cache_from=(f"type=local,src={tmp_path / 'c'}",))
    assert {s for _, s, _ in _steps(warm)} == {"cached"}
    assert {src for *_, src in _steps(warm)} == {f"cache directory {tmp_path / 'c'}"}
    assert warm.image_id == cold.image_id


def test_inline_cache_in_a_pushed_image(tmp_path: Path, registry: RunningRegistry,
                                        base: str) -> None:
    ctx = _project(tmp_path, base)
    image = registry.ref("app", "1")
    _build(ctx, tmp_path / "A", tags=(image,), push=True, cache_to=("type=inline",))
    warm = _build(ctx, tmp_path / "B", cache_from=(image,))
    final = [(t, s) for t, s, _ in _steps(warm) if t.startswith(("COPY app", "COPY --from"))]
    assert {s for _, s in final} == {"cached"}
