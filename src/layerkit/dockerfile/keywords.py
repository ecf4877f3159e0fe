"""The Dockerfile instruction keywords, and a did-you-mean for misspelt ones.

The parser itself accepts unknown keywords (BuildKit dumps ``FOO bar`` as
``(foo "")``); the typed-instruction layer and ``check`` use
:func:`did_you_mean` to turn them into a helpful diagnostic.
"""

from __future__ import annotations

import difflib

INSTRUCTIONS: frozenset[str] = frozenset(
    {
        "add",
        "arg",
        "cmd",
        "copy",
        "entrypoint",
        "env",
        "expose",
        "from",
        "healthcheck",
        "label",
        "maintainer",
        "onbuild",
        "run",
        "shell",
        "stopsignal",
        "user",
        "volume",
        "workdir",
    }
)

# Instructions whose argument line may open heredocs (BuildKit heredocDirectives),
# and the compound instruction whose nested instruction is checked instead.
HEREDOC_INSTRUCTIONS: frozenset[str] = frozenset({"add", "copy", "run"})
HEREDOC_COMPOUND_INSTRUCTIONS: frozenset[str] = frozenset({"onbuild"})

# Sorted so that ties in similarity always give the same suggestion.
_CANDIDATES = sorted(INSTRUCTIONS)


def did_you_mean(word: str) -> str | None:
    """The closest instruction keyword (upper case) for an unknown ``word``.

    Returns None for a word that already is an instruction, or when nothing is
    close enough to be a plausible typo.
    """
    lowered = word.lower()
    if not lowered or lowered in INSTRUCTIONS:
        return None
    matches = difflib.get_close_matches(lowered, _CANDIDATES, n=1, cutoff=0.6)
    return matches[0].upper() if matches else None
