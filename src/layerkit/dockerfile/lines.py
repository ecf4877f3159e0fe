"""Physical lines of a Dockerfile: bytes -> decoded lines, comments, continuations.

This mirrors BuildKit's line scanner (``bufio.Scanner`` with a split function
that keeps line endings, 64 KiB token limit) and its per-line helpers. Lines
are decoded with ``surrogateescape`` so that invalid UTF-8 survives byte for
byte (see ``gostring``).
"""

from __future__ import annotations

import re

from layerkit.dockerfile.gostring import from_bytes, trim_left_space
from layerkit.fastclass import dataclass

# bufio.MaxScanTokenSize is 64 KiB and the token includes its "\n", so the
# longest accepted line content is one byte less.
MAX_LINE_BYTES = 64 * 1024 - 1
UTF8_BOM = "\ufeff"


@dataclass(frozen=True)
class SourceLines:
    """The physical lines that can be read, each with its line ending kept."""

    lines: list[str]
    # 1-based number of the first line over MAX_LINE_BYTES (reading stops there).
    too_long_line: int | None = None
    too_long_text: str = ""


def split_lines(data: bytes) -> SourceLines:
    """Split ``data`` on ``\\n`` keeping the endings; stop at an over-long line."""
    lines: list[str] = []
    start = 0
    size = len(data)
    while start < size:
        nl = data.find(b"\n", start)
        end = size if nl < 0 else nl + 1
        content_len = (end - start) - (0 if nl < 0 else 1)
        if content_len > MAX_LINE_BYTES:
            preview = from_bytes(data[start : start + 80])
            return SourceLines(lines, len(lines) + 1, preview + "...")
        lines.append(from_bytes(data[start:end]))
        start = end
    return SourceLines(lines)


def trim_newline(line: str) -> str:
    """``bytes.TrimRight(line, "\\r\\n")``."""
    return line.rstrip("\r\n")


def is_comment(line: str) -> bool:
    """A line whose first non-space character is ``#``."""
    return trim_left_space(line).startswith("#")


def is_empty_continuation_line(line: str) -> bool:
    return not trim_left_space(trim_newline(line))


class Continuation:
    """Detects and removes a trailing line-continuation escape token.

    The token continues the line when it is the last non-blank character and
    is not itself preceded by the token (``\\\\`` at the end does not continue),
    or when it is alone on the line. Like BuildKit, ``\\\\\\`` is not
    recognised as a continuation (kept on purpose, see FORMAT.md).
    """

    def __init__(self, escape_token: str) -> None:
        t = re.escape(escape_token)
        self._regex = re.compile(f"([^{t}]){t}[ \\t]*\\Z|^{t}[ \\t]*\\Z")

    def trim(self, line: str) -> tuple[str, bool]:
        """Returns (line without the continuation, whether the instruction ended)."""
        if self._regex.search(line):
            return self._regex.sub(r"\1", line, count=1), False
        return line, True
