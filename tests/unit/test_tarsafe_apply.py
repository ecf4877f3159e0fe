"""Safe unpacking of untrusted layer tars: crafted malicious members must be
refused or neutralised, never written outside the destination."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerkit.errors import BuildError
from layerkit.snapshot.apply import apply_layer

Member = tuple[str, bytes, bytes | None, str]  # name, type, data, linkname


def make_tar(members: list[Member], *, pax: dict[str, dict[str, str]] | None = None,
             modes: dict[str, int] | None = None) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, data, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            info.mode = (modes or {}).get(name, 0o755 if kind == tarfile.DIRTYPE else 0o644)
            info.mtime = 1_500_000_000
            if pax and name in pax:
                info.pax_headers = pax[name]
            if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                info.devmajor, info.devminor = 1, 3
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def reg(name: str, data: bytes = b"x") -> Member:
    return (name, tarfile.REGTYPE, data, "")


def sym(name: str, target: str) -> Member:
    return (name, tarfile.SYMTYPE, None, target)


def hard(name: str, target: str) -> Member:
    return (name, tarfile.LNKTYPE, None, target)


def dirm(name: str) -> Member:
    return (name, tarfile.DIRTYPE, None, "")


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(outer, dest): anything appearing in outer but outside dest is an escape."""
    dest = tmp_path / "dest"
    dest.mkdir()
    (tmp_path / "victim").write_text("original")
    return tmp_path, dest


def outside_listing(outer: Path, dest: Path) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(outer):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            if dest not in path.parents and path != dest:
                found.add(str(path.relative_to(outer)))
    return found


def test_dotdot_escape_is_refused_with_member_name(sandbox: tuple[Path, Path]) -> None:
    outer, dest = sandbox
    with pytest.raises(BuildError) as info:
        apply_layer(make_tar([reg("../victim", b"pwned")]), dest, whiteouts="delete")
    assert "../victim" in info.value.message
    assert info.value.hint
    assert (outer / "victim").read_text() == "original"


def test_dotdot_inside_the_root_is_folded(sandbox: tuple[Path, Path]) -> None:
    _outer, dest = sandbox
    apply_layer(make_tar([dirm("a"), reg("a/../b", b"ok")]), dest, whiteouts="delete")
    assert (dest / "b").read_bytes() == b"ok"


def test_absolute_names_are_stripped(sandbox: tuple[Path, Path]) -> None:
    outer, dest = sandbox
    apply_layer(make_tar([reg(str(outer / "victim"), b"inside")]), dest, whiteouts="delete")
    assert (outer / "victim").read_text() == "original"
    assert (dest / str(outer / "victim").lstrip("/")).read_bytes() == b"inside"


def test_write_through_planted_absolute_symlink_stays_inside(sandbox: tuple[Path, Path]) -> None:
    outer, dest = sandbox
    tar = make_tar([sym("evil", str(outer)), reg("evil/victim", b"pwned")])
    apply_layer(tar, dest, whiteouts="delete")
    assert (outer / "victim").read_text() == "original"
    # The write was re-rooted: <dest>/<outer>/victim, as the container would see it.
    assert (dest / str(outer).lstrip("/") / "victim").read_bytes() == b"pwned"
    assert os.readlink(dest / "evil") == str(outer)


def test_write_through_planted_relative_symlink_stays_inside(sandbox: tuple[Path, Path]) -> None:
    outer, dest = sandbox
    tar = make_tar([sym("up", "../../../../.."), reg("up/victim", b"pwned")])
    apply_layer(tar, dest, whiteouts="delete")
    assert (outer / "victim").read_text() == "original"
    assert (dest / "victim").read_bytes() == b"pwned"


def test_final_symlink_is_replaced_not_followed(sandbox: tuple[Path, Path]) -> None:
    outer, dest = sandbox
    tar = make_tar([sym("f", str(outer / "victim")), reg("f", b"new")])
    apply_layer(tar, dest, whiteouts="delete")
    assert (outer / "victim").read_text() == "original"
    assert not (dest / "f").is_symlink()
    assert (dest / "f").read_bytes() == b"new"


def test_directory_replaced_by_escaping_symlink_keeps_outside_untouched(
    sandbox: tuple[Path, Path]
) -> None:
    outer, dest = sandbox
    (outer / "a").mkdir()
    os.utime(outer / "a", (5, 5))
    apply_layer(make_tar([dirm("b/a"), sym("b", ".."), dirm("c/d"), reg("c", b"file")]),
                dest, whiteouts="delete")
    assert os.stat(outer / "a").st_mtime == 5
    assert os.readlink(dest / "b") == ".." and (dest / "c").is_file()


def test_hardlink_outside_root_is_refused(sandbox: tuple[Path, Path]) -> None:
    outer, dest = sandbox
    with pytest.raises(BuildError) as info:
        apply_layer(make_tar([hard("h", "../victim")]), dest, whiteouts="delete")
    assert "h" in info.value.message
    assert outside_listing(outer, dest) == {"victim"}


def test_hardlink_through_symlink_stays_inside(sandbox: tuple[Path, Path]) -> None:
    outer, dest = sandbox
    tar = make_tar([sym("l", str(outer)), reg("victim", b"in"), hard("h", "l/victim")])
    with pytest.raises(BuildError):
        apply_layer(tar, dest, whiteouts="delete")  # <dest>/<outer>/victim does not exist
    assert os.stat(outer / "victim").st_nlink == 1


def test_hardlink_within_layer_shares_inode(sandbox: tuple[Path, Path]) -> None:
    _outer, dest = sandbox
    apply_layer(make_tar([reg("a", b"data"), hard("b", "a")]), dest, whiteouts="delete")
    assert os.stat(dest / "a").st_ino == os.stat(dest / "b").st_ino


