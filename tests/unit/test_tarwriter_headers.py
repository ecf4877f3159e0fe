"""The layer writer's own header encoding gives tarfile's bytes, entry for entry.

``snapshot/tarwriter.LayerWriter`` encodes ordinary headers itself and hands the
rest to ``TarInfo.tobuf``; the whole layer must equal what
``tarfile.open(mode="w|", format=PAX_FORMAT)`` writes for the same entries, or
diff_ids would change with the code path taken.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerkit.snapshot.tarwriter import LayerWriter, read_xattrs, ustar_header

NAMES = st.one_of(
    st.text(alphabet="abcdefghij_-.0123456789", min_size=1, max_size=12),
    st.text(alphabet="xyz", min_size=95, max_size=120),  # around the 100-byte field
    st.sampled_from(["caf\u00e9", "\u65e5\u672c", "sp ace", "a\tb"]),
)
ENTRY = st.fixed_dictionaries({
    "name": NAMES,
    "kind": st.sampled_from(["file", "file", "dir", "symlink", "fifo", "hardlink"]),
    "size": st.sampled_from([0, 1, 511, 512, 513, 5000]),
    "mode": st.sampled_from([0o644, 0o755, 0o4755, 0o1777, 0o600]),
    "uid": st.sampled_from([0, 1000, 65534, 2**21 - 1, 2**21, 3_000_000]),
    "mtime": st.sampled_from([0, 1_700_000_000, 8**11 - 1, 8**11 + 5]),
    "target": st.one_of(st.just("t"), st.text(alphabet="lmn", min_size=99, max_size=110)),
    "xattr": st.booleans(),
})


def reference_layer(entries: list[tuple[str, Path, os.stat_result]]) -> bytes:
    """What the writer wrote before: every entry through tarfile."""
    out = io.BytesIO()
    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, path, s in entries:
            info = tarfile.TarInfo(name)
            info.mode = stat.S_IMODE(s.st_mode)
            info.uid, info.gid = s.st_uid, s.st_gid
            info.uname = info.gname = ""
            info.mtime = int(s.st_mtime)
            xattrs = read_xattrs(path)
            if xattrs:
                info.pax_headers = {"SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape")
                                    for k, v in xattrs.items()}
            if stat.S_ISREG(s.st_mode):
                key = (s.st_dev, s.st_ino)
                if s.st_nlink > 1 and key in links:
                    info.type, info.linkname = tarfile.LNKTYPE, links[key]
                    tar.addfile(info)
                    continue
                if s.st_nlink > 1:
                    links[key] = name
                info.size = s.st_size
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
                continue
            if stat.S_ISDIR(s.st_mode):
                info.type = tarfile.DIRTYPE
            elif stat.S_ISLNK(s.st_mode):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
            elif stat.S_ISFIFO(s.st_mode):
                info.type = tarfile.FIFOTYPE
            tar.addfile(info)
    return out.getvalue()


def make_entries(root: Path, specs: list[dict[str, object]]) -> list[tuple[str, Path,
                                                                           os.stat_result]]:
    made: list[tuple[str, Path, os.stat_result]] = []
    first_file: Path | None = None
    for i, spec in enumerate(specs):
        name = f"{i}-{spec['name']}"
        path = root / name
        kind = spec["kind"]
        if kind == "hardlink" and first_file is not None:
            os.link(first_file, path)
        elif kind == "dir":
            path.mkdir()
        elif kind == "symlink":
            path.symlink_to(str(spec["target"]))
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            path.write_bytes(os.urandom(int(spec["size"])))  # type: ignore[call-overload]
            first_file = first_file or path
        if kind != "symlink":
            os.chmod(path, int(spec["mode"]))  # type: ignore[call-overload]
            mtime = int(spec["mtime"])  # type: ignore[call-overload]
            os.utime(path, (mtime, mtime))
            if os.geteuid() == 0:
                uid = int(spec["uid"])  # type: ignore[call-overload]
                os.chown(path, uid, uid)
            if spec["xattr"] and kind in ("file", "dir"):
                os.setxattr(path, "user.layerkit", b"v\xff1")
        made.append((name, path, os.lstat(path)))
    return made


@settings(max_examples=150, deadline=None)
@given(st.lists(ENTRY, min_size=1, max_size=8))
def test_layers_equal_tarfiles_bytes(specs: list[dict[str, object]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        root.mkdir()
        entries = make_entries(root, specs)
        out = Path(tmp) / "layer.tar"
        with LayerWriter(out) as writer:
            for name, path, s in entries:
                writer.add(name, path, s)
        assert out.read_bytes() == reference_layer(entries)


def test_the_fast_header_is_taken_for_ordinary_entries() -> None:
    """If this fails every layer silently goes back to the slow encoder."""
    header = ustar_header("app/main.py", 0o644, 0, 0, 10, 1_700_000_000, tarfile.REGTYPE)
    assert header is not None and len(header) == tarfile.BLOCKSIZE
    info = tarfile.TarInfo("app/main.py")
    info.mode, info.size, info.mtime, info.uname, info.gname = 0o644, 10, 1_700_000_000, "", ""
    assert header == info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


@pytest.mark.parametrize(("name", "uid", "link"), [
    ("x" * 101, 0, ""), ("caf\u00e9", 0, ""), ("a", 8**7, ""), ("a", 0, "l" * 101),
])
def test_entries_needing_pax_records_are_left_to_tarfile(name: str, uid: int,
                                                         link: str) -> None:
    assert ustar_header(name, 0o644, uid, 0, 0, 0, tarfile.SYMTYPE, link) is None


def test_entry_positions_are_recorded_only_on_request(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a").write_bytes(b"x" * 700)
    s = os.lstat(tmp_path / "tree" / "a")
    for record in (False, True):
        out = tmp_path / f"layer-{record}.tar"
        with LayerWriter(out, record_entries=record) as writer:
            writer.add("a", tmp_path / "tree" / "a", s)
        assert writer.result is not None
        if not record:
            assert writer.result.entries == {}
            continue
        offset, length, *header, xattrs = writer.result.entries["a"]
        assert (offset, length) == (0, 512 + 1024)  # a header block, then 700 bytes padded
        with tarfile.open(out) as tar:
            member = tar.getmember("a")
        assert header == [member.mode, member.uid, member.gid, int(member.mtime), member.size]
        assert xattrs == {}
