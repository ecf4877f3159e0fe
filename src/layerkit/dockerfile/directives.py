"""Parser directives: leading ``# key=value`` comment lines -> escape/syntax/check.

Two consumers, as in BuildKit's ``directives.go``:

* the parser feeds every line to a :class:`DirectiveParser` while it reads
  (only ``escape`` changes how the rest of the file is read);
* :func:`detect_syntax` / :func:`parse_directive` look at the whole text to
  find the frontend (``syntax``, also as ``//syntax=`` or a JSON object) and the
  linter configuration (``check``).
"""

from __future__ import annotations

import json
import re

from layerkit.dockerfile.gostring import trim_left_space
from layerkit.fastclass import dataclass

DIRECTIVE_KEYS: frozenset[str] = frozenset({"syntax", "escape", "check"})
VALID_ESCAPE_TOKENS = ("\\", "`")

# Go's \s is ASCII [\t\n\f\r ]; the key is matched after the comment prefix.
_GO_S = "[\\t\\n\\f\\r ]"
_DIRECTIVE = re.compile(f"([a-zA-Z][a-zA-Z0-9]*){_GO_S}*={_GO_S}*(.+?){_GO_S}*\\Z")


class DirectiveError(ValueError):
    """A directive line that is recognised but wrong (repeated, bad escape)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Directive:
    name: str  # lower-cased key
    value: str
    line: int  # 1-based


@dataclass(frozen=True)
class DirectiveValue:
    """What DetectSyntax/ParseDirective return: ``ref`` is ``cmdline`` up to its
    first space (``# syntax = img // opts`` gives ref ``img``)."""

    ref: str
    cmdline: str
    line: int


class DirectiveParser:
    """Reads directives one line at a time until the first line that is not one."""

    def __init__(self, comment: str = "#", line: int = 0) -> None:
        self._comment = comment
        self._line = line
        self._seen: set[str] = set()
        self.done = False

    def parse_line(self, line: str) -> Directive | None:
        """The directive on ``line`` (already without its newline), if any."""
        self._line += 1
        if self.done:
            return None
        if not line.startswith(self._comment):
            self.done = True
            return None
        match = _DIRECTIVE.match(trim_left_space(line[len(self._comment) :]))
        if match is None:
            self.done = True
            return None
        key = match.group(1).lower()
        if key not in DIRECTIVE_KEYS:
            self.done = True
            return None
        if key in self._seen:
            raise DirectiveError(
                f"only one {key} parser directive can be used",
                f"remove the repeated '# {key}=' line; a directive may appear once",
            )
        self._seen.add(key)
        return Directive(key, match.group(2), self._line)

    def parse_all(self, text: str) -> list[Directive]:
        """All leading directives of ``text``; stops quietly at a repeated one."""
        found: list[Directive] = []
        for raw in _scan_lines(text):
            if self.done:
                break
            try:
                directive = self.parse_line(raw)
            except DirectiveError:
                break
            if directive is not None:
                found.append(directive)
        return found


def check_escape_token(value: str) -> None:
    if value not in VALID_ESCAPE_TOKENS:
        raise DirectiveError(
            f"invalid escape token '{value}' does not match ` or \\",
            "use '# escape=\\' (the default) or '# escape=`'",
        )


def _scan_lines(text: str) -> list[str]:
    """``bufio.ScanLines``: split on \\n, drop one trailing \\r, no empty last line."""
    if not text:
        return []
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return [p[:-1] if p.endswith("\r") else p for p in parts]


def _discard_shebang(text: str) -> tuple[str, bool]:
    first, _sep, rest = text.partition("\n")
    if first.startswith("#!"):
        return rest, True
    return text, False


def _from_parser(key: str, text: str, parser: DirectiveParser) -> DirectiveValue | None:
    for directive in parser.parse_all(text):
        if directive.name == key:
            ref = directive.value.split(" ", 1)[0]
            return DirectiveValue(ref, directive.value, directive.line)
    return None


def _find_directive(key: str, text: str, any_format: bool) -> DirectiveValue | None:
    text = text.removeprefix("\ufeff")
    text, had_shebang = _discard_shebang(text)
    first_line = 1 if had_shebang else 0
    found = _from_parser(key, text, DirectiveParser("#", first_line))
    if found is not None or not any_format:
        return found
    found = _from_parser(key, text, DirectiveParser("//", first_line))
    if found is not None:
        return found
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(document, dict) and isinstance(document.get(key), str):
        value: str = document[key]
        # BuildKit reports line 0 (or 1 after a shebang) here; keep it 1-based.
        return DirectiveValue(value, value, max(first_line, 1))
    return None


def detect_syntax(text: str) -> DirectiveValue | None:
    """BuildKit's ``DetectSyntax``: ``#``, then ``//`` directives, then a JSON object."""
    return _find_directive("syntax", text, any_format=True)


def parse_directive(key: str, text: str) -> DirectiveValue | None:
    """BuildKit's ``ParseDirective``: ``#`` directives only."""
    return _find_directive(key, text, any_format=False)
