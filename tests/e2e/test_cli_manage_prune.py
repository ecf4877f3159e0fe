"""layerkit du / prune against real builds: what prune keeps is what the next build reuses.

Uses the busybox:1.35 docker-archive from tests/support (built locally, no network)
and the real worker (overlayfs or naive snapshots, runc/crun).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCKERFILE = """\
FROM busybox:1.35 AS other
RUN echo other > /other && echo junk > /junk
FROM busybox:1.35
RUN head -c 20000 /dev/urandom > /rand
COPY --from=other /other /other
"""


def lk(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "layerkit", *args, "--root", str(root)],
                          input=stdin, capture_output=True, text=True, check=False)


def build(root: Path, ctx: Path, meta: Path) -> dict[str, str]:
    """Build app:1; return {instruction: status}."""
    out = subprocess.run(
        [sys.executable, "-m", "layerkit", "build", "--root", str(root), "-t", "app:1",
         "--progress", "plain", "--metadata-file", str(meta), str(ctx)],
        capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr + out.stdout
    steps = json.loads(meta.read_text())["steps"]
    return {s["instruction"]: s["status"] for s in steps if s["instruction"].startswith(
        ("RUN", "COPY"))}


@pytest.fixture
def built(tmp_path: Path, busybox_docker_archive: Path) -> tuple[Path, Path]:
    if not (shutil.which("runc") or shutil.which("crun")):
        pytest.skip("no OCI runtime (apt-get install runc)")
    root, ctx = tmp_path / "root", tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    assert lk(root, "load", "-i", str(busybox_docker_archive)).stdout == \
        "Loaded image: busybox:1.35\n"
    statuses = build(root, ctx, tmp_path / "m0.json")
    assert set(statuses.values()) == {"ran"}
    return root, ctx


def du(root: Path) -> dict[str, dict[str, int]]:
    out = lk(root, "du", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["total"] == sum(k["size"] for k in doc["kinds"])
    return {k["kind"]: k for k in doc["kinds"]}


def test_du_table_columns(built: tuple[Path, Path]) -> None:
    root, _ = built
    lines = lk(root, "du").stdout.splitlines()
    assert lines[0] == "TYPE           COUNT     SIZE      RECLAIMABLE"
    assert [line.split("  ")[0] for line in lines[1:]] == [
        "blobs", "snapshots", "cache mounts", "key store", "other", "Total"]
    assert re.fullmatch(r"Total {20}\S+ +\S+", lines[-1]), lines[-1]


def test_default_prune_keeps_what_the_tagged_image_needs(
        built: tuple[Path, Path], tmp_path: Path) -> None:
    root, ctx = built
    before = du(root)
    out = lk(root, "prune", "-f")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # the `other` stage's RUN (its layer is in no tagged image): record + snapshot
    assert lines[0] == "Deleted build cache objects:"
    assert len(lines) == 5 and lines[3] == "" and lines[4].startswith("Total reclaimed space: ")
    assert re.fullmatch(r"[0-9a-f]{25}", lines[1]) and re.fullmatch(r"[0-9a-f]{12}", lines[2])
    after = du(root)
    assert after["snapshots"]["count"] == before["snapshots"]["count"] - 1
    assert after["key store"]["count"] == before["key store"]["count"] - 1
    # the rebuild reuses the final stage: only the pruned step runs again, and it
    # makes the same /other, so COPY --from hits by content and the random RUN hits
    statuses = build(root, ctx, tmp_path / "m1.json")
    assert statuses == {
        "RUN echo other > /other && echo junk > /junk": "ran",
        "RUN head -c 20000 /dev/urandom > /rand": "cached",
        "COPY --from=other /other /other": "cached",
    }


def test_until_and_keep_storage_spare_recent_cache(built: tuple[Path, Path]) -> None:
    root, _ = built
    out = lk(root, "prune", "-f", "--all", "--filter", "until=1h")
    assert out.stdout == "Total reclaimed space: 0B\n"
    out = lk(root, "prune", "-f", "--all", "--keep-storage", "10GB")
    assert out.stdout == "Total reclaimed space: 0B\n"
    assert du(root)["snapshots"]["reclaimable"] > 0


def test_prune_all_then_rebuild(built: tuple[Path, Path], tmp_path: Path) -> None:
    root, ctx = built
    reclaimable = du(root)
    out = lk(root, "prune", "--all", "-f")
    assert out.returncode == 0, out.stderr
    total = out.stdout.splitlines()[-1]
    from layerkit.store import human_size

    freed = sum(reclaimable[k]["reclaimable"] for k in ("blobs", "snapshots", "cache mounts"))
    assert total == f"Total reclaimed space: {human_size(freed)}"
    after = du(root)
    assert after["snapshots"]["count"] == 0 and after["key store"]["count"] == 0
    images = lk(root, "images").stdout
    assert "app " in images and "busybox " in images
    assert lk(root, "history", "app:1").returncode == 0
    statuses = build(root, ctx, tmp_path / "m2.json")
    assert set(statuses.values()) == {"ran"}


def test_prompt_and_bad_flags(built: tuple[Path, Path]) -> None:
    root, _ = built
    out = lk(root, "prune", "--all", stdin="n\n")
    assert "Are you sure you want to continue? [y/N]" in out.stderr
    assert out.stdout == "Total reclaimed space: 0B\n"
    assert du(root)["snapshots"]["count"] > 0
    out = lk(root, "prune", "-f", "--filter", "label=x")
    assert out.returncode == 2 and "unsupported filter" in out.stderr
    out = lk(root, "prune", "-f", "--filter", "until=soon")
    assert out.returncode == 2 and "invalid duration" in out.stderr
    out = lk(root, "prune", "-f", "--keep-storage", "10XB")
    assert out.returncode == 2 and "invalid size" in out.stderr
