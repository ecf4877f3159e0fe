"""Ignore rules, the context walker and the size helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from layerkit.context import (
    IgnoreRule,
    IgnoreRules,
    context_size,
    largest_entries,
    load_ignore_rules,
    parse_ignore_file,
    top_level_names,
    walk_context,
)
from layerkit.context.patternmatcher import filepath_match
from layerkit.context.walk import WalkStats
from layerkit.errors import ContextError


def _tree(root: Path, *files: str) -> None:
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)


def _walk(root: Path, text: str = "", stats: WalkStats | None = None) -> list[str]:
    rules = parse_ignore_file(text, ".dockerignore") if text else IgnoreRules()
    return [e.rel for e in walk_context(root, rules, stats=stats)]


def test_parse_error_names_file_line_pattern_and_hint() -> None:
    with pytest.raises(ContextError) as info:
        parse_ignore_file("# ok\nnode_modules\n  [a-\n", "ctx/.dockerignore")
    err = info.value
    assert err.location is not None
    assert (err.location.file, err.location.line) == ("ctx/.dockerignore", 3)
    assert "[a-" in err.message and "line 3" in err.message
    assert err.hint and "filepath.Match" in err.hint
    with pytest.raises(ContextError) as info:
        parse_ignore_file("a\n! \n", ".dockerignore")
    assert info.value.location is not None and info.value.location.line == 2
    # Accepted by New() but rejected by the regexp compiler: still caught at load.
    with pytest.raises(ContextError):
        parse_ignore_file("[Local-Only]/\n", ".dockerignore")


def test_explain_reports_the_deciding_pattern_and_line() -> None:
    rules = parse_ignore_file("# c\n*.log\ndocs\n!docs/keep.md\n", ".dockerignore")
    assert rules.explain("app.log") == ("*.log", 2)
    assert rules.explain("docs/a/b.md") == ("docs", 3)
    assert rules.explain("docs/keep.md") is None
    assert rules.explain("main.py") is None
    assert rules.describe("docs/x") == 'excluded by .dockerignore line 3 ("docs")'


def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    _tree(tmp_path, "Dockerfile", "build/Dockerfile.dev")
    (tmp_path / ".dockerignore").write_text("a\n")
    (tmp_path / "build/Dockerfile.dev.dockerignore").write_text("b\n")
    assert load_ignore_rules(tmp_path, tmp_path / "Dockerfile").patterns == ["a"]
    dev = load_ignore_rules(tmp_path, tmp_path / "build/Dockerfile.dev")
    assert dev.patterns == ["b"] and dev.source is not None
    assert dev.source.endswith("Dockerfile.dev.dockerignore")
    assert load_ignore_rules(tmp_path / "build", None).patterns == []


def test_walk_is_sorted_preorder_and_never_follows_symlinks(tmp_path: Path) -> None:
    _tree(tmp_path, "b.txt", "a/z.txt", "a.txt", "a/b/c.txt")
    (tmp_path / "loop").symlink_to(".")
    (tmp_path / "out").symlink_to("/etc")
    entries = list(walk_context(tmp_path, IgnoreRules()))
    assert [e.rel for e in entries] == [
        "a", "a/b", "a/b/c.txt", "a/z.txt", "a.txt", "b.txt", "loop", "out",
    ]
    kinds = {e.rel: e.kind for e in entries}
    assert kinds["loop"] == kinds["out"] == "symlink" and kinds["a"] == "dir"


def test_excluded_dir_is_skipped_without_being_read(tmp_path: Path) -> None:
    _tree(tmp_path, "node_modules/x/y.js", "src/main.js")
    stats = WalkStats()
    assert _walk(tmp_path, "node_modules\n", stats) == ["src", "src/main.js"]
    assert stats.skipped_dirs == ["node_modules"]
    assert stats.dirs_read == 2  # the root and src


def test_exception_reincludes_below_an_excluded_dir(tmp_path: Path) -> None:
    _tree(tmp_path, "docs/a.md", "docs/keep/b.md", "docs/keep/c.txt", "other/x")
    walked = _walk(tmp_path, "docs\nother\n!docs/keep/*.md\n")
    assert walked == ["docs", "docs/keep", "docs/keep/b.md"]
    # ...and a wildcard exception that cannot match below "other" lets it be skipped
    stats = WalkStats()
    _walk(tmp_path, "docs\nother\n!docs/keep/*.md\n", stats)
    assert "other" in stats.skipped_dirs


def test_walk_matches_matcher_for_every_path(tmp_path: Path) -> None:
    _tree(tmp_path, "a/b/c.py", "a/b/d.txt", "a/e.py", "f.py", "g/h/i.md")
    text = "**/*.py\n!a/b\ng\n!g/h/i.md\n"
    rules = parse_ignore_file(text, ".dockerignore")
    walked = set(_walk(tmp_path, text))
    for dirpath, dirnames, filenames in os.walk(tmp_path):
        for name in dirnames + filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), tmp_path)
            if name in filenames:
                assert (rel in walked) is (not rules.matches(rel)), rel


def test_walker_semantics_differ_from_matches_or_parent_matches() -> None:
    # Go's two APIs disagree here; BuildKit's walker uses the incremental one.
    text = "**/*.py\n!a/b\n"
    rules = parse_ignore_file(text, ".dockerignore")
    assert rules.matcher.matches_or_parent_matches("a/b/c.py") is False
    assert rules.matches("a/b/c.py") is True
    assert rules.explain("a/b/c.py") == ("**/*.py", 1)


def test_size_helpers(tmp_path: Path) -> None:
    (tmp_path / "big").mkdir()
    (tmp_path / "big/blob").write_bytes(b"x" * 5000)
    (tmp_path / "small").write_bytes(b"x" * 10)
    (tmp_path / "ignored").write_bytes(b"x" * 9000)
    rules = parse_ignore_file("ignored\n", ".dockerignore")
    assert context_size(tmp_path, rules) == (5010, 3)
    assert largest_entries(tmp_path, rules, 1) == [("big", 5000)]
    assert top_level_names(tmp_path) == ["big", "ignored", "small"]


def test_filepath_match_wildcard_semantics() -> None:
    assert filepath_match("*.py", "main.py")
    assert not filepath_match("*.py", "a/main.py")
    assert filepath_match("a?c", "abc") and filepath_match("[^x]", "/")


# Differential check against e2b-dockerfile-utils' matcher on the syntax both
# implement the same way (no leading '/', '#' or backslashes).
_PATTERN = hs.lists(hs.sampled_from(["a", "b", "*", "?", "**", "/", "[ab]", ".x"]), max_size=6)
_PATH = hs.lists(hs.sampled_from(["a", "b", "ab", "ba", ".x", "a.x"]), min_size=1, max_size=4)


@settings(max_examples=500, deadline=None)
@given(hs.lists(hs.tuples(hs.booleans(), _PATTERN), min_size=1, max_size=3), _PATH)
def test_agrees_with_e2b_dockerfile_utils(
    raw: list[tuple[bool, list[str]]], path_parts: list[str]
) -> None:
    from e2b_dockerfile_utils.dockerignore import PatternMatcher as E2bMatcher

    patterns = []
    for negate, parts in raw:
        text = "".join(parts).lstrip("/")
        if text:
            patterns.append(("!" if negate else "") + text)
    if not patterns or any(p in ("!",) or p.startswith("!/") for p in patterns):
        return
    path = "/".join(path_parts)
    # e2b evaluates parents incrementally, as BuildKit's walker does.
    rules = IgnoreRules([IgnoreRule(p, i) for i, p in enumerate(patterns, 1)])
    assert rules.matches(path) == E2bMatcher(patterns).matches(path), (patterns, path)
