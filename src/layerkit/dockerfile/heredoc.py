"""Heredoc markers on an instruction line -> :class:`~layerkit.dockerfile.ast.Heredoc`.

Wraps e2b-dockerfile-utils, which ports BuildKit's ``ParseHeredoc`` and shell
lexer faithfully, and fixes the one place where the conformance table differs:
``RUN <<- EOF`` (space after ``<<-``) must give a heredoc named ``EOF``.
The bodies are read by the parser, not here.
"""

from __future__ import annotations

import re

from layerkit.dockerfile.ast import Heredoc

# e2b-dockerfile-utils is imported where used (~5 ms): most Dockerfiles have no heredoc.

_MAX_UINT64 = 2**64 - 1
# A lexed word that is only the chomping operator: its terminator word follows.
_BARE_CHOMP_OPERATOR = re.compile(r"[0-9]*<<-")


class HeredocError(ValueError):
    """A heredoc marker that cannot be read (e.g. an unterminated quote)."""


def parse_heredoc(word: str) -> Heredoc | None:
    """The heredoc a single lexed word opens (``3<<-'EOF'``), or None if it opens none."""
    from e2b_dockerfile_utils import parse_heredoc as _e2b_parse_heredoc

    try:
        found = _e2b_parse_heredoc(word)
    except ValueError as err:
        raise HeredocError(str(err)) from None
    if found is None:
        return None
    return Heredoc(
        name=found.name,
        content="",
        # Go parses the digits with ParseUint and ignores the range error.
        file_descriptor=min(found.file_descriptor, _MAX_UINT64),
        expand=found.expand,
        chomp=found.chomp,
    )


def _line_words(line: str) -> list[str]:
    """Shell words of ``line`` with quotes, escapes and ``$vars`` kept raw."""
    from e2b_dockerfile_utils import ShellLex

    try:
        words: list[str] = ShellLex("\\", raw_quotes=True, raw_escapes=True).process_words(line)
    except ValueError:
        # BuildKit ignores a lexing error here: the line simply has no heredocs.
        return []
    merged: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if _BARE_CHOMP_OPERATOR.fullmatch(word) and i + 1 < len(words):
            # `<<- EOF`: the lexer keeps blanks after `<<` in the word but not
            # after `<<-`; join the terminator back (heredoc_helpers.json).
            word += words[i + 1]
            i += 1
        merged.append(word)
        i += 1
    return merged


def heredocs_from_line(line: str) -> list[Heredoc]:
    """Every heredoc opened on an instruction line, in order."""
    found: list[Heredoc] = []
    for word in _line_words(line):
        heredoc = parse_heredoc(word)
        if heredoc is not None:
            found.append(heredoc)
    return found


def chomp_heredoc_content(content: str) -> str:
    """Strip leading tabs from every line, as ``<<-`` asks (done after parsing)."""
    from e2b_dockerfile_utils import chomp_heredoc_content as _e2b_chomp

    result: str = _e2b_chomp(content)
    return result
