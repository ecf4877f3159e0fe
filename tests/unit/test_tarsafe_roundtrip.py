"""Naive diff → layer tar → safe apply reproduces the changed tree, and the
tar is deterministic (order, digest, clamped mtimes, hardlinks)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from layerkit.snapshot.apply import apply_layer
from layerkit.snapshot.diff import diff_naive


def snapshot_tree(root: Path) -> dict[str, tuple[str, int, str]]:
    """path → (kind, mode, content-or-target) for comparing trees."""
    out: dict[str, tuple[str, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", 0, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), "")
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), path.read_text())
    return out


def cp_a(src: Path, dst: Path) -> None:
    dst.mkdir()
    subprocess.run(["cp", "-a", f"{src}/.", f"{dst}/"], check=True)


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    old = tmp_path / "old"
    old.mkdir()
    (old / "keep").write_text("same")
    (old / "change").write_text("before")
    (old / "gone").write_text("bye")
    (old / "dir").mkdir()
    (old / "dir" / "inner").write_text("inner")
    (old / "olddir").mkdir()
    (old / "olddir" / "f").write_text("f")
    new = tmp_path / "new"
    cp_a(old, new)
    (new / "change").write_text("after!")
    (new / "gone").unlink()
    shutil.rmtree(new / "olddir")
    (new / "added").write_text("new file")
    os.chmod(new / "added", 0o4755)
    (new / "dir" / "link").symlink_to("../keep")
    (new / "hl1").write_text("linked")
    os.link(new / "hl1", new / "hl2")
    (new / "sub").mkdir(mode=0o2775)
    os.chmod(new / "sub", 0o2775)
    (new / "sub" / "x").write_text("x")
    return old, new


def test_roundtrip_reproduces_new_tree(tmp_path: Path, trees: tuple[Path, Path]) -> None:
    old, new = trees
    result = diff_naive(new, old, tmp_path / "layer.tar")
    target = tmp_path / "target"
    cp_a(old, target)
    apply_layer(result.path, target, whiteouts="delete")
    assert snapshot_tree(target) == snapshot_tree(new)
    assert os.stat(target / "hl1").st_ino == os.stat(target / "hl2").st_ino


def test_layer_lists_only_changes_in_order(tmp_path: Path, trees: tuple[Path, Path]) -> None:
    old, new = trees
    result = diff_naive(new, old, tmp_path / "layer.tar")
    with tarfile.open(result.path) as tf:
        members = tf.getmembers()
    names = [m.name for m in members]
    assert "keep" not in names and "dir/inner" not in names
    assert {".wh.gone", ".wh.olddir", "change", "added", "dir/link", "sub", "sub/x"} <= set(names)
    assert names.index("sub") < names.index("sub/x")
    kinds = {m.name: m for m in members}
    assert kinds["hl2"].islnk() and kinds["hl2"].linkname == "hl1"
    assert kinds["added"].mode == 0o4755
    assert all(m.uname == "" and m.gname == "" for m in members)


def test_diff_id_is_sha256_of_file_and_deterministic(
    tmp_path: Path, trees: tuple[Path, Path]
) -> None:
    old, new = trees
    first = diff_naive(new, old, tmp_path / "one.tar")
    second = diff_naive(new, old, tmp_path / "two.tar")
    data = first.path.read_bytes()
    assert first.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert first.size == len(data)
    assert first.diff_id == second.diff_id
    assert not (tmp_path / "one.tar.tmp").exists()


def test_source_date_epoch_clamps_mtimes(tmp_path: Path, trees: tuple[Path, Path]) -> None:
    old, new = trees
    os.utime(new / "change", (100, 100))  # older than the epoch: kept
    result = diff_naive(new, old, tmp_path / "l.tar", source_date_epoch=1000)
    with tarfile.open(result.path) as tf:
        mtimes = {m.name: m.mtime for m in tf.getmembers()}
    assert mtimes["change"] == 100
    assert mtimes["added"] == 1000
    assert max(mtimes.values()) == 1000


def test_empty_parent_gives_full_layer(tmp_path: Path, trees: tuple[Path, Path]) -> None:
    _old, new = trees
    result = diff_naive(new, None, tmp_path / "full.tar")
    target = tmp_path / "t"
    target.mkdir()
    apply_layer(result.path, target, whiteouts="delete")
    assert snapshot_tree(target) == snapshot_tree(new)