def test_device_nodes_are_skipped_with_warning(sandbox: tuple[Path, Path]) -> None:
    _outer, dest = sandbox
    warnings: list[str] = []
    tar = make_tar([("dev/mem", tarfile.CHRTYPE, None, ""), ("sda", tarfile.BLKTYPE, None, "")])
    result = apply_layer(tar, dest, whiteouts="delete", on_warning=warnings.append)
    assert not os.path.lexists(dest / "dev" / "mem")
    assert not os.path.lexists(dest / "sda")
    assert len(warnings) == 2 and "dev/mem" in warnings[0]
    assert result.warnings == warnings


def test_duplicate_entries_last_wins(sandbox: tuple[Path, Path]) -> None:
    _outer, dest = sandbox
    tar = make_tar([reg("f", b"one"), dirm("d"), reg("d/x"), reg("f", b"two"), reg("d", b"file")])
    apply_layer(tar, dest, whiteouts="delete")
    assert (dest / "f").read_bytes() == b"two"
    assert (dest / "d").is_file()


def test_modes_including_special_bits_are_kept(sandbox: tuple[Path, Path]) -> None:
    _outer, dest = sandbox
    tar = make_tar([reg("suid"), reg("sgid"), dirm("sticky")],
                   modes={"suid": 0o4755, "sgid": 0o2755, "sticky": 0o1777})
    apply_layer(tar, dest, whiteouts="delete")
    assert stat.S_IMODE(os.stat(dest / "suid").st_mode) == 0o4755
    assert stat.S_IMODE(os.stat(dest / "sgid").st_mode) == 0o2755
    assert stat.S_IMODE(os.stat(dest / "sticky").st_mode) == 0o1777


def test_overlay_xattrs_from_a_layer_are_ignored(sandbox: tuple[Path, Path]) -> None:
    _outer, dest = sandbox
    warnings: list[str] = []
    pax = {"f": {"SCHILY.xattr.trusted.overlay.redirect": "/etc"}}
    apply_layer(make_tar([reg("f")], pax=pax), dest, whiteouts="delete",
                on_warning=warnings.append)
    assert any("trusted.overlay.redirect" in w for w in warnings)
    with pytest.raises(OSError):
        os.getxattr(dest / "f", "trusted.overlay.redirect")


def test_whiteouts_delete_in_naive_mode(sandbox: tuple[Path, Path]) -> None:
    _outer, dest = sandbox
    (dest / "gone").write_text("x")
    (dest / "dir").mkdir()
    (dest / "dir" / "old").write_text("x")
    tar = make_tar([reg(".wh.gone", b""), dirm("dir"), reg("dir/new"),
                    reg("dir/.wh..wh..opq", b"")])
    apply_layer(tar, dest, whiteouts="delete")
    assert not (dest / "gone").exists()
    assert sorted(os.listdir(dest / "dir")) == ["new"]  # same-layer entries survive opq


def test_whiteout_cannot_delete_outside(sandbox: tuple[Path, Path]) -> None:
    outer, dest = sandbox
    tar = make_tar([sym("l", str(outer)), reg("l/.wh.victim", b"")])
    apply_layer(tar, dest, whiteouts="delete")
    assert (outer / "victim").read_text() == "original"


def test_invalid_whiteout_name_is_refused(sandbox: tuple[Path, Path]) -> None:
    _outer, dest = sandbox
    with pytest.raises(BuildError):
        apply_layer(make_tar([reg(".wh..", b"")]), dest, whiteouts="delete")


@pytest.mark.skipif(os.geteuid() != 0, reason="overlay whiteouts need mknod and trusted xattrs")
def test_whiteouts_become_overlay_markers(sandbox: tuple[Path, Path]) -> None:
    _outer, dest = sandbox
    tar = make_tar([reg(".wh.gone", b""), dirm("dir"), reg("dir/.wh..wh..opq", b"")])
    apply_layer(tar, dest, whiteouts="overlay")
    st_gone = os.lstat(dest / "gone")
    assert stat.S_ISCHR(st_gone.st_mode) and st_gone.st_rdev == 0
    assert os.getxattr(dest / "dir", "trusted.overlay.opaque") == b"y"


def test_gzip_layers_are_detected(sandbox: tuple[Path, Path]) -> None:
    import gzip

    _outer, dest = sandbox
    data = gzip.compress(make_tar([reg("z", b"zipped")]).getvalue())
    apply_layer(io.BytesIO(data), dest, whiteouts="delete")
    assert (dest / "z").read_bytes() == b"zipped"


_parts = st.sampled_from(["a", "b", "..", ".", "l", "", "victim"])
_names = st.lists(_parts, min_size=1, max_size=5).map("/".join)
_member = st.one_of(
    _names.map(lambda n: reg(n, b"pwned")),
    _names.map(dirm),
    st.tuples(_names, st.sampled_from(["..", "../..", "/", "/tmp", "a/../.."])).map(
        lambda t: sym(t[0], t[1])),
    st.tuples(_names, _names).map(lambda t: hard(t[0], t[1])),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members=st.lists(_member, min_size=1, max_size=8))
def test_fuzz_nothing_escapes(tmp_path: Path, members: list[Member]) -> None:
    import shutil
    import tempfile

    outer = Path(tempfile.mkdtemp(dir=tmp_path))
    dest = outer / "dest"
    dest.mkdir()
    (outer / "victim").write_text("original")
    with contextlib.suppress(BuildError):
        apply_layer(make_tar(members), dest, whiteouts="delete")
    assert (outer / "victim").read_text() == "original"
    assert outside_listing(outer, dest) == {"victim"}
    shutil.rmtree(outer)
