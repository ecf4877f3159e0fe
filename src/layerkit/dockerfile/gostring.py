"""Go string semantics that BuildKit's parser output depends on, for Python ``str``.

BuildKit works on Go strings (byte slices that are usually UTF-8). We decode
Dockerfiles with ``surrogateescape``, so every byte that is not valid UTF-8 is
one lone surrogate U+DC80..U+DCFF and can be turned back into that byte. This
module transforms text the way these Go functions do:

* ``strconv.Quote`` (the dump format and ``%q``) -> :func:`go_quote`;
* ``unicode.IsSpace``, ``strings.TrimSpace`` -> :func:`is_space`, :func:`trim_space`;
* ``strings.ToLower`` -> :func:`go_lower`;
* ``utf8.DecodeRune`` turning a bad byte into U+FFFD -> :func:`replace_invalid`.

See docs/dependencies.md for the known gap (Unicode version of ``IsPrint``).
"""

from __future__ import annotations

import re

_ESCAPES = {
    0x07: "\\a",
    0x08: "\\b",
    0x0C: "\\f",
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
    0x0B: "\\v",
    0x22: '\\"',
    0x5C: "\\\\",
}
_SURROGATES = re.compile("[\ud800-\udfff]")


# Go's unicode.IsSpace: in Latin-1 these eight; above it, Unicode's White_Space
# property (category Z plus the line and paragraph separators). Kept here rather than
# taken from e2b-dockerfile-utils, whose import (~5 ms) most Dockerfiles then skip.
_SPACES = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def is_space(ch: str) -> bool:
    """Go's ``unicode.IsSpace`` for one character (a lone surrogate is never space)."""
    return ch in _SPACES


def is_escaped_byte(ch: str) -> bool:
    """True when ``ch`` stands for an undecodable byte (``surrogateescape``)."""
    return "\udc80" <= ch <= "\udcff"


def trim_left_space(text: str) -> str:
    """``strings.TrimLeftFunc(s, unicode.IsSpace)``."""
    i = 0
    while i < len(text) and is_space(text[i]):
        i += 1
    return text[i:]


def trim_space(text: str) -> str:
    """``strings.TrimSpace``: Unicode white space off both ends."""
    text = trim_left_space(text)
    end = len(text)
    while end > 0 and is_space(text[end - 1]):
        end -= 1
    return text[:end]


def to_bytes(text: str) -> bytes:
    """The Go bytes behind ``text`` (undecodable bytes restored)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A surrogate that did not come from surrogateescape (e.g. a caller's
        # own str): Go would have seen invalid UTF-8 there, i.e. U+FFFD.
        cleaned = "".join(c if is_escaped_byte(c) else replace_invalid(c) for c in text)
        return cleaned.encode("utf-8", "surrogateescape")


def from_bytes(data: bytes) -> str:
    """Decode Go bytes, keeping undecodable bytes as lone surrogates."""
    return data.decode("utf-8", "surrogateescape")


def replace_invalid(text: str) -> str:
    """Replace every lone surrogate with U+FFFD, as Go's rune decoding does."""
    return _SURROGATES.sub("\ufffd", text)


def go_lower(text: str) -> str:
    """``strings.ToLower``: per-rune simple lower-casing; invalid bytes become U+FFFD."""
    if text.isascii():
        return text.lower()
    out: list[str] = []
    for ch in text:
        if "\ud800" <= ch <= "\udfff":
            out.append("\ufffd")
        elif ch == "\u0130":  # Python's full mapping gives two runes, Go's simple one "i"
            out.append("i")
        else:
            low = ch.lower()
            out.append(low if len(low) == 1 else ch)
    return "".join(out)


def go_quote(text: str) -> str:
    """``strconv.Quote``: a double-quoted Go string literal, printable runes kept."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        simple = _ESCAPES.get(code)
        if simple is not None:
            out.append(simple)
        elif is_escaped_byte(ch):
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")  # not reachable from decoded input; Go has no such rune
        elif ch.isprintable():
            # Go's IsPrint is L, M, N, P, S plus ASCII space: Python's isprintable set.
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
