"""The overlayfs snapshotter on a real kernel: stacking, diffs (whiteouts,
opaque dirs, copied-up dirs, hardlinks, xattrs), mount option limits,
crash garbage and removal. Needs root."""

from __future__ import annotations

import os
import shutil
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_executor_support import busybox_layer, layer_names, require_root

from layerkit.errors import BuildError
from layerkit.snapshot import Snapshotter, mounted


@pytest.fixture(scope="module")
def base_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    return busybox_layer(tmp_path_factory.mktemp("layers") / "base.tar")


@pytest.fixture
def snap(tmp_path: Path) -> Iterator[Snapshotter]:
    require_root()
    yield Snapshotter(tmp_path / "root", driver="overlayfs")


def commit_base(snap: Snapshotter, base_tar: Path) -> str:
    snap.prepare("base")
    snap.apply("base", base_tar)
    return snap.commit("base")


def test_stacked_snapshots_hold_only_their_own_files(
    snap: Snapshotter, base_tar: Path, tmp_path: Path
) -> None:
    base = commit_base(snap, base_tar)
    with mounted(snap.prepare("one", [base]), tmp_path / "m1") as root:
        (root / "a").write_text("hi\n")
        (root / "etc" / "x").unlink()
        (root / "d").mkdir()
    one = snap.commit("one")
    assert sorted(os.listdir(snap.fs(one))) == ["a", "d", "etc"]  # no bin/busybox copy
    with mounted(snap.prepare("two", [one]), tmp_path / "m2") as root:
        assert (root / "a").read_text() == "hi\n"
        assert (root / "bin" / "busybox").is_file()
        assert not (root / "etc" / "x").exists()
        (root / "b").write_text("two")
    two = snap.commit("two")
    assert snap.stack(two) == [base, one, two]
    names = layer_names(snap.diff(one, tmp_path / "one.tar").path)
    assert {"a", "etc/.wh.x", "d"} <= set(names)
    assert names["d"].isdir()
    assert "bin/busybox" not in names
    assert sorted(layer_names(snap.diff(two, tmp_path / "two.tar").path)) == ["b"]


def test_opaque_directory_and_reapply(snap: Snapshotter, base_tar: Path, tmp_path: Path) -> None:
    base = commit_base(snap, base_tar)
    with mounted(snap.prepare("op", [base]), tmp_path / "m") as root:
        shutil.rmtree(root / "var" / "lib" / "data")
        (root / "var" / "lib" / "data").mkdir()
        (root / "var" / "lib" / "data" / "new").write_text("n")
    op = snap.commit("op")
    layer = snap.diff(op, tmp_path / "op.tar").path
    names = layer_names(layer)
    assert "var/lib/data/.wh..wh..opq" in names
    assert "var/lib/data/new" in names
    assert "var/lib/data/keep" not in names
    # The same tar applied as a downloaded layer gives the same merged view.
    snap.prepare("again", [base])
    snap.apply("again", layer)
    again = snap.commit("again")
    with mounted(snap.view(again), tmp_path / "v") as root:
        assert sorted(os.listdir(root / "var" / "lib" / "data")) == ["new"]
        assert (root / "bin" / "busybox").is_file()


def test_copied_up_parent_dirs_are_not_in_the_diff(
    snap: Snapshotter, base_tar: Path, tmp_path: Path
) -> None:
    base = commit_base(snap, base_tar)
    with mounted(snap.prepare("edit", [base]), tmp_path / "m") as root:
        (root / "var" / "lib" / "data" / "keep").write_text("changed")
    edit = snap.commit("edit")
    assert (snap.fs(edit) / "var" / "lib").is_dir()  # overlay copied the parents up
    assert sorted(layer_names(snap.diff(edit, tmp_path / "e.tar").path)) == ["var/lib/data/keep"]


def test_hardlinks_modes_and_capabilities(
    snap: Snapshotter, base_tar: Path, tmp_path: Path
) -> None:
    base = commit_base(snap, base_tar)
    # vfs_cap_data v2: magic|effective, permitted = CAP_NET_BIND_SERVICE.
    caps = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)
    with mounted(snap.prepare("m", [base]), tmp_path / "m") as root:
        (root / "h1").write_text("same inode")
        os.link(root / "h1", root / "h2")
        (root / "suid").write_text("s")
        os.chown(root / "suid", 1234, 2345)
        os.chmod(root / "suid", 0o4755)
        (root / "capped").write_text("c")
        os.setxattr(root / "capped", "security.capability", caps)
        os.symlink("/bin/busybox", root / "sl")
    sid = snap.commit("m")
    names = layer_names(snap.diff(sid, tmp_path / "m.tar").path)
    assert names["h2"].islnk() and names["h2"].linkname == "h1"
    assert names["suid"].mode == 0o4755
    assert (names["suid"].uid, names["suid"].gid) == (1234, 2345)
    assert names["capped"].pax_headers["SCHILY.xattr.security.capability"].encode(
        "utf-8", "surrogateescape") == caps
    assert names["sl"].issym() and names["sl"].linkname == "/bin/busybox"
    assert not any(k.startswith("SCHILY.xattr.trusted.overlay")
                   for m in names.values() for k in m.pax_headers)


