"""Shell wildcard patterns for ``${VAR#pat}``, ``${VAR%pat}`` and ``${VAR/pat/repl}``.

Transforms a pattern word (already expanded, escapes kept) into a regular
expression and applies it to a variable's value the way BuildKit's shell
lexer does with Go's ``regexp`` package:

* ``?`` is one character, ``*`` any run (shortest or longest), there are no
  bracket expressions;
* ``\\*``, ``\\?`` and ``\\\\`` are literal; ``\\}`` and ``\\/`` lose their
  backslash (it only kept them inside ``${}``); any other escape is an error;
* ``${VAR//pat/repl}`` follows Go's ``Regexp.ReplaceAllString``: an empty match
  right after a previous match is not replaced, and ``$0``/``${name}``/``$$``
  in the replacement are template references (see docs/dependencies.md).
"""

from __future__ import annotations

import re


class InvalidPattern(Exception):
    """The pattern holds an escape that is neither ``\\*``, ``\\?`` nor ``\\\\``."""


def pattern_to_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(star)
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            nxt = pattern[i] if i < len(pattern) else ""
            if nxt in ("}", "/"):
                continue  # the next round adds the brace or slash itself
            if nxt not in ("*", "?", "\\"):
                shown = f"\\{nxt}" if nxt else "\\ at the end"
                raise InvalidPattern(f"invalid escape '{shown}'")
            i += 1
            out.append(re.escape(nxt))
        else:
            # escapes at least Go's syntax set ``[]{}.+()|^$``; same matches
            out.append(re.escape(ch))
    return re.compile("".join(out))


def trim_prefix(pattern: str, value: str, *, greedy: bool) -> str:
    """``${VAR#pat}`` (shortest) and ``${VAR##pat}`` (longest)."""
    match = pattern_to_regex(pattern, greedy=greedy, anchored=True).search(value)
    return value[match.end() :] if match else value


def _reverse_pattern(pattern: str) -> str:
    # Reverse by tokens so that an escape pair such as ``\*`` stays in order.
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            tokens.append(pattern[i : i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))


def trim_suffix(pattern: str, value: str, *, greedy: bool) -> str:
    """``${VAR%pat}`` (shortest) and ``${VAR%%pat}`` (longest).

    A regular expression finds the leftmost match, not the shortest rightmost
    one, so the search runs on the reversed value with the reversed pattern.
    """
    trimmed = trim_prefix(_reverse_pattern(pattern), value[::-1], greedy=greedy)
    return trimmed[::-1]


def replace_first(pattern: str, value: str, replacement: str) -> str:
    """``${VAR/pat/repl}``: the replacement is inserted literally."""
    match = pattern_to_regex(pattern, greedy=True, anchored=False).search(value)
    if match is None:
        return value
    return value[: match.start()] + replacement + value[match.end() :]


def replace_all(pattern: str, value: str, replacement: str) -> str:
    """``${VAR//pat/repl}`` with Go's ``ReplaceAllString`` semantics.

    Python's ``re.sub`` also replaces an empty match that directly follows a
    non-empty one (``.*`` on ``ab`` gives two replacements); Go does not.
    """
    regex = pattern_to_regex(pattern, greedy=True, anchored=False)
    out: list[str] = []
    last_end = 0
    pos = 0
    while pos <= len(value):
        match = regex.search(value, pos)
        if match is None:
            break
        start, end = match.span()
        out.append(value[last_end:start])
        if end > last_end or start == 0:
            out.append(_expand_template(replacement, match))
        last_end = end
        # always advance at least one character
        pos = pos + 1 if pos + 1 > end else end
    out.append(value[last_end:])
    return "".join(out)


def _is_name_char(ch: str) -> bool:
    return ch.isalpha() or ch.isdecimal() or ch == "_"


def _expand_template(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.Expand`` for a regex whose only group is the whole match.

    ``$$`` is ``$``; ``$name``/``${name}`` is group ``name`` (only ``0`` exists,
    anything else is empty); a ``$`` not followed by a valid reference is kept.
    """
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        ch = template[i]
        i += 1
        if ch != "$":
            out.append(ch)
            continue
        if i < n and template[i] == "$":
            out.append("$")
            i += 1
            continue
        brace = i < n and template[i] == "{"
        j = i + 1 if brace else i
        k = j
        while k < n and _is_name_char(template[k]):
            k += 1
        name = template[j:k]
        if not name or (brace and (k >= n or template[k] != "}")):
            out.append("$")  # malformed reference: the dollar is literal text
            continue
        i = k + 1 if brace else k
        # Go parses the name as a number without leading zeros; ``0`` is the match.
        if name == "0":
            out.append(match.group(0))
    return "".join(out)
