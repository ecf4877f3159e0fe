"""COPY --parents and COPY/ADD --exclude in layerkit.fileops (BuildKit cases cited)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from layerkit.context.dockerignore import IgnoreRules
from layerkit.fileops import FileOpError, apply_file_op
from layerkit.graph.ops import CopyAction, FileOp


def tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def listing(root: Path) -> list[str]:
    out = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            out.append(os.path.relpath(os.path.join(dirpath, n), root))
    return sorted(out)


def copy(tmp: Path, sources: tuple[str, ...], dest: str, **kw: Any) -> None:
    apply_file_op(FileOp((CopyAction(1, sources, dest, **kw),)), dest_root=tmp / "root",
                  inputs={1: tmp / "ctx"}, ignore=IgnoreRules())


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    tree(tmp_path / "ctx", ["x/a.txt", "x/b.md", "x/y/a.txt", "x/y/z/a.txt", "w/a.txt",
                            "w/q/c.txt", "top.txt"])
    return tmp_path


@pytest.mark.parametrize(("sources", "expected"), [
    (("x/a.txt", "w/a.txt"), ["w/a.txt", "x/a.txt"]),
    (("x/*.txt",), ["x/a.txt"]),
    (("*/a.txt",), ["w/a.txt", "x/a.txt"]),
    (("x/**/a.txt",), ["x/a.txt", "x/y/a.txt", "x/y/z/a.txt"]),
    (("**/c.txt",), ["w/q/c.txt"]),
    (("x/y",), ["x/y/a.txt", "x/y/z/a.txt"]),
])
def test_copy_parents_testCopyParents(tmp: Path, sources: tuple[str, ...],
                                      expected: list[str]) -> None:
    copy(tmp, sources, "/out/", parents=True)
    assert listing(tmp / "root/out") == expected


@pytest.mark.parametrize(("sources", "expected"), [
    (("x/./y/a.txt",), ["y/a.txt"]),
    (("x/./y/*.txt",), ["y/a.txt"]),
    (("x/./**/a.txt",), ["a.txt", "y/a.txt", "y/z/a.txt"]),
    (("*/./q/c.txt",), ["q/c.txt"]),
    (("./x/a.txt",), ["x/a.txt"]),
])
def test_copy_relative_parents_pivot_testCopyRelativeParents(
        tmp: Path, sources: tuple[str, ...], expected: list[str]) -> None:
    copy(tmp, sources, "/out/", parents=True)
    assert listing(tmp / "root/out") == expected


def test_parents_wildcard_matching_nothing_ok_testCopyParentsMissingDirectory(
        tmp: Path) -> None:
    copy(tmp, ("nothing/*.txt", "top.txt"), "/out/", parents=True)
    assert listing(tmp / "root/out") == ["top.txt"]


def test_parents_missing_plain_file_fails_testCopyParentsMissingDirectory(tmp: Path) -> None:
    with pytest.raises(FileOpError, match=re.escape('"/test/nonexistent-file": not found')):
        copy(tmp, ("test/nonexistent-file",), "/out/", parents=True)


def test_exclude_relative_to_directory_source(tmp: Path) -> None:
    copy(tmp, ("x",), "/out", excludes=("*.md", "y/z"))
    assert listing(tmp / "root/out") == ["a.txt", "y/a.txt"]


def test_exclude_with_reinclude(tmp: Path) -> None:
    copy(tmp, ("x",), "/out", excludes=("y", "!y/z"))
    assert listing(tmp / "root/out") == ["a.txt", "b.md", "y/z/a.txt"]


def test_parents_with_exclude(tmp: Path) -> None:
    # Without a pivot the copied root is the context root, so patterns start there.
    copy(tmp, ("x/**/a.txt",), "/out/", parents=True, excludes=("x/y/z",))
    assert listing(tmp / "root/out") == ["x/a.txt", "x/y/a.txt"]


def _build_context(root: Path, entries: list[dict[str, str]]) -> None:
    for e in entries:
        if "dir" in e:
            (root / e["dir"]).mkdir(parents=True, exist_ok=True)
        elif "file" in e:
            (root / e["file"]).parent.mkdir(parents=True, exist_ok=True)
            (root / e["file"]).write_text(e["content"])
        else:
            (root / e["symlink"]).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(e["target"], root / e["symlink"])


_LINE = re.compile(r"^(COPY|ADD)\s+((?:--exclude=\S+\s+)+)(\S+)\s+(\S+)$")


def test_copy_exclude_scenario_testExcludedFilesOnCopy(tmp_path: Path,
                                                       conformance_dir: Path) -> None:
    data = json.loads((conformance_dir / "dockerignore/copy_exclude_scenario.json").read_text())
    ctx = tmp_path / "ctx"
    _build_context(ctx, data["context"])
    final = tmp_path / "final"
    final.mkdir()
    stage = ""
    for line in data["dockerfile"].splitlines():
        if line.startswith("FROM scratch as "):
            stage = line.split()[-1]
            (final / stage).mkdir()
        m = _LINE.match(line)
        if not m:
            continue
        keyword, flags, src, dest = m.groups()
        excludes = tuple(f.removeprefix("--exclude=") for f in flags.split())
        action = CopyAction(1, (src,), dest, excludes=excludes, unpack=keyword == "ADD")
        apply_file_op(FileOp((action,)), dest_root=final / stage, inputs={1: ctx},
                      ignore=IgnoreRules())
    checked = 0
    for row in data["expect"]:
        path = final / row["path"]
        assert os.path.lexists(path) == row["exists"], row["path"]
        if row["exists"]:
            want = row["content_or_symlink_target"]
            got = os.readlink(path) if path.is_symlink() else path.read_text()
            assert got == want, row["path"]
        checked += 1
    for empty in data["expect_empty_dirs"]:
        assert (final / empty).is_dir() and os.listdir(final / empty) == []
    assert checked == len(data["expect"]) >= 40
