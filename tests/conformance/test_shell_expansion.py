"""BuildKit's shell-lexer corpus (conformance/buildkit-shell), read in place.

One test per corpus line or case; ids carry the file and line number (or the
case index in process_with_matches.json). Windows (``W``) lines run with
``case_insensitive_env=True``, which is how BuildKit looks names up there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from layerkit.dockerfile.shell import ShellLex, env_from_list
from layerkit.errors import DockerfileError

# The case lists are needed at collection time, before fixtures run, so the
# location of tests/conftest.py's CONFORMANCE is repeated here. Each test also
# requests the ``conformance_dir`` fixture, which skips loudly when it is absent.
_SHARED = Path(
    os.environ.get("LAYERKIT_SHARED", Path(__file__).resolve().parents[2].parent / "shared")
)
_CORPUS = _SHARED / "conformance" / "buildkit-shell"
_MISSING = [pytest.param(None, id="corpus-missing")]

ENV_VAR_TEST_ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _lines(name: str) -> list[tuple[int, str]]:
    path = _CORPUS / name
    if not path.is_file():
        return []
    return list(enumerate(path.read_text(encoding="utf-8").splitlines(), start=1))


def _env_var_cases() -> list[Any]:
    cases = []
    for lineno, line in _lines("envVarTest"):
        if not line.strip() or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("|")]
        assert len(fields) == 3, f"envVarTest:{lineno}: expected 3 fields"
        platform, word, expected = fields
        cases.append(
            pytest.param((platform, word, expected), id=f"envVarTest:{lineno}:{platform}")
        )
    return cases or _MISSING


def _words_cases() -> list[Any]:
    cases = []
    env: dict[str, str] = {}
    for lineno, line in _lines("wordsTest"):
        if line.startswith("#"):
            continue
        if line.startswith("ENV "):
            key, _, value = line[4:].lstrip(" ").partition("=")
            env[key] = value
            continue
        fields = line.split("|")
        assert len(fields) == 2, f"wordsTest:{lineno}: expected 2 fields"
        word, expected = fields[0].strip(), fields[1].lstrip(" ")
        cases.append(pytest.param((word, expected, dict(env)), id=f"wordsTest:{lineno}"))
    return cases or _MISSING


def _matches_doc() -> dict[str, Any]:
    path = _CORPUS / "process_with_matches.json"
    if not path.is_file():
        return {}
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


_DOC = _matches_doc()


def _json_cases(runs: list[Any], prefix: str) -> list[Any]:
    return [pytest.param(run, id=f"{prefix}:{i}") for i, run in enumerate(runs)] or _MISSING


@pytest.mark.parametrize("case", _env_var_cases())
def test_env_var_test_line(conformance_dir: Path, case: tuple[str, str, str]) -> None:
    platform, word, expected = case
    # BuildKit on Windows compares names case-insensitively; we run W lines that way.
    lex = ShellLex("\\", case_insensitive_env=platform == "W")
    if expected == "error":
        with pytest.raises(DockerfileError):
            lex.process_word(word, ENV_VAR_TEST_ENV)
    else:
        assert lex.process_word(word, ENV_VAR_TEST_ENV) == expected


def test_env_var_test_all_platform_lines_in_windows_mode(conformance_dir: Path) -> None:
    """BuildKit runs the A lines on Windows too; they must not depend on case."""
    lex = ShellLex("\\", case_insensitive_env=True)
    failures = []
    checked = 0
    for param in _env_var_cases():
        platform, word, expected = param.values[0]
        if platform == "U":
            continue
        checked += 1
        try:
            got = lex.process_word(word, ENV_VAR_TEST_ENV)
        except DockerfileError:
            got = "error"
        if got != expected:
            failures.append((word, got, expected))
    assert checked > 200
    assert failures == []


@pytest.mark.parametrize("case", _words_cases())
def test_words_test_line(conformance_dir: Path, case: tuple[str, str, dict[str, str]]) -> None:
    word, expected, env = case
    lex = ShellLex("\\")
    if expected == "error":
        with pytest.raises(DockerfileError):
            lex.process_words(word, env)
    else:
        assert lex.process_words(word, env) == expected.split(",")


@pytest.mark.parametrize("case", _json_cases(_DOC.get("cases", []), "matches"))
def test_process_with_matches_case(conformance_dir: Path, case: dict[str, Any]) -> None:
    lex = ShellLex("\\")
    if case["expectedErr"]:
        with pytest.raises(DockerfileError):
            lex.process_word_with_matches(case["input"], case["envs"])
        return
    got = lex.process_word_with_matches(case["input"], case["envs"])
    assert got.result == case["expected"]
    assert got.matched == frozenset(case["matches"])
    assert got.unmatched == frozenset(case["unmatched"])


_PLATFORM = _DOC.get("TestProcessWithMatchesPlatform", {})


@pytest.mark.parametrize("run", _json_cases(_PLATFORM.get("runs", []), "platform"))
def test_process_with_matches_platform(conformance_dir: Path, run: dict[str, Any]) -> None:
    got = ShellLex("\\").process_word_with_matches(_PLATFORM["input"], run["envs"])
    assert got.result == run["expected"]
    # every name the idiom references is reported exactly once, set or not
    assert got.matched | got.unmatched == {"VERSION", "TARGETOS", "TARGETARCH", "TARGETVARIANT"}
    assert got.matched == frozenset(run["envs"])


_MANDATORY = _DOC.get("TestShellParserMandatoryEnvVars", {}).get("runs", [])


@pytest.mark.parametrize("run", _json_cases(_MANDATORY, "mandatory"))
def test_mandatory_env_vars(conformance_dir: Path, run: dict[str, Any]) -> None:
    lex = ShellLex("\\")
    env = env_from_list(run["envs"])
    if "expect_error_contains" in run:
        with pytest.raises(DockerfileError) as info:
            lex.process_word(run["input"], env)
        assert run["expect_error_contains"] in info.value.message
        assert info.value.hint
    else:
        assert lex.process_word(run["input"], env) == run["expected"]


_GET_ENV = _DOC.get("TestGetEnv", {}).get("runs", [])


@pytest.mark.parametrize("run", _json_cases(_GET_ENV, "getenv"))
def test_get_env(conformance_dir: Path, run: dict[str, Any]) -> None:
    env = env_from_list(run["envs"])
    assert env.get(run["get"], "") == run["expected"]
    # and through the lexer, which is where the lookup matters
    assert ShellLex("\\").process_word("${" + run["get"] + "}", env) == run["expected"]
