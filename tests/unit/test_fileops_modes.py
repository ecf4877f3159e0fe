"""Ownership, modes, times and xattrs written by layerkit.fileops (BuildKit cases cited)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from layerkit.context.dockerignore import IgnoreRules
from layerkit.fileops import FileOpError, apply_file_op, parse_chmod
from layerkit.graph.ops import CopyAction, FileOp, MkfileAction

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
PASSWD = "root:x:0:0::/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\nuser:x:1000:1000::/:/bin/sh\n"
GROUP = "root:x:0:\ndaemon:x:1:\nuser:x:1000:\nstaff:x:50:\n"


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "root/etc").mkdir(parents=True)
    (tmp_path / "root/etc/passwd").write_text(PASSWD)
    (tmp_path / "root/etc/group").write_text(GROUP)
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx/foo").write_text("foo")
    return tmp_path


def run(tmp: Path, *actions: CopyAction | MkfileAction, context: bool = True,
        epoch: int | None = None) -> None:
    apply_file_op(FileOp(tuple(actions)), dest_root=tmp / "root", inputs={1: tmp / "ctx"},
                  ignore=IgnoreRules() if context else None, epoch=epoch)


def owner(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


@needs_root
def test_context_files_become_root_owned(tmp: Path) -> None:
    os.chown(tmp / "ctx/foo", 1234, 5678)
    run(tmp, CopyAction(1, ("foo",), "/a"))
    assert owner(tmp / "root/a") == (0, 0)


@needs_root
def test_stage_files_keep_ids_testCopyChownExistingDir(tmp: Path) -> None:
    os.chown(tmp / "ctx/foo", 1234, 5678)
    run(tmp, CopyAction(1, ("foo",), "/a"), context=False)
    assert owner(tmp / "root/a") == (1234, 5678)


@needs_root
def test_chown_existing_dir_keeps_owner_testCopyChownExistingDir(tmp: Path) -> None:
    (tmp / "root/existing").mkdir()
    os.chown(tmp / "root/existing", 7, 7)
    (tmp / "ctx/dir/sub").mkdir(parents=True)
    (tmp / "ctx/dir/sub/f").write_text("f")
    run(tmp, CopyAction(1, ("dir",), "/existing/", chown="1000:1000"),
        CopyAction(1, ("dir",), "/new/deeper", chown="1000:1000"),
        CopyAction(1, ("foo",), "/plain/new/"))
    assert owner(tmp / "root/existing") == (7, 7)
    assert owner(tmp / "root/existing/sub") == (1000, 1000)
    assert owner(tmp / "root/existing/sub/f") == (1000, 1000)
    assert owner(tmp / "root/new") == (1000, 1000)  # implied parents are chowned too
    assert owner(tmp / "root/new/deeper") == (1000, 1000)
    assert owner(tmp / "root/plain/new") == (0, 0)  # without --chown: 0:0 0755
    assert os.stat(tmp / "root/plain/new").st_mode & 0o7777 == 0o755


@needs_root
@pytest.mark.parametrize(("chown", "ids"), [
    ("daemon", (1, 1)), ("1:staff", (1, 50)), ("user:daemon", (1000, 1)),
    ("4242", (4242, 4242)), ("4242:4343", (4242, 4343)),
])
def test_chown_forms_testCopyChown(tmp: Path, chown: str, ids: tuple[int, int]) -> None:
    run(tmp, CopyAction(1, ("foo",), "/out/", chown=chown))
    assert owner(tmp / "root/out/foo") == ids


@pytest.mark.parametrize("chown", ["nosuchuser", "user:nosuchgroup"])
def test_chown_unknown_name_fails(tmp: Path, chown: str) -> None:
    with pytest.raises(FileOpError, match="unable to find"):
        run(tmp, CopyAction(1, ("foo",), "/out/", chown=chown))


@pytest.mark.parametrize("chmod", ["64a", "10000", "u+q", "8"])
def test_invalid_chmod_testCopyInvalidChmod(tmp: Path, chmod: str) -> None:
    message = (f"invalid chmod parameter: '{chmod}'. it should be octal string and between "
               "0 and 07777")
    with pytest.raises(FileOpError, match=re.escape(message)):
        run(tmp, CopyAction(1, ("foo",), "/out/", chmod=chmod))


@pytest.mark.parametrize(("chmod", "mode"), [("0644", 0o644), ("777", 0o777), ("0", 0),
                                              ("4755", 0o4755)])
def test_octal_chmod_testCopyChmod(tmp: Path, chmod: str, mode: int) -> None:
    run(tmp, CopyAction(1, ("foo",), "/out/", chmod=chmod))
    assert os.stat(tmp / "root/out/foo").st_mode & 0o7777 == mode


def test_chmod_applies_to_implied_parents_testCopyChmod(tmp: Path) -> None:
    run(tmp, CopyAction(1, ("foo",), "/parent/foo", chmod="777"),
        CopyAction(1, ("foo",), "/parent/sub/foo", chmod="770"))
    assert os.stat(tmp / "root/parent").st_mode & 0o7777 == 0o777
    assert os.stat(tmp / "root/parent/sub").st_mode & 0o7777 == 0o770


@pytest.mark.skipif(shutil.which("chmod") is None, reason="needs chmod(1) as the oracle")
@pytest.mark.parametrize("spec", ["go-w", "u=rw,g=r,o=r", "a+X", "u+rw,g+r,o-x,o+w",
                                  "g=u", "u+s,g+s", "+t", "a=rX", "o=", "ug+x,o-r"])
def test_symbolic_chmod_matches_chmod_testChmodNonOctal(tmp: Path, spec: str) -> None:
    src = tmp / "ctx/src"
    for name, mode in (("exe", 0o751), ("plain", 0o640), ("dir/", 0o750)):
        path = src / name.rstrip("/")
        if name.endswith("/"):
            path.mkdir(parents=True)
        else:
            src.mkdir(exist_ok=True)
            path.write_text(name)
        os.chmod(path, mode)
    oracle = tmp / "oracle"
    shutil.copytree(src, oracle)
    for child in oracle.iterdir():
        subprocess.run(["chmod", spec, str(child)], check=True)
    run(tmp, CopyAction(1, ("src",), "/out/", chmod=spec), context=False)
    for child in oracle.iterdir():
        want = os.stat(child).st_mode & 0o7777
        got = os.stat(tmp / "root/out" / child.name).st_mode & 0o7777
        assert got == want, f"{spec} on {child.name}: {oct(got)} != {oct(want)}"


def test_parse_chmod_symbolic_x_rule() -> None:
    spec = parse_chmod("a+X")
    assert spec is not None
    assert spec.apply(0o100644, is_dir=False) == 0o644
    assert spec.apply(0o100744, is_dir=False) == 0o755
    assert spec.apply(0o40700, is_dir=True) == 0o711


def test_special_bits_preserved(tmp: Path) -> None:
    for name, mode in (("suid", 0o4755), ("sgid", 0o2755), ("sticky/", 0o1777)):
        path = tmp / "ctx/special" / name.rstrip("/")
        path.parent.mkdir(exist_ok=True)
        path.mkdir() if name.endswith("/") else path.write_text("x")
        os.chmod(path, mode)
    run(tmp, CopyAction(1, ("special",), "/s"), context=False)
    assert os.stat(tmp / "root/s/suid").st_mode & 0o7777 == 0o4755
    assert os.stat(tmp / "root/s/sgid").st_mode & 0o7777 == 0o2755
    assert os.stat(tmp / "root/s/sticky").st_mode & 0o7777 == 0o1777


def test_mtime_preserved_and_clamped(tmp: Path) -> None:
    (tmp / "ctx/d").mkdir()
    (tmp / "ctx/d/old").write_text("o")
    (tmp / "ctx/d/new").write_text("n")
    os.utime(tmp / "ctx/d/old", (1_000_000, 1_000_000))
    os.utime(tmp / "ctx/d/new", (2_000_000_000, 2_000_000_000))
    os.utime(tmp / "ctx/d", (1_500_000, 1_500_000))
    run(tmp, CopyAction(1, ("d",), "/plain"))
    assert os.stat(tmp / "root/plain/old").st_mtime == 1_000_000
    assert os.stat(tmp / "root/plain").st_mtime == 1_500_000  # dir time set after children
    run(tmp, CopyAction(1, ("d",), "/clamped"), epoch=1_700_000_000)
    assert os.stat(tmp / "root/clamped/old").st_mtime == 1_000_000
    assert os.stat(tmp / "root/clamped/new").st_mtime == 1_700_000_000


def _xattrs_supported(path: Path) -> bool:
    try:
        os.setxattr(path, "user.probe", b"1")
    except OSError:
        return False
    return True


def test_xattrs_copied(tmp: Path) -> None:
    f = tmp / "ctx/foo"
    if not _xattrs_supported(f) or not _xattrs_supported(tmp / "root"):
        pytest.skip("filesystem without user xattrs")
    os.setxattr(f, "user.note", b"hello")
    run(tmp, CopyAction(1, ("foo",), "/x"))
    assert os.getxattr(tmp / "root/x", "user.note") == b"hello"


@needs_root
def test_security_capability_survives_chown(tmp: Path) -> None:
    f = tmp / "ctx/foo"
    # vfs_cap_data v2 for cap_net_bind_service (bit 10), effective.
    cap = bytes.fromhex("01000002" "00040000" "00000000" "00000000" "00000000")
    try:
        os.setxattr(f, "security.capability", cap)
    except OSError:
        pytest.skip("cannot set security.capability here")
    run(tmp, CopyAction(1, ("foo",), "/cap", chown="1000"))
    assert os.getxattr(tmp / "root/cap", "security.capability") == cap


@needs_root
def test_heredoc_file_modes_testCopyHeredoc(tmp: Path) -> None:
    run(tmp, MkfileAction("/single", "hello\n"),
        MkfileAction("/double/EOF", "a\n", chmod="777"),
        MkfileAction("/double/EOF2", "b\n", chmod="0644", chown="user:user"))
    assert (tmp / "root/single").read_text() == "hello\n"
    assert os.stat(tmp / "root/single").st_mode & 0o7777 == 0o644
    assert os.stat(tmp / "root/double/EOF").st_mode & 0o7777 == 0o777
    assert owner(tmp / "root/double/EOF2") == (1000, 1000)


def test_heredoc_epoch_sets_time(tmp: Path) -> None:
    run(tmp, MkfileAction("/f", "x"), epoch=1_234_567)
    assert os.stat(tmp / "root/f").st_mtime == 1_234_567
