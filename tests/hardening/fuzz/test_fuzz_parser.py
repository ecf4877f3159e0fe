"""Fuzzing the Dockerfile parser, typed instructions and variable expansion.

Properties: any text either parses or fails with a DockerfileError that names
a line and gives a hint (never another exception); parsing is deterministic;
re-parsing the instructions' own ``original`` text gives the same tree
(parse → text → parse is stable); typed parsing and expansion of whatever
parsed fail only with layerkit errors.

``LAYERKIT_FUZZ_EXAMPLES`` sets the examples per property (conftest.py).
"""

from __future__ import annotations

from figures import bump
from hypothesis import given, settings
from hypothesis import strategies as st

from layerkit.dockerfile.dump import dump, to_json
from layerkit.dockerfile.expand import expand_instruction
from layerkit.dockerfile.instructions import parse_instruction
from layerkit.dockerfile.parser import parse
from layerkit.errors import DockerfileError, LayerkitError

KEYWORDS = ["FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "LABEL", "EXPOSE", "USER", "WORKDIR",
            "SHELL", "CMD", "ENTRYPOINT", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD",
            "MAINTAINER", "from", "Run", "BOGUS"]
FRAGMENTS = [" ", "  ", "\t", "\\", "\\\n", "`", "`\n", "\n", "\r\n", "#", "# escape=`\n",
             "# syntax=docker/dockerfile:1\n", "# check=skip=all\n", "<<EOF", "<<-EOF", "<<'EOF'",
             "\nEOF\n", "EOF", '["sh", "-c", "x"]', "[", "]", '"', "'", "$", "${A}", "${A:-b}",
             "${A:?e}", "$$", "--mount=type=cache,target=/x", "--from=a", "--chmod=0755",
             "--chown=1:1", "--link", "--network=none", "--platform=$BUILDPLATFORM", "=",
             "A=b", "a b", "/app", ".", "..", "*", "AS", "as x", "NONE", "--interval=5s",
             "CMD", "\ufeff", "é", "\x00", "\x85", "\u2028"]

fragment = st.one_of(st.sampled_from(FRAGMENTS), st.sampled_from(KEYWORDS),
                     st.text(max_size=4))
line = st.lists(fragment, max_size=8).map("".join)
dockerfile = st.lists(line, max_size=10).map("\n".join)


def _parse_or_error(text: str) -> object:
    try:
        return parse(text)
    except DockerfileError as err:
        assert err.message and err.hint, err
        assert err.location is not None and err.location.line >= 1, err
        return err


@settings(settings.get_profile("layerkit-fuzz"))
@given(dockerfile)
def test_parser_fails_only_with_dockerfile_error_and_is_deterministic(text: str) -> None:
    bump("fuzz: parser inputs")
    first = _parse_or_error(text)
    second = _parse_or_error(text)
    if isinstance(first, DockerfileError):
        assert isinstance(second, DockerfileError) and second.render() == first.render()
        return
    assert not isinstance(second, DockerfileError)
    assert dump(first.ast) == dump(second.ast)  # type: ignore[attr-defined]
    assert to_json(first) == to_json(second)  # type: ignore[arg-type]


@settings(settings.get_profile("layerkit-fuzz"))
@given(dockerfile)
def test_parse_text_parse_is_stable(text: str) -> None:
    """Each instruction's ``original`` (its logical line, continuations joined)
    parses back to the same node; heredoc instructions carry their bodies."""
    result = _parse_or_error(text)
    if isinstance(result, DockerfileError):
        return
    # A lone continuation at the end of the file gives an instruction with no
    # keyword, as in BuildKit; it has no text to re-parse.
    nodes = [n for n in result.ast.children  # type: ignore[attr-defined]
             if not n.heredocs and n.value]
    if not nodes:
        return
    prefix = "" if result.escape_token == "\\" else f"# escape={result.escape_token}\n"  # type: ignore[attr-defined]
    # "#" first: a BOM is stripped only from the file's first line, and the
    # escape directive must come before any other line.
    again = parse(prefix + "#\n" + "\n".join(n.original for n in nodes))
    assert [dump(n) for n in again.ast.children] == [dump(n) for n in nodes]
    bump("fuzz: parse-text-parse round trips")


ENV = {"A": "a b", "B": "", "HOME": "/root", "X": "${A}", "Y": "*"}


@settings(settings.get_profile("layerkit-fuzz"))
@given(dockerfile, st.sampled_from(["\\", "`"]))
def test_typed_parse_and_expansion_fail_only_with_layerkit_errors(text: str, escape: str) -> None:
    result = _parse_or_error(text)
    if isinstance(result, DockerfileError):
        return
    for node in result.ast.children:  # type: ignore[attr-defined]
        bump("fuzz: instructions typed and expanded")
        try:
            instr = parse_instruction(node)
            expand_instruction(instr, ENV, escape_token=escape)
        except LayerkitError as err:
            assert err.message, err


SHELL_PIECES = ["$", "${", "}", "A", "B", "X", ":", "-", "+", "?", "#", "%", "/", "//", "##",
                "%%", "\\", "`", "'", '"', " ", "*", "${A:-${B:+x}}", "${X}", "$A$B", "\n"]
word = st.lists(st.one_of(st.sampled_from(SHELL_PIECES), st.text(max_size=2)),
                max_size=20).map("".join)


@settings(settings.get_profile("layerkit-fuzz"))
@given(word, st.sampled_from(["\\", "`"]))
def test_variable_expansion_fails_only_with_dockerfile_error(text: str, escape: str) -> None:
    from layerkit.dockerfile.shell import ShellLex

    bump("fuzz: shell words expanded")
    lex = ShellLex(escape)
    try:
        one = lex.process_word(text, ENV)
        words = lex.process_words(text, ENV)
    except DockerfileError as err:
        assert err.hint, err
        return
    assert isinstance(one, str) and all(isinstance(w, str) and w for w in words)
    assert lex.process_word(text, ENV) == one  # deterministic
