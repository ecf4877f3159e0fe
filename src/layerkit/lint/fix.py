"""Applies the mechanical fixes of findings to the Dockerfile text: every line no
edit touches is kept byte for byte, and the result is re-checked until stable."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

from layerkit.fastclass import dataclass, field
from layerkit.lint.findings import FileWrite, Finding, LineEdit
from layerkit.lint.model import split_lines

MAX_PASSES = 8


def apply_edits(text: str, edits: list[LineEdit]) -> str:
    """Apply non-overlapping line edits (given in original line numbers).

    A byte-order mark is kept in front of the result; edits never see it (the
    parser's source text, from which rules build their edits, has none).
    """
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    lines = split_lines(text[len(bom) :])
    nl = "\r\n" if sum(1 for x in lines if x.endswith("\r\n")) * 2 > len(lines) else "\n"
    # later positions first so earlier line numbers stay valid; at one position the
    # replacement goes first so an insertion "before line N" lands before it
    for edit in sorted(edits, key=lambda e: (e.start, e.end >= e.start), reverse=True):
        start = edit.start - 1
        if edit.end < edit.start:  # insertion
            if start >= len(lines) and lines and not lines[-1].endswith("\n"):
                lines[-1] += nl
            lines[start:start] = split_lines(edit.text)
        else:
            lines[start : edit.end] = split_lines(edit.text)
    return bom + "".join(lines).lstrip("\ufeff")


def _span(edit: LineEdit) -> tuple[float, float]:
    if edit.end < edit.start:
        return (edit.start - 0.5, edit.start - 0.5)
    return (float(edit.start), float(edit.end))


def select_fixes(findings: list[Finding]) -> list[Finding]:
    """Pick fixable findings whose edits do not overlap (first come, first served)."""
    chosen: list[Finding] = []
    taken: list[tuple[float, float]] = []
    files: set[str] = set()
    for item in findings:
        if item.fix is None:
            continue
        # the finding's own instruction counts too: two fixes of one RUN wait for a re-check
        spans = [_span(e) for e in item.fix.edits] + [(float(item.line), float(item.end_line))]
        if any(a <= d and c <= b for a, b in spans for c, d in taken):
            continue
        if any(w.path in files for w in item.fix.files):
            continue
        chosen.append(item)
        taken.extend(spans)
        files.update(w.path for w in item.fix.files)
    return chosen


@dataclass
class FixResult:
    original: str
    text: str
    applied: list[Finding] = field(default_factory=list)
    files: dict[str, tuple[str, str]] = field(default_factory=dict)  # path -> (old, new)

    @property
    def changed(self) -> bool:
        return self.text != self.original or any(o != n for o, n in self.files.values())


def fix_text(
    text: str,
    check: Callable[[str], list[Finding]],
    write_file: Callable[[FileWrite], None] | None = None,
) -> FixResult:
    """Fix ``text`` until no fixable finding is left (or nothing changes).

    ``check`` lints a text; ``write_file`` applies file writes (``.dockerignore``)
    so that the next pass sees them.
    """
    result = FixResult(original=text, text=text)
    for _ in range(MAX_PASSES):
        chosen = select_fixes(check(result.text))
        if not chosen:
            break
        edits = [e for f in chosen for e in (f.fix.edits if f.fix else ())]
        new_text = apply_edits(result.text, edits) if edits else result.text
        wrote = False
        for f in chosen:
            for w in f.fix.files if f.fix else ():
                path = Path(w.path)
                old = path.read_text(encoding="utf-8") if path.is_file() else ""
                if old == w.content:
                    continue
                first_old = result.files.get(w.path, (old, old))[0]
                result.files[w.path] = (first_old, w.content)
                if write_file is not None:
                    write_file(w)
                wrote = True
        result.applied.extend(chosen)
        if new_text == result.text and not wrote:
            break
        result.text = new_text
    return result


def unified_diff(old: str, new: str, name: str) -> str:
    """A unified diff of two texts (``a/name`` -> ``b/name``)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True),
            fromfile=f"a/{name.lstrip('/')}", tofile=f"b/{name.lstrip('/')}",
        )
    )
