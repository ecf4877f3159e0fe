"""The .dockerignore corpus (conformance/dockerignore/*.json), read in place.

Every file of the corpus is exercised: pattern matching through each Go entry
point, pattern cleaning, compilation to regexps, ReadAll, and the two BuildKit
integration scenarios replayed on a real directory tree.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from layerkit.context import ContextHasher, load_ignore_rules, walk_context
from layerkit.context.patternmatcher import (
    BadPatternError,
    MatchInfo,
    PatternMatcher,
    compile_pattern,
    go_dir,
    matches,
    read_all,
)
from layerkit.errors import ContextError

# Parametrisation needs the cases at collection time; same lookup as conftest.py.
_SHARED = Path(os.environ.get("LAYERKIT_SHARED", Path(__file__).resolve().parents[3] / "shared"))
CORPUS = _SHARED / "conformance" / "dockerignore"


def _load(name: str) -> Any:
    path = CORPUS / name
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _cases(name: str, key: str = "cases") -> list[Any]:
    data = _load(name)
    return [] if data is None else list(data[key])


@pytest.fixture
def corpus(conformance_dir: Path) -> Path:
    return conformance_dir / "dockerignore"


def test_corpus_files_are_all_exercised(corpus: Path) -> None:
    names = {p.name for p in corpus.glob("*.json")}
    assert names == {
        "cases.json",
        "new_cases.json",
        "compile_cases.json",
        "readall_cases.json",
        "buildkit_integration_scenarios.json",
        "copy_exclude_scenario.json",
    }
    assert len(json.loads((corpus / "cases.json").read_text())["cases"]) == 138


# --- cases.json --------------------------------------------------------------


def _incremental(pm: PatternMatcher, path: str) -> bool:
    """Call MatchesUsingParentResults on each parent in turn, as the Go test does."""
    parent = go_dir(path)
    info: MatchInfo = ()
    if parent != ".":
        dirs = parent.split("/")
        for i in range(len(dirs)):
            _, info = pm.matches_using_parent_results("/".join(dirs[: i + 1]), info)
    return pm.matches_using_parent_results(path, info)[0]


def _run_case(case: dict[str, Any]) -> list[tuple[str, bool | None, str | None]]:
    """(api, result, error text) for every entry point the case names."""
    results: list[tuple[str, bool | None, str | None]] = []

    def attempt(api: str, fn: Any) -> None:
        try:
            results.append((api, bool(fn()), None))
        except BadPatternError as exc:
            results.append((api, None, str(exc)))

    patterns, path = case["patterns"], case["path"]
    if case["group"] in ("simple", "filepath_match_compat"):
        attempt("Matches", lambda: matches(path, patterns))
        return results
    try:
        pm = PatternMatcher(patterns)
    except BadPatternError as exc:
        return [("New", None, str(exc))]
    attempt("MatchesOrParentMatches", lambda: pm.matches_or_parent_matches(path))
    if case["group"] == "regression":  # a second call must fail the same way
        attempt("MatchesOrParentMatches#2", lambda: pm.matches_or_parent_matches(path))
        return results
    attempt("MatchesUsingParentResults", lambda: _incremental(pm, path))
    attempt("MatchesUsingParentResults(empty)", lambda: pm.matches_using_parent_results(path)[0])
    return results


@pytest.mark.parametrize("case", _cases("cases.json"), ids=lambda c: c["id"])
def test_match_case(corpus: Path, case: dict[str, Any]) -> None:
    for api, result, error in _run_case(case):
        if case["expected_error"] is not None:
            assert error == case["expected_error"], api
        else:
            assert error is None, f"{api}: {error}"
            assert result is case["expected_match"], api


# --- new_cases.json ------------------------------------------------------------


@pytest.mark.parametrize("case", _cases("new_cases.json"), ids=lambda c: c["test"])
def test_new_cleans_patterns(corpus: Path, case: dict[str, Any]) -> None:
    if case["expect_error"]:
        with pytest.raises(BadPatternError) as info:
            PatternMatcher(case["patterns"])
        assert str(info.value) == case["error"]
        return
    pm = PatternMatcher(case["patterns"])
    if "expect_pattern_count" in case:
        assert len(pm.patterns) == case["expect_pattern_count"]
    if "expect_exclusions" in case:
        assert pm.exclusions is case["expect_exclusions"]
        assert any(p.exclusion for p in pm.patterns) is case["expect_exclusions"]


# --- compile_cases.json ----------------------------------------------------------


@pytest.mark.parametrize("case", _cases("compile_cases.json"), ids=lambda c: c["pattern"])
def test_compile(corpus: Path, case: dict[str, Any]) -> None:
    kind, regex = compile_pattern(case["pattern"])
    assert kind == case["match_type"]
    if kind == "regexp":
        assert regex == case["regexp_slash"]
        windows = case["pattern"].replace("/", "\\")
        assert compile_pattern(windows, "\\") == ("regexp", case["regexp_backslash"])


# --- readall_cases.json -----------------------------------------------------------


@pytest.mark.parametrize("case", _cases("readall_cases.json"), ids=lambda c: repr(c["input"])[:20])
def test_read_all(corpus: Path, case: dict[str, Any]) -> None:
    assert [pattern for _, pattern in read_all(case["input"])] == case["expect"]


# --- buildkit_integration_scenarios.json -------------------------------------------


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def _visible_files(root: Path, dockerfile: Path) -> set[str]:
    rules = load_ignore_rules(root, dockerfile)
    return {e.rel for e in walk_context(root, rules) if e.kind == "file"}


def _scenario(name: str) -> dict[str, Any]:
    for scenario in _cases("buildkit_integration_scenarios.json", "scenarios"):
        if scenario["test"] == name:
            return dict(scenario)
    pytest.skip(f"scenario {name} not in the corpus")


def test_scenario_dockerignore(corpus: Path, tmp_path: Path) -> None:
    scenario = _scenario("testDockerignore")
    _write_tree(tmp_path, scenario["context"])
    visible = _visible_files(tmp_path, tmp_path / "Dockerfile")
    for name, content in scenario["expect_present"].items():
        assert name in visible
        assert (tmp_path / name).read_text() == content
    for name in scenario["expect_absent"]:
        assert name not in visible


def test_scenario_invalid_dockerignore(corpus: Path, tmp_path: Path) -> None:
    scenario = _scenario("testDockerignoreInvalid")
    assert scenario["expect_build_error"] is True
    _write_tree(tmp_path, scenario["context"])
    with pytest.raises(ContextError) as info:
        load_ignore_rules(tmp_path, tmp_path / "Dockerfile")
    err = info.value
    assert err.location is not None and err.location.line == 1
    assert err.location.file.endswith(".dockerignore")
    assert '"!"' in err.message and err.hint


_RUN_CHECK = re.compile(r"\[ (!\s+)?-f (\S+) \]")


def test_scenario_dockerignore_override(corpus: Path, tmp_path: Path) -> None:
    scenario = _scenario("testDockerignoreOverride")
    _write_tree(tmp_path, scenario["context"])
    for build in scenario["builds"]:
        dockerfile = scenario["context"][build["filename"]]
        checks = _RUN_CHECK.findall(dockerfile)
        assert checks, "the RUN line states which files must exist"
        visible = _visible_files(tmp_path, tmp_path / build["filename"])
        for negated, name in checks:
            assert (name not in visible) == bool(negated), (build["filename"], name)


# --- copy_exclude_scenario.json ------------------------------------------------------

_COPY_LINE = re.compile(r"^(?:COPY|ADD)\s+((?:--exclude=\S+\s+)+)(\S+)\s+(\S+)\s*$")


def _builders(dockerfile: str) -> dict[str, tuple[list[str], str]]:
    """builder name -> (exclude patterns, source) from the scenario's Dockerfile."""
    result: dict[str, tuple[list[str], str]] = {}
    current = ""
    for line in dockerfile.splitlines():
        stage = re.match(r"FROM scratch as (\w+)", line)
        if stage:
            current = stage.group(1)
        copy = _COPY_LINE.match(line.strip())
        if copy and current:
            excludes = re.findall(r"--exclude=(\S+)", copy.group(1))
            result[current] = (excludes, copy.group(2))
    return result