def _chain(snap: Snapshotter, base: str, depth: int, tmp_path: Path) -> list[str]:
    ids = [base]
    for i in range(depth):
        with mounted(snap.prepare(f"k{i}", [ids[-1]]), tmp_path / f"c{i}") as root:
            (root / f"file{i}").write_text(str(i))
            if i:
                (root / f"file{i - 1}").unlink()
        ids.append(snap.commit(f"k{i}"))
    return ids


def test_relative_paths_when_absolute_options_are_too_long(
    tmp_path: Path, base_tar: Path
) -> None:
    snap = Snapshotter(tmp_path / "root", driver="overlayfs")
    ids = _chain(snap, commit_base(snap, base_tar), 4, tmp_path)
    small = Snapshotter(tmp_path / "root", driver="overlayfs", max_mount_data=200)
    m = small.prepare("rel", [ids[-1]])
    assert m.chdir == str(tmp_path / "root" / "snapshots")
    assert all(not o.startswith("lowerdir=/") for o in m.options)
    with mounted(m, tmp_path / "mr") as root:
        assert sorted(p for p in os.listdir(root) if p.startswith("file")) == ["file3"]


def test_flattening_when_even_relative_options_are_too_long(
    tmp_path: Path, base_tar: Path
) -> None:
    snap = Snapshotter(tmp_path / "root", driver="overlayfs")
    ids = _chain(snap, commit_base(snap, base_tar), 8, tmp_path)
    # (A writable mount may also carry ",volatile": 9 bytes of the budget.)
    tiny = Snapshotter(tmp_path / "root", driver="overlayfs", max_mount_data=160)
    m = tiny.prepare("flat", [ids[-1]])
    lower = next(o for o in m.options if o.startswith("lowerdir="))
    assert "flat-" in lower
    assert len(m.data()) <= 160
    with mounted(m, tmp_path / "mf") as root:
        assert sorted(p for p in os.listdir(root) if p.startswith("file")) == ["file7"]
        assert (root / "bin" / "busybox").is_file()
        assert (root / "etc" / "x").is_file()
    flats = [p for p in (tmp_path / "root" / "snapshots").iterdir()
             if p.name.startswith("flat-")]
    assert flats and all((p / "committed").is_file() for p in flats)
    # The flat copies are reused, not rebuilt, by the next prepare.
    again = tiny.prepare("flat2", [ids[-1]])
    assert next(o for o in again.options if o.startswith("lowerdir=")) == lower
    assert len([p for p in (tmp_path / "root" / "snapshots").iterdir()
                if p.name.startswith("flat-")]) == len(flats)


def test_uncommitted_leftovers_are_garbage_on_restart(tmp_path: Path, base_tar: Path) -> None:
    first = Snapshotter(tmp_path / "root", driver="overlayfs")
    base = commit_base(first, base_tar)
    first.prepare("live")  # held by this (live) Snapshotter's lock
    crashed = tmp_path / "root" / "snapshots" / "0123456789ab"
    (crashed / "fs").mkdir(parents=True)
    (crashed / "lock").write_text("")
    second = Snapshotter(tmp_path / "root", driver="overlayfs")
    assert not crashed.exists()
    assert second.committed() == [base]
    live_dirs = [p for p in (tmp_path / "root" / "snapshots").iterdir()
                 if p.name not in (base, ".empty")]
    assert len(live_dirs) == 1 and live_dirs[0] / "fs" == first.fs("live")


def test_remove_refuses_parents_and_drops_marker(tmp_path: Path, base_tar: Path) -> None:
    snap = Snapshotter(tmp_path / "root", driver="overlayfs")
    base = commit_base(snap, base_tar)
    snap.prepare("c", [base])
    child = snap.commit("c")
    with pytest.raises(BuildError) as info:
        snap.remove(base)
    assert child in info.value.message
    snap.remove(child)
    snap.remove(base)
    assert snap.committed() == []
    with pytest.raises(BuildError):
        snap.prepare("x", [base])


def test_active_keys_are_unique_and_views_are_read_only(
    snap: Snapshotter, base_tar: Path, tmp_path: Path
) -> None:
    base = commit_base(snap, base_tar)
    snap.prepare("k", [base])
    with pytest.raises(BuildError):
        snap.prepare("k", [base])
    snap.remove("k")
    with mounted(snap.view(base), tmp_path / "v") as root:
        assert (root / "bin" / "busybox").is_file()
        with pytest.raises(OSError):
            (root / "new").write_text("x")
    st = os.stat(snap.fs(base) / "tmp")
    assert stat.S_IMODE(st.st_mode) == 0o1777


def test_driver_choice_can_be_forced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_root()
    assert Snapshotter(tmp_path / "auto").driver == "overlayfs"  # probed: works here
    monkeypatch.setenv("LAYERKIT_SNAPSHOTTER", "naive")
    assert Snapshotter(tmp_path / "forced").driver == "naive"
    monkeypatch.setenv("LAYERKIT_SNAPSHOTTER", "zfs")
    with pytest.raises(BuildError) as info:
        Snapshotter(tmp_path / "bad")
    assert info.value.hint and "naive" in info.value.hint
