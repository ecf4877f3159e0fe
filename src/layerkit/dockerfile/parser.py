"""Dockerfile bytes -> untyped syntax tree (:class:`ParseResult`), as BuildKit parses them.

The reading loop follows BuildKit's ``parser.Parse``: directives at the top,
comments, line continuations (continuation lines keep their indentation),
empty-continuation warnings, heredoc bodies, and line numbers. What one
logical line turns into is decided in ``line_parsers``. Every failure becomes a
:class:`~layerkit.errors.DockerfileError` naming file and line, quoting the
line and saying how to fix it.

Public interface: :func:`parse` and :func:`parse_file`.
"""

from __future__ import annotations

import os

from layerkit.dockerfile.ast import Heredoc, Node, ParseResult, Warning
from layerkit.dockerfile.directives import (
    DirectiveError,
    DirectiveParser,
    check_escape_token,
    detect_syntax,
    parse_directive,
)
from layerkit.dockerfile.gostring import (
    from_bytes,
    go_lower,
    replace_invalid,
    to_bytes,
    trim_left_space,
    trim_space,
)
from layerkit.dockerfile.heredoc import HeredocError, heredocs_from_line
from layerkit.dockerfile.keywords import HEREDOC_COMPOUND_INSTRUCTIONS, HEREDOC_INSTRUCTIONS
from layerkit.dockerfile.line_parsers import LineParseError, node_from_line
from layerkit.dockerfile.lines import (
    MAX_LINE_BYTES,
    UTF8_BOM,
    Continuation,
    is_comment,
    is_empty_continuation_line,
    split_lines,
    trim_newline,
)
from layerkit.errors import DockerfileError, Location
from layerkit.fastclass import dataclass, field, replace

__all__ = ["parse", "parse_file"]

EMPTY_CONTINUATION_DETAIL = "Empty continuation lines will become errors in a future release"


@dataclass
class _Reader:
    """Mutable state of one parse: the lines, the cursor and the escape token."""

    filename: str
    lines: list[str]
    index: int = 0  # next physical line to read (0-based)
    escape_token: str = "\\"
    continuation: Continuation = field(default_factory=lambda: Continuation("\\"))
    directives: DirectiveParser = field(default_factory=DirectiveParser)

    def next_line(self) -> str | None:
        if self.index >= len(self.lines):
            return None
        line = self.lines[self.index]
        self.index += 1
        return line

    def text_of(self, line_number: int) -> str:
        if 1 <= line_number <= len(self.lines):
            return _printable(trim_newline(self.lines[line_number - 1]))
        return ""

    def error(
        self, message: str, hint: str, line: int, end_line: int | None = None
    ) -> DockerfileError:
        location = Location(self.filename, max(line, 1), end_line, self.text_of(line))
        return DockerfileError(_printable(message), location=location, hint=hint)

    def check_directive(self, token: str, line_number: int) -> bool:
        """Feed one line to the directive parser; True when it was a directive."""
        try:
            directive = self.directives.parse_line(token)
            if directive is not None and directive.name == "escape":
                check_escape_token(directive.value)
                self.escape_token = directive.value
                self.continuation = Continuation(directive.value)
        except DirectiveError as err:
            raise self.error(err.message, err.hint, line_number) from None
        return directive is not None


def _printable(text: str) -> str:
    """Text safe to print: undecodable bytes shown as U+FFFD."""
    return replace_invalid(text)


def _to_bytes(text: str | bytes) -> bytes:
    return bytes(text) if isinstance(text, bytes | bytearray) else to_bytes(text)


def _comment_text(raw: str) -> str:
    # BuildKit drops the first *byte* of the line (usually the "#") and trims.
    return trim_space(from_bytes(to_bytes(raw)[1:]))


def _can_contain_heredoc(node: Node) -> bool:
    # ONBUILD RUN <<EOF: the nested instruction decides.
    nested = node.next[0].children if node.next else []
    if go_lower(node.value) in HEREDOC_COMPOUND_INSTRUCTIONS and nested:
        node = nested[0]
    return go_lower(node.value) in HEREDOC_INSTRUCTIONS and not node.is_json


def _read_heredoc_bodies(
    reader: _Reader, heredocs: list[Heredoc], start: int, current: int
) -> tuple[list[Heredoc], int]:
    """Consume the body of each heredoc in turn; returns them with content filled."""
    filled: list[Heredoc] = []
    for heredoc in heredocs:
        body: list[str] = []
        while True:
            raw = reader.next_line()
            if raw is None:
                raise reader.error(
                    "unterminated heredoc",
                    f"end the heredoc with a line containing only {heredoc.name!r}"
                    + (" (leading tabs allowed with <<-)" if heredoc.chomp else ""),
                    start,
                    current,
                )
            current += 1
            candidate = trim_newline(raw)
            if heredoc.chomp:
                candidate = candidate.lstrip("\t")
            if candidate == heredoc.name:
                break
            body.append(raw)
        filled.append(replace(heredoc, content="".join(body)))
    return filled, current


