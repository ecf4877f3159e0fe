"""Parser diagnostics: every error names file:line, quotes the offending line, gives a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerkit.dockerfile.parser import parse, parse_file
from layerkit.errors import DockerfileError

FILE = "build/Dockerfile.test"


def _error(text: str | bytes) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        parse(text, filename=FILE)
    return info.value


@pytest.mark.parametrize(
    ("text", "message", "line", "quoted", "hint_word"),
    [
        ("", "file with no instructions", 1, "", "FROM"),
        ("# only\n# comments\n", "file with no instructions", 1, "# only", "FROM"),
        ("FROM a\n\nENV PATH\n", "ENV must have two arguments", 3, "ENV PATH", "ENV NAME=value"),
        ("FROM a\nLABEL x\n", "LABEL must have two arguments", 2, "LABEL x", "LABEL NAME=value"),
        (
            "FROM a\nENV a=1 b\n",
            "Syntax error - can't find = in \"b\". Must be of the form: name=value",
            2,
            "ENV a=1 b",
            "NAME=value",
        ),
        (
            'FROM a\nCMD [ "echo", [ "nested json" ] ]\n',
            "when using JSON array syntax, arrays must be comprised of strings only",
            2,
            'CMD [ "echo", [ "nested json" ] ]',
            "quoted string",
        ),
        (
            "# syntax=a\n# SYNTAX=b\nFROM a\n",
            "only one syntax parser directive can be used",
            2,
            "# SYNTAX=b",
            "repeated",
        ),
        (
            "# escape=!\nFROM a\n",
            "invalid escape token '!' does not match ` or \\",
            1,
            "# escape=!",
            "escape=`",
        ),
        ("FROM a\nRUN <<EOF\necho hi\n", "unterminated heredoc", 2, "RUN <<EOF", "'EOF'"),
        ("FROM a\nRUN <<-EOF\n\techo\n", "unterminated heredoc", 2, "RUN <<-EOF", "tabs"),
    ],
)
def test_error_diagnostics(
    text: str, message: str, line: int, quoted: str, hint_word: str
) -> None:
    err = _error(text)
    assert err.message == message
    assert err.location is not None
    assert (err.location.file, err.location.line) == (FILE, line)
    assert err.location.text == quoted
    assert err.hint is not None and hint_word in err.hint
    rendered = err.render()
    assert f"{FILE}:{line}" in rendered and "hint:" in rendered


def test_multiline_instruction_error_spans_its_lines() -> None:
    err = _error("FROM a\nENV \\\n  PATH\n")
    assert err.location is not None
    assert (err.location.line, err.location.end_line) == (2, 3)
    assert err.message == "ENV must have two arguments"


def test_line_too_long() -> None:
    err = _error("FROM a\nRUN echo " + "x" * 70000 + "\nRUN true\n")
    assert err.message == "dockerfile line greater than max allowed size of 65535"
    assert err.location is not None and err.location.line == 2
    assert err.location.text.startswith("RUN echo xxx")
    assert err.hint is not None and "continuation" in err.hint


def test_invalid_utf8_in_error_text_is_printable() -> None:
    err = _error(b"FROM a\nENV caf\xe9\n")
    assert err.location is not None
    assert err.location.text == "ENV caf\ufffd"
    err.render().encode("utf-8")  # must not raise on lone surrogates


def test_missing_file_names_path_as_given(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "Dockerfile"
    with pytest.raises(DockerfileError) as info:
        parse_file(missing)
    assert str(missing) in info.value.message
    assert info.value.hint


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(DockerfileError) as info:
        parse_file(tmp_path)
    assert "directory" in info.value.message
    assert info.value.hint is not None and "Dockerfile" in info.value.hint


def test_parse_file_uses_path_in_locations(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text("FROM a\nENV X\n")
    with pytest.raises(DockerfileError) as info:
        parse_file(path)
    assert info.value.location is not None and info.value.location.file == str(path)
