"""One logical instruction line -> one instruction :class:`Node` (keyword, flags, arguments).

BuildKit's ``split_command.go`` and ``line_parsers.go`` rules, one small
function per argument style; FORMAT.md (conformance/buildkit-parser) is the
specification. Flags and the HEALTHCHECK type are scanned byte by byte, as in
Go, which is why they go through ``to_bytes``/``from_bytes``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

from layerkit.dockerfile.ast import Node
from layerkit.dockerfile.gostring import (
    from_bytes,
    go_lower,
    go_quote,
    replace_invalid,
    to_bytes,
    trim_left_space,
    trim_space,
)

# Go regexp `[\t\v\f\r ]+`: the separator between keyword/arguments and words.
_WHITESPACE = re.compile("[\\t\\v\\f\\r ]+")
# unicode.IsSpace applied to one byte (Go's rune(byte)): NEL and NBSP count.
_SPACE_BYTES = frozenset(b"\t\n\v\f\r \x85\xa0")

NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only"


class LineParseError(ValueError):
    """An instruction line that BuildKit rejects; carries a hint for the user."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


Args = tuple[list[Node], bool]  # (argument nodes, written in JSON form)
LineParser = Callable[[str, str], Args]


def _nodes(values: list[str]) -> list[Node]:
    return [Node(value=v) for v in values]


# -- splitting the keyword and flags -------------------------------------------------


def extract_builder_flags(line: str, escape_token: str) -> tuple[str, list[str]]:
    """Leading ``--flag`` words of ``line`` -> (the rest of the line, the flags).

    Works on bytes like Go's loop over ``line[pos]``: every byte becomes the
    code point U+00XX, so non-ASCII text inside a flag turns into Latin-1
    mojibake, exactly as BuildKit does.
    """
    data = to_bytes(line)
    esc = ord(escape_token)
    flags: list[str] = []
    word: list[str] = []
    blank_ok = False
    quote = 0
    phase = "spaces"
    pos = 0
    size = len(data)
    while pos <= size:
        ch = data[pos] if pos < size else -1
        if phase == "spaces":
            if pos == size:
                break
            if ch in _SPACE_BYTES:
                pos += 1
                continue
            # Only a word starting with "--" continues the flags.
            if ch != 0x2D or pos + 1 == size or data[pos + 1] != 0x2D:
                return from_bytes(data[pos:]), flags
            phase = "word"
        if pos == size:
            text = "".join(word)
            if text != "--" and (blank_ok or word):
                flags.append(text)
            break
        if phase == "word":
            if ch in _SPACE_BYTES:
                phase = "spaces"
                text = "".join(word)
                if text == "--":
                    return from_bytes(data[pos:]), flags
                if blank_ok or word:
                    flags.append(text)
                word = []
                blank_ok = False
                pos += 1
                continue
            if ch in (0x27, 0x22):
                quote = ch
                blank_ok = True
                phase = "quote"
                pos += 1
                continue
            if ch == esc:
                if pos + 1 == size:
                    pos += 1
                    continue  # a trailing escape token is dropped
                pos += 1
                ch = data[pos]
            word.append(chr(ch))
            pos += 1
            continue
        # phase == "quote"
        if ch == quote:
            phase = "word"
            pos += 1
            continue
        if ch == esc:
            if pos + 1 == size:
                phase = "word"
                pos += 1
                continue
            pos += 1
            ch = data[pos]
        word.append(chr(ch))
        pos += 1
    return "", flags


def split_command(line: str, escape_token: str) -> tuple[str, list[str], str]:
    """(keyword as written, flags, argument string) of one logical line."""
    parts = _WHITESPACE.split(trim_space(line), maxsplit=1)
    flags: list[str] = []
    rest = ""
    if len(parts) == 2:
        rest, flags = extract_builder_flags(parts[1], escape_token)
    return parts[0], flags, trim_space(rest)


# -- argument styles -----------------------------------------------------------------


def parse_words(rest: str, escape_token: str) -> list[str]:
    """Quote-aware split on white space; quotes and escapes stay in the words."""
    # Imported here: only ENV, LABEL and ARG lines need it (the package is ~5 ms).
    from e2b_dockerfile_utils import parse_words as _e2b_parse_words

    # Go decodes runes: an undecodable byte becomes U+FFFD in the word.
    words: list[str] = _e2b_parse_words(replace_invalid(rest), escape_token)
    return words


def _reject_constant(name: str) -> float:
    raise ValueError(f"not JSON: {name}")


def _go_number(text: str) -> float:
    # Go decodes JSON numbers into float64; one that overflows is a decode error
    # (so the line falls back to shell form), not a non-string element.
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} out of range")
    return value


