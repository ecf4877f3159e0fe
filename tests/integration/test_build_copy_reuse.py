"""Incremental COPY (worker/copyreuse.py) in real builds: after a context edit the COPY
re-copies only what changed, hardlinks the rest from its previous snapshot, and still
gives exactly the layer (diff_id) and image a full copy gives.

Each case builds v1, edits the context, builds v2 with reuse on; then builds v2 on a
fresh store with ``LAYERKIT_COPY_REUSE=0`` and compares. Runs with and without
SOURCE_DATE_EPOCH: without it, file and directory mtimes go into the layer tar as they
are, so a stale mtime would change the diff_id.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from support.buildenv import BuildEnv, Built, load_into, make_build_env

FILES = 2000
DOCKERFILE = "FROM busybox\nCOPY data /data\n"


@pytest.fixture
def build_env(tmp_path: Path, busybox_docker_archive: Path) -> BuildEnv:
    return make_build_env(tmp_path, busybox_docker_archive)


@pytest.fixture
def fresh_env(tmp_path: Path, busybox_docker_archive: Path, build_env: BuildEnv) -> BuildEnv:
    """A second, empty store (busybox loaded) for the from-scratch comparison build."""
    root = tmp_path / "fresh-store"
    load_into(root, busybox_docker_archive, "busybox:latest")
    return BuildEnv(root, tmp_path / "fresh")


def make_context(env: BuildEnv, dockerfile: str = DOCKERFILE) -> Path:
    ctx = env.tmp / "ctx"
    for i in range(FILES):
        path = ctx / "data" / f"d{i // 100:02d}" / f"f{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"file {i}\n" * (i % 7 + 1))
    os.symlink("f0001.txt", ctx / "data" / "d00" / "link")
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def copy_snapshot(root: Path) -> Path:
    """The own-files directory of the newest committed snapshot that holds /data."""
    snaps = [p for p in (root / "snapshots").iterdir()
             if (p / "committed").is_file() and (p / "fs" / "data").is_dir()]
    return max(snaps, key=lambda p: (p / "committed").stat().st_mtime_ns) / "fs"


def diff_ids(root: Path, built: Built) -> list[str]:
    blob = root / "blobs" / "sha256" / built.result.image_id.removeprefix("sha256:")
    ids: list[str] = json.loads(blob.read_text())["rootfs"]["diff_ids"]
    return ids


def layer_entries(root: Path, diff_id: str) -> list[tuple[object, ...]]:
    """Every entry of a layer blob: name, type, mode, owner, size, mtime, link, content."""
    blob = root / "blobs" / "sha256" / diff_id.removeprefix("sha256:")
    out: list[tuple[object, ...]] = []
    with tarfile.open(blob) as tar:
        for m in tar:
            data = tar.extractfile(m).read() if m.isreg() else b""  # type: ignore[union-attr]
            mtime = None if m.name.rstrip("/") == "data" else m.mtime
            out.append((m.name, m.type, m.mode, m.uid, m.gid, m.size, mtime, m.linkname,
                        data))
    assert len(out) > FILES
    return out


def inodes(fs: Path) -> dict[str, int]:
    out = {}
    for dirpath, _dirs, files in os.walk(fs):
        for name in files:
            path = Path(dirpath, name)
            out[os.fspath(path.relative_to(fs))] = path.lstat().st_ino
    return out


def rebuild_and_compare(
    build_env: BuildEnv, fresh_env: BuildEnv, monkeypatch: pytest.MonkeyPatch,
    edit: Callable[[Path], None], *, dockerfile: str = DOCKERFILE, exact: bool = True,
) -> tuple[Built, Path, Path]:
    """v1, edit, v2 (reuse) vs v2 from scratch; returns v2 and the old and new COPY dirs."""
    ctx = make_context(build_env, dockerfile)
    step = dockerfile.strip().splitlines()[-1]
    first = build_env.build(ctx)
    assert step in first.ran()
    old = copy_snapshot(build_env.root)
    edit(ctx)
    second = build_env.build(ctx)
    assert step in second.ran()
    new = copy_snapshot(build_env.root)
    assert new != old

    monkeypatch.setenv("LAYERKIT_COPY_REUSE", "0")
    shutil.copytree(ctx, fresh_env.tmp / "ctx", symlinks=True, copy_function=shutil.copy2)
    scratch = fresh_env.build(fresh_env.tmp / "ctx")
    monkeypatch.delenv("LAYERKIT_COPY_REUSE")
    if exact:
        assert diff_ids(build_env.root, second) == diff_ids(fresh_env.root, scratch)
    else:
        # Steps before the COPY (WORKDIR) made their layer "now": compare the COPY layers
        # entry by entry, the destination's own mtime (also "now" in a full copy) aside.
        mine = layer_entries(build_env.root, diff_ids(build_env.root, second)[-1])
        theirs = layer_entries(fresh_env.root, diff_ids(fresh_env.root, scratch)[-1])
        assert mine == theirs
    if os.environ.get("SOURCE_DATE_EPOCH"):
        assert second.result.image_id == scratch.result.image_id
    return second, old, new


@pytest.fixture(params=["", "1700000000"], ids=["mtimes", "epoch"])
def epoch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", request.param)
    else:
        monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    return str(request.param)


def test_one_file_edit_writes_one_file_and_matches_full_copy(
    build_env: BuildEnv, fresh_env: BuildEnv, monkeypatch: pytest.MonkeyPatch, epoch: str,
) -> None:
    edited = "data/d07/f0705.txt"

    def edit(ctx: Path) -> None:
        with (ctx / edited).open("a") as fh:
            fh.write("changed\n")

    second, old, new = rebuild_and_compare(build_env, fresh_env, monkeypatch, edit)
    assert edited in second.reason("COPY data /data")
    before, after = inodes(old), inodes(new)
    assert before.keys() == after.keys()
    rewritten = sorted(p for p in after if after[p] != before[p])
    assert rewritten == [edited]
    assert (new / edited).read_text().endswith("changed\n")
    assert not (old / edited).read_text().endswith("changed\n")  # the old layer is intact


def test_deleted_and_added_files_match_full_copy(
    build_env: BuildEnv, fresh_env: BuildEnv, monkeypatch: pytest.MonkeyPatch, epoch: str,
) -> None:
    def edit(ctx: Path) -> None:
        (ctx / "data" / "d03" / "f0300.txt").unlink()
        shutil.rmtree(ctx / "data" / "d19")
        (ctx / "data" / "d05" / "new.txt").write_text("new\n")
        (ctx / "data" / "newdir").mkdir()
        (ctx / "data" / "newdir" / "x").write_text("x\n")

    _second, old, new = rebuild_and_compare(build_env, fresh_env, monkeypatch, edit)
    after = inodes(new)
    assert "data/d03/f0300.txt" not in after and "data/d19/f1900.txt" not in after
    assert (new / "data" / "d05" / "new.txt").read_text() == "new\n"
    assert (old / "data" / "d03" / "f0300.txt").is_file()
    shared = sum(1 for p, ino in inodes(old).items() if after.get(p) == ino)
    assert shared == FILES + 1 - 1 - 100  # everything but the deleted ones


def test_chmod_of_a_file_matches_full_copy(
    build_env: BuildEnv, fresh_env: BuildEnv, monkeypatch: pytest.MonkeyPatch, epoch: str,
) -> None:
    path = "data/d01/f0100.txt"

    def edit(ctx: Path) -> None:
        os.chmod(ctx / path, 0o755)

    _second, old, new = rebuild_and_compare(build_env, fresh_env, monkeypatch, edit)
    assert stat.S_IMODE((new / path).stat().st_mode) == 0o755
    assert stat.S_IMODE((old / path).stat().st_mode) == 0o644
    assert (new / path).stat().st_ino != (old / path).stat().st_ino


def test_chown_chmod_flags_and_existing_destination_match_full_copy(
    build_env: BuildEnv, fresh_env: BuildEnv, monkeypatch: pytest.MonkeyPatch, epoch: str,
) -> None:
    # /data exists in the parent (WORKDIR) so the copy merges into it.
    dockerfile = ("FROM busybox\nWORKDIR /data\n"
                  "COPY --chown=1000:1000 --chmod=640 data /data\n")

    def edit(ctx: Path) -> None:
        (ctx / "data" / "d02" / "f0200.txt").write_text("other\n")

    _second, old, new = rebuild_and_compare(build_env, fresh_env, monkeypatch, edit,
                                            dockerfile=dockerfile, exact=bool(epoch))
    st = (new / "data" / "d02" / "f0201.txt").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o640)
    assert st.st_ino == (old / "data" / "d02" / "f0201.txt").stat().st_ino


def test_prune_of_the_old_snapshot_keeps_the_new_layer(
    build_env: BuildEnv, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = make_context(build_env)
    build_env.build(ctx)
    old = copy_snapshot(build_env.root)
    (ctx / "data" / "d00" / "f0000.txt").write_text("edited\n")
    build_env.build(ctx, tags=("reuse:2",))
    new = copy_snapshot(build_env.root)
    assert (new / "data" / "d10" / "f1000.txt").stat().st_nlink == 2
    from layerkit.worker.store import Store

    # What prune does to an unreferenced result: the snapshot and its directory go.
    Store(build_env.root).snapshots.remove(old.parent.name)
    assert not old.exists()
    kept = (ctx / "data" / "d10" / "f1000.txt").read_text()
    assert (new / "data" / "d10" / "f1000.txt").read_text() == kept
    assert (new / "data" / "d10" / "f1000.txt").stat().st_nlink == 1
    # The next build misses its record's snapshot and falls back to a full copy.
    (ctx / "data" / "d00" / "f0000.txt").write_text("again\n")
    again = build_env.build(ctx)
    assert "COPY data /data" in again.ran()
    out = build_env.tmp / "fs"
    build_env.build(ctx, outputs=(f"type=local,dest={out}",))
    assert (out / "data" / "d00" / "f0000.txt").read_text() == "again\n"
    assert (out / "data" / "d10" / "f1000.txt").read_text() == kept


def test_touched_file_is_copied_again_for_its_new_mtime(
    build_env: BuildEnv, fresh_env: BuildEnv, monkeypatch: pytest.MonkeyPatch, epoch: str,
) -> None:
    touched, edited = "data/d04/f0400.txt", "data/d06/f0600.txt"

    def edit(ctx: Path) -> None:
        os.utime(ctx / touched, ns=(1_600_000_000_000_000_000,) * 2)
        (ctx / edited).write_text("edited\n")

    _second, old, new = rebuild_and_compare(build_env, fresh_env, monkeypatch, edit)
    before, after = inodes(old), inodes(new)
    assert sorted(p for p in after if after[p] != before[p]) == [touched, edited]


def test_layer_tar_copies_unchanged_entries_from_the_old_layer_byte_for_byte(
    build_env: BuildEnv,
) -> None:
    from layerkit.snapshot.tarwriter import LayerReuse
    from layerkit.worker.store import Store

    root = build_env.root
    ctx = make_context(build_env)
    first = build_env.build(ctx)
    old, old_layer = copy_snapshot(root), diff_ids(root, first)[-1]
    (ctx / "data" / "d09" / "f0900.txt").write_text("edited\n")
    second = build_env.build(ctx)
    new, new_layer = copy_snapshot(root), diff_ids(root, second)[-1]
    blob = root / "blobs" / "sha256" / old_layer.removeprefix("sha256:")
    snaps = Store(root).snapshots

    reuse = LayerReuse(blob, old)
    spliced = snaps.diff(new.parent.name, build_env.tmp / "a.tar", reuse=reuse)
    assert reuse.spliced == FILES - 1  # every regular file but the edited one
    fresh = snaps.diff(new.parent.name, build_env.tmp / "b.tar")
    assert spliced.diff_id == fresh.diff_id == new_layer != old_layer

    # Not the same inodes (another tree): nothing is copied, the bytes are still right.
    elsewhere = build_env.tmp / "elsewhere"
    shutil.copytree(old, elsewhere, symlinks=True)
    other = LayerReuse(blob, elsewhere)
    assert snaps.diff(new.parent.name, build_env.tmp / "c.tar", reuse=other).diff_id == new_layer
    assert other.spliced == 0


def test_the_layer_entry_list_replaces_parsing_the_old_layer(
    build_env: BuildEnv, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each incremental COPY keeps where its layer's files are (``<key>.entries``), so
    the next one copies from the old layer without parsing it; the list must describe
    exactly what parsing finds, and a damaged list only costs the parse."""
    import json

    from layerkit.snapshot.tarwriter import LayerReuse

    root = build_env.root
    ctx = make_context(build_env)
    first = build_env.build(ctx)
    layer = diff_ids(root, first)[-1]
    (lists,) = (root / "copyreuse").glob("*.entries")
    doc = json.loads(lists.read_text())
    assert doc["diff_id"] == layer
    blob = root / "blobs" / "sha256" / layer.removeprefix("sha256:")
    parsed = LayerReuse(blob, root)._entries()
    assert len(parsed) == FILES
    kept = LayerReuse(blob, root, {n: tuple(e) for n, e in doc["entries"].items()})
    assert kept._entries() == parsed

    # A damaged list is ignored: the next build parses, and its result is still right.
    lists.write_text('{"diff_id": "' + layer + '", "entries": {"x": [1]}}')
    (ctx / "data" / "d01" / "f0100.txt").write_text("edited\n")
    second = diff_ids(root, build_env.build(ctx))[-1]
    assert json.loads(lists.read_text())["diff_id"] == second  # replaced by the new layer's
    monkeypatch.setenv("LAYERKIT_COPY_REUSE", "0")
    assert diff_ids(root, build_env.build(ctx, no_cache=True))[-1] == second