def parse(text: str | bytes, filename: str = "Dockerfile") -> ParseResult:
    """Parse Dockerfile text (bytes are read as BuildKit reads them: UTF-8, any bytes kept)."""
    data = _to_bytes(text)
    source = from_bytes(data).removeprefix(UTF8_BOM)
    scanned = split_lines(data)
    reader = _Reader(filename, scanned.lines)
    root = Node()
    warnings: list[Warning] = []
    comments: list[str] = []
    current = 0

    while (raw := reader.next_line()) is not None:
        if current == 0:
            raw = raw.removeprefix(UTF8_BOM)
        if is_comment(raw):
            comment = _comment_text(raw)
            if comment:
                comments.append(comment)
            else:
                comments = []  # a bare "#" separates comment blocks
        token = trim_left_space(trim_newline(raw))
        if reader.check_directive(token, current + 1) and comments:
            comments.pop()  # directives are not comments of the next instruction
        current += 1
        start = current
        line, ended = reader.continuation.trim("" if is_comment(token) else token)
        if ended and line == "":
            continue

        parts = [line]
        has_empty_continuation = False
        while not ended:
            raw = reader.next_line()
            if raw is None:
                break  # a continuation at end of file just ends the instruction
            token = trim_newline(raw)
            reader.check_directive(token, current + 1)
            current += 1
            if is_comment(raw):
                continue
            if is_empty_continuation_line(token):
                has_empty_continuation = True
                continue
            part, ended = reader.continuation.trim(token)
            parts.append(part)
        line = "".join(parts)

        if has_empty_continuation:
            warnings.append(
                Warning(
                    message="Empty continuation line found in: " + line,
                    line=current,
                    detail=EMPTY_CONTINUATION_DETAIL,
                )
            )

        try:
            child = node_from_line(line, reader.escape_token, comments)
        except LineParseError as err:
            raise reader.error(err.message, err.hint, start, current) from None
        except RecursionError:
            # Only reachable with hundreds of chained ONBUILDs; BuildKit's typed
            # layer rejects ONBUILD ONBUILD anyway.
            raise reader.error(
                "instruction nested too deeply",
                "ONBUILD cannot trigger another ONBUILD; remove the repeated ONBUILD",
                start,
                current,
            ) from None

        if _can_contain_heredoc(child) and "<<" in line:
            try:
                heredocs = heredocs_from_line(line)
            except HeredocError as err:
                raise reader.error(
                    str(err), "close the quote around the heredoc delimiter", start, current
                ) from None
            child.heredocs, current = _read_heredoc_bodies(reader, heredocs, start, current)

        child.start_line, child.end_line = start, current
        root.children.append(child)
        comments = []

    if scanned.too_long_line is not None:
        raise DockerfileError(
            f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES}",
            location=Location(
                filename, scanned.too_long_line, None, _printable(scanned.too_long_text)
            ),
            hint=f"split the line with a line continuation ({reader.escape_token} at the "
            "end of a line) or move long content into a file in the build context",
        )
    if not root.children:
        raise DockerfileError(
            "file with no instructions",
            location=Location(filename, 1, None, reader.text_of(1)),
            hint="a Dockerfile needs at least a FROM instruction (e.g. FROM alpine:3.20)",
        )
    root.start_line = root.children[0].start_line
    root.end_line = root.children[-1].end_line

    syntax = detect_syntax(source)
    check = parse_directive("check", source)
    return ParseResult(
        ast=root,
        escape_token=reader.escape_token,
        syntax=syntax.ref if syntax else None,
        syntax_line=syntax.line if syntax else None,
        check=check.ref if check else None,
        warnings=warnings,
        filename=filename,
        source=source,
    )


def parse_file(path: str | os.PathLike[str]) -> ParseResult:
    """Read and parse a Dockerfile; diagnostics name ``path`` as given."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise DockerfileError(
            f"cannot read Dockerfile {name}: no such file",
            hint="check the path, or pass -f/--file to name the Dockerfile "
            "(it defaults to CONTEXT/Dockerfile)",
            reference="dockerfile-not-found",
        ) from None
    except IsADirectoryError:
        raise DockerfileError(
            f"cannot read Dockerfile {name}: it is a directory",
            hint="pass the file itself with -f, e.g. -f "
            + os.path.join(name, "Dockerfile"),
            reference="dockerfile-not-found",
        ) from None
    except OSError as err:
        raise DockerfileError(
            f"cannot read Dockerfile {name}: {err.strerror or err}",
            hint="check the file's permissions",
            reference="dockerfile-not-found",
        ) from None
    return parse(data, filename=name)