def parse_json(rest: str) -> list[str] | None:
    """The strings of a JSON array, or None when ``rest`` is not one.

    Raises :class:`LineParseError` for a valid array with a non-string element:
    BuildKit does not fall back to shell form in that case.
    """
    rest = trim_left_space(rest)
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(
            rest,
            parse_constant=_reject_constant,
            parse_int=_go_number,
            parse_float=_go_number,
        )
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise LineParseError(
            NOT_STRING_ARRAY,
            'write every element as a quoted string, e.g. ["echo", "hello"]',
        )
    # Go's decoder turns invalid UTF-8 and lone \\uD800-style escapes into U+FFFD.
    return [replace_invalid(item) for item in value]


def parse_ignore(rest: str, escape_token: str) -> Args:
    """Unknown instruction: arguments dropped, one empty node (BuildKit parseIgnore)."""
    return [Node()], False


def parse_string(rest: str, escape_token: str) -> Args:
    return ([] if rest == "" else [Node(value=rest)]), False


def parse_strings_whitespace_delimited(rest: str, escape_token: str) -> Args:
    if rest == "":
        return [], False
    return _nodes(_WHITESPACE.split(rest)), False


def parse_maybe_json(rest: str, escape_token: str) -> Args:
    """JSON array of strings, or the whole string as one node (RUN, CMD, ...)."""
    if rest == "":
        return [], False
    values = parse_json(rest)
    if values is not None:
        return _nodes(values), True
    return [Node(value=rest)], False


def parse_maybe_json_to_list(rest: str, escape_token: str) -> Args:
    """JSON array of strings, or white-space separated words (ADD, COPY, VOLUME)."""
    values = parse_json(rest)
    if values is not None:
        return _nodes(values), True
    return parse_strings_whitespace_delimited(rest, escape_token)


def parse_name_or_name_val(rest: str, escape_token: str) -> Args:
    """ARG: one node per quote-aware word, quotes kept."""
    return _nodes(parse_words(rest, escape_token)), False


def parse_name_val(rest: str, key: str, escape_token: str) -> list[Node]:
    """ENV/LABEL: (key, value, separator) triples; legacy ``KEY value`` form too."""
    words = parse_words(rest, escape_token)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise LineParseError(
                f"{key} must have two arguments",
                f"write {key} NAME=value (or the legacy form {key} NAME value)",
            )
        return _nodes([parts[0], parts[1], ""])
    values: list[str] = []
    for word in words:
        if "=" not in word:
            raise LineParseError(
                f"Syntax error - can't find = in {go_quote(word)}. "
                "Must be of the form: name=value",
                f"write every item as NAME=value (quote values that contain spaces); "
                f"{go_quote(word)} has no '='",
            )
        name, value = word.split("=", 1)
        values.extend([name, value, "="])
    return _nodes(values)


def parse_env(rest: str, escape_token: str) -> Args:
    return parse_name_val(rest, "ENV", escape_token), False


def parse_label(rest: str, escape_token: str) -> Args:
    return parse_name_val(rest, "LABEL", escape_token), False


def parse_health_config(rest: str, escape_token: str) -> Args:
    """HEALTHCHECK: the type word (CMD, NONE, ...) then a CMD-style command."""
    data = to_bytes(rest)  # Go scans bytes here, so NEL/NBSP bytes separate words
    sep = 0
    while sep < len(data) and data[sep] not in _SPACE_BYTES:
        sep += 1
    nxt = sep
    while nxt < len(data) and data[nxt] in _SPACE_BYTES:
        nxt += 1
    if sep == 0:
        return [], False
    command, is_json = parse_maybe_json(from_bytes(data[nxt:]), escape_token)
    return [Node(value=from_bytes(data[:sep])), *command], is_json


def parse_sub_command(rest: str, escape_token: str) -> Args:
    """ONBUILD: the rest is a whole instruction, nested as the child of one node."""
    if rest == "":
        return [], False
    return [Node(children=[node_from_line(rest, escape_token, [])])], False


DISPATCH: dict[str, LineParser] = {
    "add": parse_maybe_json_to_list,
    "arg": parse_name_or_name_val,
    "cmd": parse_maybe_json,
    "copy": parse_maybe_json_to_list,
    "entrypoint": parse_maybe_json,
    "env": parse_env,
    "expose": parse_strings_whitespace_delimited,
    "from": parse_strings_whitespace_delimited,
    "healthcheck": parse_health_config,
    "label": parse_label,
    "maintainer": parse_string,
    "onbuild": parse_sub_command,
    "run": parse_maybe_json,
    "shell": parse_maybe_json,
    "stopsignal": parse_string,
    "user": parse_string,
    "volume": parse_maybe_json_to_list,
    "workdir": parse_string,
}


def node_from_line(line: str, escape_token: str, comments: list[str]) -> Node:
    """The instruction node for one logical line (continuations already joined)."""
    keyword, flags, rest = split_command(line, escape_token)
    parser = DISPATCH.get(go_lower(keyword), parse_ignore)
    args, is_json = parser(rest, escape_token)
    return Node(
        value=keyword,
        next=args,
        flags=flags,
        original=line,
        prev_comment=comments,
        is_json=is_json,
    )

