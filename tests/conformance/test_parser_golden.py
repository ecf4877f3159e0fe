"""BuildKit parser corpus (conformance/buildkit-parser), read in place.

Golden dumps byte for byte, the negative cases, line numbers, heredoc
attachments and empty-continuation warnings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from layerkit.dockerfile.ast import ParseResult
from layerkit.dockerfile.dump import dump
from layerkit.dockerfile.parser import parse, parse_file
from layerkit.errors import DockerfileError

# Same resolution as the conformance_dir fixture; only used to *list* cases at
# collection time (the fixture still skips loudly when the data is absent).
_SHARED = Path(
    os.environ.get("LAYERKIT_SHARED", Path(__file__).resolve().parents[2].parent / "shared")
)
_PARSER_DIR = _SHARED / "conformance" / "buildkit-parser"

# FORMAT.md: the messages each negative case must fail with.
NEGATIVE_MESSAGES = {
    "empty_dockerfile": "file with no instructions",
    "only_comments": "file with no instructions",
    "env_no_value": "ENV must have two arguments",
    "shykes-nested-json": "arrays must be comprised of strings only",
}


def _golden_cases() -> list[str]:
    if not _PARSER_DIR.is_dir():
        return ["<conformance data missing>"]
    return sorted(
        d.name
        for d in _PARSER_DIR.iterdir()
        if (d / "Dockerfile").is_file() and (d / "result").is_file()
    )


def _negative_cases() -> list[str]:
    negative = _PARSER_DIR / "_negative"
    if not negative.is_dir():
        return ["<conformance data missing>"]
    return sorted(d.name for d in negative.iterdir() if (d / "Dockerfile").is_file())


@pytest.fixture
def parser_dir(conformance_dir: Path) -> Path:
    return conformance_dir / "buildkit-parser"


def test_corpus_is_complete(parser_dir: Path) -> None:
    # Guards against a parametrisation that silently found nothing.
    assert len(_golden_cases()) >= 33
    assert set(NEGATIVE_MESSAGES) <= set(_negative_cases())


@pytest.mark.parametrize("case", _golden_cases())
def test_golden_dump(parser_dir: Path, case: str) -> None:
    case_dir = parser_dir / case
    result = parse_file(case_dir / "Dockerfile")
    assert (dump(result.ast) + "\n").encode("utf-8", "surrogateescape") == (
        case_dir / "result"
    ).read_bytes()


@pytest.mark.parametrize("case", _golden_cases())
def test_golden_dump_with_crlf(parser_dir: Path, case: str) -> None:
    # CRLF files parse like LF files (trailing \r\n is stripped from each line).
    data = (parser_dir / case / "Dockerfile").read_bytes().replace(b"\n", b"\r\n")
    expected = (parser_dir / case / "result").read_bytes()
    assert (dump(parse(data).ast) + "\n").encode("utf-8", "surrogateescape") == expected


@pytest.mark.parametrize("case", _negative_cases())
def test_negative_case_fails(parser_dir: Path, case: str) -> None:
    path = parser_dir / "_negative" / case / "Dockerfile"
    with pytest.raises(DockerfileError) as info:
        parse_file(path)
    err = info.value
    assert NEGATIVE_MESSAGES.get(case, "") in err.message
    assert err.location is not None and err.location.file == str(path)
    assert err.hint


def test_line_numbers(parser_dir: Path) -> None:
    expected = json.loads((parser_dir / "_line" / "expected.json").read_text())
    result = parse_file(parser_dir / "_line" / "Dockerfile")
    root = result.ast
    assert (root.start_line, root.end_line) == (
        expected["root"]["start_line"],
        expected["root"]["end_line"],
    )
    assert len(root.children) == expected["root"]["children"]
    got = [{"start_line": c.start_line, "end_line": c.end_line} for c in root.children]
    assert got == expected["children"]
    assert result.escape_token == "\\"  # "# ESCAPE=\" is a directive (case-insensitive)


def _heredocs_as_go(result: ParseResult, index: int) -> list[dict[str, Any]] | None:
    found = [
        {
            "Name": h.name,
            "FileDescriptor": h.file_descriptor,
            "Expand": h.expand,
            "Chomp": h.chomp,
            "Content": h.content,
        }
        for h in result.ast.children[index].heredocs
    ]
    return found or None


@pytest.mark.parametrize("name", ["_heredoc", "_heredoc_json"])
def test_heredoc_attachments(parser_dir: Path, name: str) -> None:
    expected = json.loads((parser_dir / name / "expected.json").read_text())
    result = parse_file(parser_dir / name / "Dockerfile")
    assert result.ast.children[0].original == "FROM alpine:3.6"
    assert len(result.ast.children) == len(expected["cases"]) + 1
    for case in expected["cases"]:
        got = _heredocs_as_go(result, case["child_index"])
        assert got == case["expected_heredocs"], case["instruction"]


def test_heredoc_end_line_covers_body(parser_dir: Path) -> None:
    result = parse_file(parser_dir / "_heredoc" / "Dockerfile")
    copy_two = result.ast.children[16]  # COPY <<FILE1 <<FILE2 /dest + 4 body lines
    assert copy_two.original == "COPY <<FILE1 <<FILE2 /dest"
    assert copy_two.end_line - copy_two.start_line == 4


def test_empty_continuation_warnings(parser_dir: Path) -> None:
    expected = json.loads((parser_dir / "_empty_continuation" / "expected.json").read_text())
    result = parse_file(parser_dir / "_empty_continuation" / "Dockerfile")
    assert expected["expect_parse_ok"]
    assert len(result.warnings) == expected["expect_warning_count"]
    for warning, needles in zip(result.warnings, expected["warnings_contain"], strict=True):
        for needle in needles:
            assert needle in warning.message
    assert expected["warning0_detail_contains"] in result.warnings[0].detail
