"""Syntax tree -> text: BuildKit's ``Node.Dump`` golden format, and a JSON view.

``dump(result.ast) + "\\n"`` is byte for byte what BuildKit's parser tests
compare against ``testfiles/<case>/result``. :func:`to_json` is the
machine-readable view printed by ``layerkit parse --json``.
"""

from __future__ import annotations

from typing import Any

from layerkit.dockerfile.ast import Heredoc, Node, ParseResult
from layerkit.dockerfile.gostring import go_lower, go_quote, replace_invalid, trim_space

__all__ = ["dump", "to_json"]


def dump(node: Node) -> str:
    """BuildKit's ``Node.Dump`` (no trailing newline).

    An instruction prints as ``keyword ["--flag" ...] "arg" "arg"`` with the
    keyword lower-cased and strings in Go ``strconv.Quote`` form; each child is
    wrapped in parentheses and followed by a newline; the whole is trimmed.
    """
    text = go_lower(node.value)
    if node.flags:
        text += " [" + " ".join(go_quote(flag) for flag in node.flags) + "]"
    for child in node.children:
        text += "(" + dump(child) + ")\n"
    for arg in node.next:
        text += " " + (dump(arg) if arg.children else go_quote(arg.value))
    return trim_space(text)


def _clean(text: str) -> str:
    # JSON output must be encodable: undecodable bytes are shown as U+FFFD.
    return replace_invalid(text)


def _heredoc_json(heredoc: Heredoc) -> dict[str, Any]:
    return {
        "name": _clean(heredoc.name),
        "content": _clean(heredoc.content),
        "expand": heredoc.expand,
        "chomp": heredoc.chomp,
        "fd": heredoc.file_descriptor,
    }


def _instruction_json(node: Node, nested: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "keyword": go_lower(node.value),
        "value": _clean(node.value),
        "flags": [_clean(flag) for flag in node.flags],
        "args": [_clean(arg.value) for arg in node.next if not arg.children],
        "json_form": node.is_json,
        "heredocs": [_heredoc_json(h) for h in node.heredocs],
        "original": _clean(node.original),
    }
    if not nested:
        data["start_line"] = node.start_line
        data["end_line"] = node.end_line
        data["comments"] = [_clean(c) for c in node.prev_comment]
    inner = [c for arg in node.next for c in arg.children]
    if inner:
        # ONBUILD: the nested instruction (BuildKit keeps it as the child of
        # the single argument node).
        data["instruction"] = _instruction_json(inner[0], nested=True)
    return data


def to_json(result: ParseResult) -> dict[str, Any]:
    """A JSON-ready view: directives, warnings and one object per instruction."""
    return {
        "file": result.filename,
        "directives": {
            "escape": result.escape_token,
            "syntax": _clean(result.syntax) if result.syntax is not None else None,
            "syntax_line": result.syntax_line,
            "check": _clean(result.check) if result.check is not None else None,
        },
        "warnings": [
            {"message": _clean(w.message), "line": w.line, "detail": w.detail}
            for w in result.warnings
        ],
        "start_line": result.ast.start_line,
        "end_line": result.ast.end_line,
        "instructions": [_instruction_json(node) for node in result.ast.children],
    }
