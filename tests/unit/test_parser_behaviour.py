"""Parser behaviour outside the golden corpus, each pinned to BuildKit's rule (FORMAT.md)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerkit.dockerfile.dump import dump, to_json
from layerkit.dockerfile.gostring import go_lower, go_quote
from layerkit.dockerfile.keywords import INSTRUCTIONS, did_you_mean
from layerkit.dockerfile.parser import parse


def _dump(text: str | bytes) -> str:
    return dump(parse(text).ast)


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", '"plain"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
        ("\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
        ("it's", '"it\'s"'),
        ("♥ café", '"♥ café"'),
        ("\u00a0\u2028\u0085", '"\\u00a0\\u2028\\u0085"'),
        ("\U000e0001", '"\\U000e0001"'),
        ("\udcff\udc80", '"\\xff\\x80"'),  # undecodable bytes (surrogateescape)
    ],
)
def test_go_quote(value: str, quoted: str) -> None:
    assert go_quote(value) == quoted


def test_go_lower_follows_go_not_python() -> None:
    assert go_lower("RUN") == "run"
    assert go_lower("\u0130X") == "ix"  # Python's "İ".lower() has two code points
    assert go_lower("ΑΣ") == "ασ"  # no final-sigma context rule in Go
    assert go_lower("R\udcffN") == "r\ufffdn"


def test_unknown_instruction_is_not_an_error() -> None:
    assert _dump("FROM a\nFOO bar baz\n") == '(from "a")\n(foo "")'


def test_keyword_case_is_kept_but_dumped_lower() -> None:
    result = parse("from a\nRuN echo\n")
    assert [n.value for n in result.ast.children] == ["from", "RuN"]
    assert dump(result.ast) == '(from "a")\n(run "echo")'


def test_invalid_utf8_is_kept_byte_for_byte() -> None:
    assert _dump(b"FROM a\nRUN echo \xff caf\xc3\xa9\n").endswith('(run "echo \\xff café")')


def test_invalid_utf8_in_words_becomes_replacement_character() -> None:
    # parseWords decodes runes: a bad byte becomes U+FFFD (ARG/ENV/LABEL).
    assert _dump(b"FROM a\nARG x=\xff\n").endswith('(arg "x=\ufffd")')


def test_flags_are_scanned_bytewise() -> None:
    # Go's rune(byte) loop turns UTF-8 inside flags into Latin-1 mojibake.
    assert _dump("FROM a\nCOPY --chown=café a b\n").endswith(
        '(copy ["--chown=cafÃ©"] "a" "b")'
    )


def test_flags_quotes_and_escape_token() -> None:
    text = "# escape=`\nFROM a\nCOPY --x='a b' --y=c`d --z=\"\" -- --w .\n"
    assert _dump(text).endswith('(copy ["--x=a b" "--y=cd" "--z="] "--w" ".")')


def test_json_form_sets_is_json_and_fallbacks_do_not() -> None:
    result = parse('FROM a\nCMD ["a", "b"]\nCMD ["a"] b\nCMD [1e400]\nCOPY [ "x y", "/z" ]\n')
    cmds = result.ast.children[1:]
    assert [c.is_json for c in cmds] == [True, False, False, True]
    assert [c.args for c in cmds] == [["a", "b"], ['["a"] b'], ["[1e400]"], ["x y", "/z"]]


def test_lone_surrogate_escape_in_json_becomes_replacement() -> None:
    assert _dump('FROM a\nCMD ["\\ud800x"]\n').endswith('(cmd "\ufffdx")')


def test_onbuild_nests_and_can_carry_heredoc() -> None:
    result = parse("FROM a\nONBUILD COPY --from=b <<EOF /x\nbody\nEOF\nRUN y\n")
    onbuild = result.ast.children[1]
    assert dump(result.ast).splitlines()[1] == '(onbuild (copy ["--from=b"] "<<EOF" "/x"))'
    assert [h.content for h in onbuild.heredocs] == ["body\n"]
    assert (onbuild.start_line, onbuild.end_line) == (2, 4)
    assert onbuild.next[0].children[0].flags == ["--from=b"]


def test_heredoc_only_for_run_copy_add_and_not_json() -> None:
    result = parse('FROM a\nUSER <<EOF\nEOF\nRUN ["<<EOF"]\nEOF\n')
    assert [n.value for n in result.ast.children] == ["FROM", "USER", "EOF", "RUN", "EOF"]
    assert all(not n.heredocs for n in result.ast.children)


def test_chomp_heredoc_with_space_after_operator() -> None:
    result = parse("FROM a\nRUN <<- EOF\n\tbody\n\tEOF\nRUN b\n")
    heredoc = result.ast.children[1].heredocs[0]
    assert (heredoc.name, heredoc.chomp, heredoc.content) == ("EOF", True, "\tbody\n")
    assert len(result.ast.children) == 3


def test_heredoc_file_descriptor_and_quoted_delimiter() -> None:
    heredoc = parse("FROM a\nRUN 5<<'E O'\nx\nE O\n").ast.children[1].heredocs[0]
    assert (heredoc.name, heredoc.file_descriptor, heredoc.expand) == ("E O", 5, False)


def test_original_and_lines_of_a_continued_instruction() -> None:
    result = parse("FROM a\n  RUN a \\\n  # note\n    b\n")
    run = result.ast.children[1]
    assert run.original == "RUN a     b"
    assert (run.start_line, run.end_line) == (2, 4)


def test_prev_comment_blocks() -> None:
    text = "# syntax=docker/dockerfile:1\n# about a\n\n# more\nFROM a\n#\n# about b\nRUN b\n"
    result = parse(text)
    assert [n.prev_comment for n in result.ast.children] == [["about a", "more"], ["about b"]]
    assert result.syntax == "docker/dockerfile:1" and result.syntax_line == 1


def test_bom_is_dropped_and_directive_still_read() -> None:
    result = parse(b"\xef\xbb\xbf# escape=`\nFROM a\nRUN a `\n  b\n")
    assert result.escape_token == "`"
    assert dump(result.ast) == '(from "a")\n(run "a   b")'
    assert not result.source.startswith("\ufeff")


def test_healthcheck_type_is_split_bytewise() -> None:
    # U+00A0 is C2 A0 in UTF-8; Go's byte loop treats A0 as a space.
    assert _dump("FROM a\nHEALTHCHECK CMD\u00a0x\n").endswith('(healthcheck "CMD\\xc2" "x")')


def test_to_json_shape() -> None:
    result = parse("# check=skip=all\nFROM a AS b\nRUN \\\n\n  x\n")
    data = to_json(result)
    json.dumps(data)  # JSON-ready
    assert data["directives"] == {
        "escape": "\\",
        "syntax": None,
        "syntax_line": None,
        "check": "skip=all",
    }
    assert data["warnings"][0]["line"] == 5
    first, run = data["instructions"]
    assert first["keyword"] == "from" and first["args"] == ["a", "AS", "b"]
    assert run["original"] == "RUN   x" and (run["start_line"], run["end_line"]) == (3, 5)


def test_instruction_keywords() -> None:
    assert len(INSTRUCTIONS) == 18 and "healthcheck" in INSTRUCTIONS
    assert all(k == k.lower() for k in INSTRUCTIONS)


@pytest.mark.parametrize(
    ("word", "suggestion"),
    [("RUNN", "RUN"), ("COPPY", "COPY"), ("FORM", "FROM"), ("entrypoin", "ENTRYPOINT"),
     ("run", None), ("xyzzy", None), ("", None)],
)
def test_did_you_mean(word: str, suggestion: str | None) -> None:
    assert did_you_mean(word) == suggestion


def test_deeply_chained_onbuild_is_a_diagnostic_not_a_crash() -> None:
    from layerkit.errors import DockerfileError

    with pytest.raises(DockerfileError, match="nested too deeply"):
        parse("FROM a\n" + "ONBUILD " * 5000 + "RUN x\n")
    assert _dump("FROM a\nONBUILD ONBUILD RUN x\n").endswith("(onbuild (onbuild (run \"x\")))")


_ALPHABET = st.sampled_from(
    [
        *"FROMRUNCOPYENVARGonbuild \t\\`#=\"'[]{},<<-EOF$\n\r\u00a0é",
        *["\n", "\\\n", "RUN ", "COPY ", "<<EOF", "ONBUILD ", "# escape=`\n", '["a"]'],
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_parse_only_raises_diagnostics(text: str) -> None:
    from layerkit.errors import DockerfileError

    try:
        result = parse(text)
    except DockerfileError as err:
        assert err.location is not None and err.hint
        return
    json.dumps(to_json(result))
    assert dump(result.ast).count("\n") == len(result.ast.children) - 1
