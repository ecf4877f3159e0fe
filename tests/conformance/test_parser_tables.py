"""The parser unit tables (conformance/buildkit-parser/_tables/*.json), read in place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from layerkit.dockerfile.directives import DirectiveParser, detect_syntax, parse_directive
from layerkit.dockerfile.heredoc import (
    HeredocError,
    chomp_heredoc_content,
    heredocs_from_line,
    parse_heredoc,
)
from layerkit.dockerfile.line_parsers import (
    LineParseError,
    parse_json,
    parse_name_val,
    parse_words,
)
from layerkit.dockerfile.parser import parse
from layerkit.errors import DockerfileError


@pytest.fixture
def tables(conformance_dir: Path) -> Path:
    return conformance_dir / "buildkit-parser" / "_tables"


def _load(tables: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tables / name).read_text(encoding="utf-8"))
    return data


def test_parse_words(tables: Path) -> None:
    cases = _load(tables, "parse_words.json")["cases"]
    assert cases
    for case in cases:
        assert parse_words(case["input"], "\\") == case["expect"], case["input"]


def test_json_arrays_valid(tables: Path) -> None:
    cases = _load(tables, "json_arrays.json")["valid"]
    assert cases
    for case in cases:
        assert parse_json(case["input"]) == case["expect"], case["input"]


def test_json_arrays_not_string_array_is_an_error(tables: Path) -> None:
    inputs = _load(tables, "json_arrays.json")["invalid_not_string_array"]["inputs"]
    assert inputs
    for text in inputs:
        with pytest.raises(LineParseError, match="arrays must be comprised of strings only"):
            parse_json(text)


@pytest.mark.parametrize(
    "text", ["['a']", '["a"', '["a]', '"a"', 'x ["a"]', '["a"] b', '[1e400]', "[NaN]"]
)
def test_json_fallback_inputs_are_not_json(text: str) -> None:
    # note_fallback: any other decode failure falls back to shell form.
    assert parse_json(text) is None


def test_name_val(tables: Path) -> None:
    cases = _load(tables, "name_val.json")["cases"]
    assert cases
    for case in cases:
        if "expect_error" in case:
            with pytest.raises(LineParseError) as info:
                parse_name_val(case["input"], case["key"], "\\")
            assert case["expect_error"] in info.value.message
        else:
            nodes = parse_name_val(case["input"], case["key"], "\\")
            assert [n.value for n in nodes] == case["expect_chain"], case["name"]


def test_directives_parse_all(tables: Path) -> None:
    cases = _load(tables, "directives.json")["parse_all"]
    assert cases
    for case in cases:
        found = DirectiveParser().parse_all(case["input"])
        assert [{"name": d.name, "value": d.value} for d in found] == case["expect"]


def _input(case: dict[str, Any]) -> str:
    prefix = bytes.fromhex(case.get("input_bytes_hex_prefix", "")).decode("utf-8")
    text: str = case["input"]
    return prefix + text


def _check_directive_case(case: dict[str, Any], found: Any) -> None:
    if not case["ok"]:
        assert found is None, case["input"]
        return
    assert found is not None, case["input"]
    assert found.ref == case["ref"]
    if "cmdline" in case:
        assert found.cmdline == case["cmdline"]
    if "line" in case:
        assert found.line == case["line"]


def test_detect_syntax(tables: Path) -> None:
    cases = _load(tables, "directives.json")["detect_syntax"]
    assert cases
    for case in cases:
        _check_directive_case(case, detect_syntax(_input(case)))


def test_parse_directive_check(tables: Path) -> None:
    cases = _load(tables, "directives.json")["parse_directive_check"]
    assert cases
    for case in cases:
        _check_directive_case(case, parse_directive("check", _input(case)))


def test_parse_result_carries_syntax_and_check(tables: Path) -> None:
    # The same detection feeds ParseResult (BOM case from TestDetectSyntaxBOM).
    bom_case = _load(tables, "directives.json")["detect_syntax"][-1]
    result = parse(_input(bom_case).encode("utf-8"))
    assert (result.syntax, result.syntax_line) == (bom_case["ref"], bom_case["line"])
    check_case = _load(tables, "directives.json")["parse_directive_check"][0]
    assert parse(check_case["input"]).check == check_case["ref"]


def test_parse_heredoc_words(tables: Path) -> None:
    table = _load(tables, "heredoc_helpers.json")["parse_heredoc"]
    for word in table["valid_name_EOF"]:
        heredoc = parse_heredoc(word)
        assert heredoc is not None and heredoc.name == "EOF", word
    for word in table["invalid_error"]:
        with pytest.raises(HeredocError):
            parse_heredoc(word)
    for word in table["not_heredoc"]:
        assert parse_heredoc(word) is None, word


def test_heredocs_from_line(tables: Path) -> None:
    cases = _load(tables, "heredoc_helpers.json")["heredocs_from_line"]["cases"]
    assert cases
    for case in cases:
        names = [h.name for h in heredocs_from_line(case["line"])]
        assert (names or None) == case["names"], case["line"]


def test_chomp_heredoc_content(tables: Path) -> None:
    cases = _load(tables, "heredoc_helpers.json")["chomp_heredoc_content"]
    assert cases
    for case in cases:
        assert chomp_heredoc_content(case["input"]) == case["expect"]


def test_scanner_error(tables: Path) -> None:
    table = _load(tables, "scanner_error.json")
    assert "<L>" in table["input_template"]
    text = table["input_template"].replace("<L>", "a" * 65536)
    with pytest.raises(DockerfileError) as info:
        parse(text)
    assert table["expect_error"] in info.value.message
    assert info.value.location is not None and info.value.location.line == 3


def test_scanner_limit_is_inclusive() -> None:
    # 65535 bytes of content (65536 with the newline) is still accepted.
    result = parse("FROM image\nLABEL test=" + "a" * (65535 - len("LABEL test=")) + "\n")
    assert len(result.ast.children[1].next[1].value) == 65535 - len("LABEL test=")