def test_copy_exclude_scenario(corpus: Path, tmp_path: Path) -> None:
    data = _load("copy_exclude_scenario.json")
    for item in data["context"]:
        if "dir" in item:
            (tmp_path / item["dir"]).mkdir(parents=True, exist_ok=True)
        elif "file" in item:
            (tmp_path / item["file"]).write_text(item["content"])
        else:
            (tmp_path / item["symlink"]).symlink_to(item["target"])
    builders = _builders(data["dockerfile"])
    assert len(builders) == 6
    hasher = ContextHasher(tmp_path, load_ignore_rules(tmp_path, None), None)
    present: dict[str, str] = {}  # exported path -> context path
    dirs: dict[str, set[str]] = {}
    for name, (excludes, source) in builders.items():
        number = name.removeprefix("builder")
        result = hasher.checksum_sources([source], excludes=excludes)
        dest = f"{name}/{number}"
        dirs[dest] = set()
        for root in result.matched:
            root = "" if root == "." else root
            for path in result.files:
                if root and not path.startswith(root + "/"):
                    continue
                below = path[len(root) + 1 :] if root else path
                if below:
                    present[f"{dest}/{below}"] = path
                    dirs[dest].add(below)
    for expect in data["expect"]:
        exported = expect["path"]
        assert (exported in present) is expect["exists"], exported
        if expect["exists"]:
            origin = tmp_path / present[exported]
            actual = origin.readlink().as_posix() if origin.is_symlink() else origin.read_text()
            assert actual == expect["content_or_symlink_target"], exported
    for empty in data["expect_empty_dirs"]:
        assert dirs[empty] == set(), empty
