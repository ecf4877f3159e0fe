"""The lint result types: a ``Finding`` and the mechanical ``Fix`` it may carry."""

from __future__ import annotations

from layerkit.fastclass import dataclass, field


@dataclass(frozen=True)
class LineEdit:
    """Replace lines ``start..end`` (1-based, inclusive) with ``text``.

    ``end == start - 1`` inserts ``text`` before line ``start``. ``text`` holds whole
    lines with their line endings (the fixer normalises new line endings).
    """

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class FileWrite:
    """Write (create or replace) a file next to the Dockerfile, e.g. ``.dockerignore``."""

    path: str
    content: str


@dataclass(frozen=True)
class Fix:
    description: str
    edits: tuple[LineEdit, ...] = ()
    files: tuple[FileWrite, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One problem found: which rule, where, and what to do about it."""

    rule: str
    severity: str
    message: str
    file: str
    line: int
    end_line: int
    source: str = ""
    hint: str = ""
    fix: Fix | None = field(default=None, compare=False)

    @property
    def fixable(self) -> bool:
        return self.fix is not None

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "end_line": self.end_line,
            "source": self.source,
            "hint": self.hint,
            "fixable": self.fixable,
        }
