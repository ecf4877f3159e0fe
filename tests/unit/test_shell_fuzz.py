"""Property tests for the shell lexer: it fails only with DockerfileError, and
plain text passes through unchanged.

A third property compares it with e2b-dockerfile-utils' port of the same
BuildKit code on the inputs where docs/dependencies.md says the two agree.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layerkit.dockerfile.shell import ShellLex
from layerkit.errors import DockerfileError

ENV = {"A": "a b", "B": "", "C": "x*y?z", "D": "/p/q/r", "É": "é"}
# Characters the grammar cares about, weighted up so that hypothesis builds
# real ${...} expressions instead of only plain text.
SYNTAX = "${}:-+?#%/\\'\"<*` \t"
NAMES = "ABCDÉX019_@"
tokens = st.one_of(
    st.sampled_from(list(SYNTAX)),
    st.sampled_from(list(NAMES)),
    st.sampled_from(["${", "${A", ":-", "//", "##", "%%", "<<", "\\$", "'", '"']),
    st.characters(codec="utf-8", exclude_categories=["Cs"]),
)
fuzz_text = st.lists(tokens, max_size=40).map("".join)
GO_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

options = st.fixed_dictionaries(
    {
        "raw_quotes": st.booleans(),
        "raw_escapes": st.booleans(),
        "skip_unset_env": st.booleans(),
        "skip_process_quotes": st.booleans(),
        "case_insensitive_env": st.booleans(),
    }
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=fuzz_text, escape=st.sampled_from(["\\", "`"]), opts=options)
def test_any_input_fails_only_with_dockerfile_error(
    text: str, escape: str, opts: dict[str, bool]
) -> None:
    lex = ShellLex(escape, **opts)
    try:
        got = lex.process_word_with_matches(text, ENV)
    except DockerfileError as err:
        assert err.message.startswith("failed to process ")
        assert err.hint
        return
    assert all(got.words), "words are never empty strings"
    assert not (got.matched & got.unmatched)
    assert got.matched <= set(ENV) or opts["case_insensitive_env"]


@settings(max_examples=300, deadline=None)
@given(text=st.text(string.printable, max_size=200))
def test_printable_input_fails_only_with_dockerfile_error(text: str) -> None:
    try:
        result = ShellLex().process_word(text, ENV)
    except DockerfileError:
        return
    assert isinstance(result, str)


plain_text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="$'\"\\\ufeff"),
    max_size=60,
)


@settings(max_examples=500, deadline=None)
@given(text=plain_text)
def test_plain_text_is_the_identity(text: str) -> None:
    got = ShellLex().process_word_with_matches(text, ENV)
    assert got.result == text
    assert got.matched == got.unmatched == frozenset()


@settings(max_examples=500, deadline=None)
@given(text=plain_text.filter(lambda t: "<" not in t))
def test_plain_text_splits_on_go_whitespace(text: str) -> None:
    expected, current = [], ""
    for ch in text:
        if ch in GO_SPACES:
            if current:
                expected.append(current)
            current = ""
        else:
            current += ch
    if current:
        expected.append(current)
    assert ShellLex().process_words(text, ENV) == expected


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=fuzz_text.filter(lambda t: "/" not in t and not t.startswith("\ufeff")))
def test_agrees_with_e2b_where_documented(text: str) -> None:
    """Same result and same failure as e2b's ShellLex, outside the known differences.

    Known differences (docs/dependencies.md): ``${V//p/r}`` replacement rules,
    empty quoted words in ``process_words`` and a leading byte-order mark.
    """
    # imported here so that a missing e2b skips only this test, not the module
    e2b_lexer = pytest.importorskip("e2b_dockerfile_utils.lexer")
    theirs_lex = e2b_lexer.ShellLex("\\", env=ENV, skip_unset_env=False)
    try:
        theirs: str | None = theirs_lex.process_word(text)
    except ValueError:
        theirs = None
    try:
        ours: str | None = ShellLex().process_word(text, ENV)
    except DockerfileError:
        ours = None
    assert ours == theirs
    if ours is not None and not any(q in text for q in "'\""):
        assert ShellLex().process_words(text, ENV) == theirs_lex.process_words(text)
