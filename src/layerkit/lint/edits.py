"""Small builders of line edits that keep the user's formatting: the rules use
them to express their fixes, the fixer applies them."""

from __future__ import annotations

import re

from layerkit.lint.findings import LineEdit
from layerkit.lint.model import Instruction, Model


def eol(model: Model) -> str:
    """The file's dominant line ending."""
    crlf = sum(1 for line in model.lines if line.endswith("\r\n"))
    return "\r\n" if crlf * 2 > len(model.lines) else "\n"


def lines_text(model: Model, start: int, end: int) -> str:
    """The raw text of lines ``start..end`` (ending with a line break)."""
    text = "".join(model.lines[start - 1 : end])
    if text and not text.endswith("\n"):
        text += eol(model)
    return text


def instruction_text(model: Model, instr: Instruction) -> str:
    return lines_text(model, instr.line, instr.end_line)


def insert_after_keyword(model: Model, instr: Instruction, text: str) -> LineEdit | None:
    """Insert ``text`` right after the instruction keyword on its first line."""
    line = model.lines[instr.line - 1]
    match = re.match(r"^(\s*" + re.escape(instr.node.value) + r")([ \t]+)", line, re.I)
    if match is None:
        return None
    new = line[: match.end(1)] + " " + text + match.group(2) + line[match.end() :]
    return LineEdit(instr.line, instr.line, new)


def append_to_instruction(model: Model, instr: Instruction, text: str) -> LineEdit | None:
    """Append ``text`` at the end of the instruction's last line (before the EOL)."""
    if instr.node.heredocs:
        return None
    line = model.lines[instr.end_line - 1]
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    stripped = body.rstrip(" \t")
    if stripped.endswith(model.result.escape_token) or not stripped:
        return None
    new = stripped + text + body[len(stripped) :] + ending
    return LineEdit(instr.end_line, instr.end_line, new)


def replace_keyword(model: Model, instr: Instruction, keyword: str) -> LineEdit | None:
    """Replace the instruction keyword, keeping the case style it was written in."""
    line = model.lines[instr.line - 1]
    written = instr.node.value
    match = re.match(r"^(\s*)" + re.escape(written) + r"(?=\s)", line, re.I)
    if match is None:
        return None
    actual = line[match.end(1) : match.end()]
    new_kw = keyword.lower() if actual.islower() else keyword.upper()
    return LineEdit(instr.line, instr.line, line[: match.end(1)] + new_kw + line[match.end() :])
