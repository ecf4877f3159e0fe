"""COPY semantics of layerkit.fileops, one BuildKit integration case per test."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from layerkit.context.dockerignore import IgnoreRule, IgnoreRules
from layerkit.fileops import FileOpError, FileOpResult, apply_file_op
from layerkit.graph.ops import CopyAction, FileOp, MkdirAction


def tree(root: Path, spec: dict[str, str | None]) -> Path:
    """Create files ("content"), dirs (None, key ending '/') and links ("->target")."""
    root.mkdir(parents=True, exist_ok=True)
    for name, value in spec.items():
        path = root / name.rstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            path.mkdir(exist_ok=True)
        elif value is not None and value.startswith("->"):
            os.symlink(value[2:], path)
        else:
            path.write_text(value or "")
    return root


def copy(tmp: Path, sources: tuple[str, ...], dest: str, *, ignore: IgnoreRules | None = None,
         **kw: object) -> FileOpResult:
    action = CopyAction(input=1, sources=sources, dest=dest, **kw)  # type: ignore[arg-type]
    return apply_file_op(FileOp((action,)), dest_root=tmp / "root",
                         inputs={1: tmp / "ctx"}, ignore=ignore or IgnoreRules())


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    return tmp_path


def test_copy_wildcards_testCopyWildcards(tmp: Path) -> None:
    tree(tmp / "ctx", {"foo.go": "foo", "bar.go": "bar", "foo2.go": "foo2x",
                       "sub/dir1/dir2/foo": "deep", "x.txt": "x"})
    copy(tmp, ("*.go",), "/gofiles/")
    assert sorted(os.listdir(tmp / "root/gofiles")) == ["bar.go", "foo.go", "foo2.go"]
    copy(tmp, ("f*2.go",), "/renamed")  # one match to a file name: renamed
    assert (tmp / "root/renamed").read_text() == "foo2x"
    copy(tmp, ("sub/*",), "/subdest/")  # a matched directory copies its contents
    assert (tmp / "root/subdest/dir2/foo").read_text() == "deep"
    copy(tmp, ("sub/*/dir2/foo",), "/subdest2/")
    assert (tmp / "root/subdest2/foo").read_text() == "deep"
    copy(tmp, ("sub/*/dir2/foo",), "/subdest3")
    assert (tmp / "root/subdest3").read_text() == "deep"
    for i, form in enumerate(("sub/dir1/", "sub/dir1/.", "sub/dir1")):
        copy(tmp, (form,), f"/subdest{i + 4}")
        assert (tmp / f"root/subdest{i + 4}/dir2/foo").read_text() == "deep"
    copy(tmp, (".",), "/all/")
    assert (tmp / "root/all/sub/dir1/dir2/foo").is_file()


def test_empty_wildcard_with_other_source_testEmptyWildcard(tmp: Path) -> None:
    tree(tmp / "ctx", {"foo": "contents0"})
    copy(tmp, ("foo", "nomatch*"), "/")
    assert (tmp / "root/foo").read_text() == "contents0"


def test_only_wildcard_matching_nothing_fails(tmp: Path) -> None:
    tree(tmp / "ctx", {"foo": "x"})
    with pytest.raises(FileOpError, match="no source files"):
        copy(tmp, ("nomatch*",), "/")


def test_multiple_sources_need_directory_dest(tmp: Path) -> None:
    tree(tmp / "ctx", {"a": "1", "b": "2"})
    with pytest.raises(FileOpError, match="must be a directory and end with a /"):
        copy(tmp, ("a", "b"), "/dest")
    copy(tmp, ("a", "b"), "/dest/")
    assert sorted(os.listdir(tmp / "root/dest")) == ["a", "b"]


def test_copy_override_files_testCopyOverrideFiles(tmp: Path) -> None:
    tree(tmp / "ctx", {"sub/dir/foo": "one", "file": "f"})
    for _ in range(2):
        copy(tmp, ("sub",), "/out/")
        copy(tmp, ("file",), "/out/file")
    assert (tmp / "root/out/dir/foo").read_text() == "one"
    assert (tmp / "root/out/file").read_text() == "f"


def test_preserve_dest_dir_slash_testPreserveDestDirSlash(tmp: Path) -> None:
    tree(tmp / "ctx", {"testfile": "t"})
    copy(tmp, ("testfile",), "/sample/")
    assert (tmp / "root/sample/testfile").read_text() == "t"
    copy(tmp, ("testfile",), "/plain")
    assert (tmp / "root/plain").is_file()


@pytest.mark.parametrize("dest", ["", ".", "./"])
def test_empty_and_dot_dest_is_workdir_testCopyLinkEmptyDestDir(tmp: Path, dest: str) -> None:
    tree(tmp / "ctx", {"testfile": "t"})
    action = CopyAction(1, ("testfile",), dest, link=True)
    apply_file_op(FileOp((action,)), dest_root=tmp / "root", inputs={1: tmp / "ctx"},
                  workdir="/var/www")
    assert (tmp / "root/var/www/testfile").read_text() == "t"


def test_relative_dest_against_workdir_testCopyRelative(tmp: Path) -> None:
    tree(tmp / "ctx", {"foo": "f"})
    for dest, where in (("./bar/baz", "test1/test2/bar/baz"), ("../", "test1/foo")):
        apply_file_op(FileOp((CopyAction(1, ("foo",), dest),)), dest_root=tmp / "root",
                      inputs={1: tmp / "ctx"}, workdir="/test1/test2")
        assert (tmp / "root" / where).read_text() == "f"


def test_copy_dot_dest_with_link_testCopyLinkDotDestDir(tmp: Path) -> None:
    tree(tmp / "ctx", {"testfile": "t"})
    # The lowering turns "." under WORKDIR /var/www into "/var/www/".
    copy(tmp, ("testfile",), "/var/www/", link=True)
    assert (tmp / "root/var/www/testfile").read_text() == "t"


def test_source_symlink_followed_testCopySymlinks(tmp: Path) -> None:
    tree(tmp / "ctx", {"data": "d", "l1": "->l2", "l2": "->/data", "dir/x": "x",
                       "dirlink": "->dir"})
    copy(tmp, ("l1",), "/out/")
    assert not (tmp / "root/out/l1").is_symlink()
    assert (tmp / "root/out/l1").read_text() == "d"
    copy(tmp, ("l*",), "/wild/")  # testCopyFollowAllSymlinks: wildcard matches followed
    assert (tmp / "root/wild/l2").read_text() == "d"
    copy(tmp, ("dirlink/x",), "/through")  # testCopyThroughSymlinkContext
    assert (tmp / "root/through").read_text() == "x"


def test_symlinks_inside_directory_copied_as_links(tmp: Path) -> None:
    tree(tmp / "ctx", {"d/file": "f", "d/ok": "->file", "d/dangling": "->nowhere"})
    copy(tmp, ("d",), "/out")
    assert os.readlink(tmp / "root/out/ok") == "file"
    assert os.readlink(tmp / "root/out/dangling") == "nowhere"


def test_copy_through_symlink_multistage_testCopyThroughSymlinkMultiStage(tmp: Path) -> None:
    tree(tmp / "ctx", {"real/foo": "stage", "sub": "->/real"})
    action = CopyAction(1, ("/sub/foo",), "/foo")
    apply_file_op(FileOp((action,)), dest_root=tmp / "root", inputs={1: tmp / "ctx"})
    assert (tmp / "root/foo").read_text() == "stage"


def test_dotdot_escape_refused(tmp: Path) -> None:
    tree(tmp / "ctx", {"a": "a"})
    with pytest.raises(FileOpError, match="outside"):
        copy(tmp, ("../secret",), "/")


def test_symlink_escape_stays_in_root(tmp: Path) -> None:
    tree(tmp / "ctx", {"evil": "->../../../../etc/hostname"})
    with pytest.raises(FileOpError, match="not found"):
        copy(tmp, ("evil",), "/x")


def test_missing_source_names_it(tmp: Path) -> None:
    tree(tmp / "ctx", {"a": "a"})
    with pytest.raises(FileOpError, match=re.escape('"/missing.txt": not found')):
        copy(tmp, ("missing.txt",), "/")


def test_ignored_source_hint_testCopyIgnoredFiles(tmp: Path) -> None:
    tree(tmp / "ctx", {"Dockerfile": "FROM x", "keep": "k"})
    rules = IgnoreRules([IgnoreRule("Dockerfile", 1)], source=".dockerignore")
    with pytest.raises(FileOpError) as info:
        copy(tmp, ("Dockerfile",), "/", ignore=rules)
    assert "not found" in info.value.message
    assert info.value.hint is not None and ".dockerignore line 1" in info.value.hint


def test_dockerignore_applies_to_directory_copy_testDockerignore(tmp: Path) -> None:
    tree(tmp / "ctx", {"foo": "1", "bar": "2", "baz": "3", "bay": "4", "Dockerfile": "",
                       ".dockerignore": ""})
    rules = IgnoreRules([IgnoreRule(p, i) for i, p in
                         enumerate(["ba*", "Dockerfile", "!bay", ".dockerignore"], 1)])
    copy(tmp, (".",), "/", ignore=rules)
    assert sorted(p for p in os.listdir(tmp / "root")) == ["bay", "foo"]


def test_ignored_dir_with_reincluded_child(tmp: Path) -> None:
    tree(tmp / "ctx", {"out/a": "a", "out/keep": "k", "other/x": "x"})
    rules = IgnoreRules([IgnoreRule("out", 1), IgnoreRule("!out/keep", 2)])
    copy(tmp, (".",), "/c/", ignore=rules)
    assert os.listdir(tmp / "root/c/out") == ["keep"]


def test_copy_unicode_path_testCopyUnicodePath(tmp: Path) -> None:
    names = ["héllo wörld.txt", "%C3%A4.txt", "a+b.txt"]
    tree(tmp / "ctx", {n: n for n in names})
    copy(tmp, tuple(names), "/u/")
    assert sorted(os.listdir(tmp / "root/u")) == sorted(names)


def test_hardlinks_preserved(tmp: Path) -> None:
    tree(tmp / "ctx", {"d/a": "same"})
    os.link(tmp / "ctx/d/a", tmp / "ctx/d/b")
    copy(tmp, ("d",), "/h")
    assert os.stat(tmp / "root/h/a").st_ino == os.stat(tmp / "root/h/b").st_ino


def test_dest_through_absolute_symlink(tmp: Path) -> None:
    tree(tmp / "ctx", {"f": "f"})
    tree(tmp / "root", {"var/run/": None, "run": "->/var/run"})
    copy(tmp, ("f",), "/run/f")
    assert (tmp / "root/var/run/f").read_text() == "f"


def test_workdir_mkdir_testWorkdirCreatesDir(tmp: Path) -> None:
    tree(tmp / "root", {"etc/passwd": "app:x:1000:1001::/home/app:/bin/sh\n",
                        "exists/": None})
    os.chown(tmp / "root/exists", 5, 5)
    op = FileOp((MkdirAction("/a/b", chown="app"), MkdirAction("/exists", chown="app")))
    apply_file_op(op, dest_root=tmp / "root", inputs={})
    for p in ("a", "a/b"):
        st = os.stat(tmp / "root" / p)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 1001, 0o755)
    assert os.stat(tmp / "root/exists").st_uid == 5  # testWorkdirExists


def test_workdir_unknown_user_fails(tmp: Path) -> None:
    with pytest.raises(FileOpError, match="nobodyhere"):
        apply_file_op(FileOp((MkdirAction("/w", chown="nobodyhere"),)),
                      dest_root=tmp / "root", inputs={})


def test_many_files_copy_is_fast(tmp: Path) -> None:
    import time

    ctx = tmp / "ctx"
    for i in range(50):
        d = ctx / f"d{i}"
        d.mkdir(parents=True)
        for j in range(100):
            (d / f"f{j}").write_text("x")
    start = time.monotonic()
    result = copy(tmp, (".",), "/app/")
    assert result.entries >= 5050
    assert time.monotonic() - start < 20
