"""Shell-lexer behaviour the BuildKit corpus does not pin down.

Expected values come from reading BuildKit's ``shell/lex.go`` and Go's
``regexp`` package; where Python's own behaviour would differ, the test says so.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from layerkit.dockerfile.shell import ExpansionResult, ShellLex, env_from_list
from layerkit.errors import DockerfileError, Location

ENV = {"A": "ab", "EMPTY": "", "PATHS": "/usr/local/bin:/usr/bin", "FILE": "pkg.tar.gz"}


def word(text: str, env: dict[str, str] | None = None, **opts: bool) -> str:
    return ShellLex("\\", **opts).process_word(text, ENV if env is None else env)


def words(text: str, env: dict[str, str] | None = None, **opts: bool) -> list[str]:
    return ShellLex("\\", **opts).process_words(text, ENV if env is None else env)


# -- word splitting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a '' b", ["a", "b"]),  # an empty quoted string makes no word (Go drops it)
        ("''", []),
        ('"" x', ["x"]),
        ('"$EMPTY"', []),
        ("x$EMPTY y", ["x", "y"]),
        ("a\u3000b\u2028c", ["a", "b", "c"]),  # Go's unicode.IsSpace
        ("a\x1cb", ["a\x1cb"]),  # str.isspace() says yes, Go says no
        ("a\\ b", ["a b"]),
        ('"$A c"d', ["ab cd"]),
    ],
)
def test_word_splitting(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_process_words_splits_expanded_values_but_process_word_keeps_spaces() -> None:
    env = {"V": " one  two "}
    assert words("x${V}y", env) == ["x", "one", "two", "y"]
    assert word("x${V}y", env) == "x one  two y"


# -- heredoc-ish words ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<<EOF", ["<<EOF"]),
        ("<< EOF cat", ["<< EOF", "cat"]),  # the blanks after << stay in its word
        ("<<\t \tEOF", ["<<\t \tEOF"]),
        ("<<-EOT", ["<<-EOT"]),
        ("a<b c", ["a<b", "c"]),
        ("cat <<EOF >out", ["cat", "<<EOF", ">out"]),
        ("<<\nEOF", ["<<", "EOF"]),  # only tab, CR and space are kept
    ],
)
def test_heredoc_markers_keep_their_blanks(text: str, expected: list[str]) -> None:
    assert words(text) == expected
    assert word(text) == text


def test_parser_mode_keeps_heredoc_names_as_written() -> None:
    # The parser finds heredoc names with raw quotes, raw escapes and unset
    # variables kept, then decides itself whether the name was quoted.
    lex = ShellLex("\\", raw_quotes=True, raw_escapes=True, skip_unset_env=True)
    assert lex.process_words('<<"EOF" <<$END <<\\X', {}) == ['<<"EOF"', "<<$END", "<<\\X"]


# -- options -------------------------------------------------------------------------------


def test_raw_quotes_keep_quote_characters() -> None:
    assert words("'a b' \"c $A\"", raw_quotes=True) == ["'a b'", '"c ab"']


def test_skip_process_quotes_treats_quotes_as_text() -> None:
    assert words("'a b' \"$A\"", skip_process_quotes=True) == ["'a", "b'", '"ab"']


def test_raw_escapes_keep_the_escape_token() -> None:
    assert word('a\\$A "\\$A"', raw_escapes=True) == 'a\\$A \\$A'
    assert word('a\\$A "\\$A"') == "a$A $A"


def test_skip_unset_env_keeps_references_to_unset_names() -> None:
    lex = ShellLex(skip_unset_env=True)
    text = "$X ${X} ${X:-d} ${X+a} ${X/a/b} ${X//a/b} $A ${A%b}"
    got = lex.process_word_with_matches(text, ENV)
    assert got.result == "$X ${X} ${X:-d} ${X+a} ${X/a/b} ${X//a/b} ab a"
    assert got.unmatched == {"X"}
    assert got.matched == {"A"}


def test_case_insensitive_env_prefers_the_exact_name() -> None:
    lex = ShellLex(case_insensitive_env=True)
    env = {"pwd": "lower", "PWD": "upper"}
    assert lex.process_word("$pwd $PWD", env) == "lower upper"
    got = lex.process_word_with_matches("$Path", {"PATH": "/bin"})
    assert (got.result, got.matched, got.unmatched) == ("/bin", frozenset({"Path"}), frozenset())
    assert ShellLex().process_word("$Path", {"PATH": "/bin"}) == ""


def test_escape_token_must_be_one_character() -> None:
    with pytest.raises(ValueError, match="one character"):
        ShellLex("")


# -- backtick escape token -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("C:\\Users\\$A", "C:\\Users\\ab"),  # a backslash is plain text
        ("he`$A", "he$A"),
        ('"a`"b"', 'a"b'),
        ('"a`xb"', "a`xb"),  # inside double quotes only ", $ and ` can be escaped
        ("a``b", "a`b"),
        ("tail`", "tail"),
        ("${X:-`}}", "}"),
    ],
)
def test_backtick_escape_token(text: str, expected: str) -> None:
    assert ShellLex("`").process_word(text, ENV) == expected


# -- modifiers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${FILE%.*}", "pkg.tar"),
        ("${FILE%%.*}", "pkg"),
        ("${FILE#*.}", "tar.gz"),
        ("${FILE##*.}", "gz"),
        ("${PATHS#*:}", "/usr/bin"),
        ("${PATHS%:*}", "/usr/local/bin"),
        ("${PATHS/:/ }", "/usr/local/bin /usr/bin"),
        ("${PATHS//\\//|}", "|usr|local|bin:|usr|bin"),
        ("${A/#a/x}", "ab"),  # no bash anchors: "#a" is a literal pattern
        ("${A/?/'$0'}", "$0b"),  # a single replacement is inserted literally
    ],
)
def test_pattern_modifiers(text: str, expected: str) -> None:
    assert word(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Go's ReplaceAllString skips an empty match right after a match;
        # Python's re.sub would give "xx".
        ("${A//*/x}", "x"),
        ("${A///-}", "-a-b-"),
        # and it expands $-templates in the replacement: only group 0 exists
        ("${A//b/'[$0]'}", "a[b]"),
        ("${A//b/'${0}'}", "ab"),
        ("${A//b/'$1'}", "a"),
        ("${A//b/'$name'}", "a"),
        ("${A//b/'$$'}", "a$"),
        ("${A//b/'$-'}", "a$-"),
        ("${A//b/'${0'}", "a${0"),
        ("${A//b/'$00'}", "a"),
    ],
)
def test_replace_all_follows_go_regexp(text: str, expected: str) -> None:
    assert word(text) == expected


# -- matched / unmatched -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env", "result", "matched", "unmatched"),
    [
        # the default word is expanded even when it is not used, so every name
        # in the expression is reported
        ("${A:-${B:-${C}}}", {"B": "b"}, "b", {"B"}, {"A", "C"}),
        ("${A:-${B:-${C}}}", {"A": "a"}, "a", {"A"}, {"B", "C"}),
        ("${A:+$B}", {}, "", set(), {"A", "B"}),
        ("${A-x}", {"A": ""}, "", {"A"}, set()),
        ("${A#$P}${A%%$P}", {"A": "xyx", "P": "x"}, "yxxy", {"A", "P"}, set()),
        ("$1 $@ ${#} $$", {}, "   ", set(), {"1", "@", "#", "$"}),
        ("'$A' \\$B \"$C\"", {"C": "c"}, "$A $B c", {"C"}, set()),
        ("x${A}x$A", {}, "xx", set(), {"A"}),
    ],
)
def test_matched_and_unmatched_names(
    text: str, env: dict[str, str], result: str, matched: set[str], unmatched: set[str]
) -> None:
    got = ShellLex().process_word_with_matches(text, env)
    assert got.result == result
    assert got.matched == matched
    assert got.unmatched == unmatched


def test_expansion_result_is_frozen_and_carries_words() -> None:
    got = ShellLex().process_word_with_matches("a $A", MappingProxyType(ENV))
    assert isinstance(got, ExpansionResult)
    assert got.words == ("a", "ab")
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.result = "changed"  # type: ignore[misc]


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("'abc", "matching single-quote"),
        ('"abc', "matching double-quote"),
        ("${}", "bad substitution"),
        ("${:-x}", "bad substitution"),
        ("${A", "missing '}'"),
        ("${A:-x", "missing '}'"),
        ("${A/x", "missing '/'"),
        ("${A/x/y", "missing '}'"),
        ("${A:#x}", "unsupported modifier (:#)"),
        ("${A:%%x}", "unsupported modifier (:%)"),
        ("${A=x}", "unsupported modifier (=)"),
        ("${A:=x}", "unsupported modifier (:=)"),
        ("${A#\\x}", "invalid pattern"),
        ("${A?must be set}", "A: must be set"),
        ("${NOPE?}", "NOPE: is not allowed to be unset"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
    ],
)
def test_errors_are_dockerfile_errors_with_a_hint(text: str, message: str) -> None:
    env = {"EMPTY": ""} if "EMPTY" in text or "NOPE" in text else {}
    with pytest.raises(DockerfileError) as info:
        ShellLex().process_word(text, env)
    err = info.value
    assert message in err.message
    assert err.message.startswith("failed to process ")
    assert err.hint
    assert err.reference == "variable-expansion"


def test_error_carries_the_callers_location() -> None:
    where = Location("Dockerfile", 3, text="ENV a='x")
    with pytest.raises(DockerfileError) as info:
        ShellLex().process_word("'x", {}, location=where)
    assert info.value.location == where
    assert "Dockerfile:3" in info.value.render()


def test_mandatory_message_is_expanded() -> None:
    with pytest.raises(DockerfileError) as info:
        ShellLex().process_word("${VERSION:?pass --build-arg VERSION=$EX}", {"EX": "1.2"})
    assert "VERSION: pass --build-arg VERSION=1.2" in info.value.message


def test_nesting_limit() -> None:
    def nested(depth: int) -> str:
        return "${X:-" * depth + "end" + "}" * depth

    assert ShellLex().process_word(nested(100), {}) == "end"
    with pytest.raises(DockerfileError, match="nested"):
        ShellLex().process_word(nested(101), {})


# -- small things --------------------------------------------------------------------------


def test_trailing_escape_is_dropped_and_leading_bom_skipped() -> None:
    assert word("abc\\") == "abc"
    assert word("\ufeff$A") == "ab"  # Go's text/scanner skips a leading BOM


def test_env_from_list_last_wins_and_bare_key_is_empty() -> None:
    assert env_from_list(["A=1", "B", "A=2", "C=x=y"]) == {"A": "2", "B": "", "C": "x=y"}
