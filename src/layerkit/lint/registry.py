"""The rule registry: each check is a function from ``LintInput`` to findings,
registered under the id of its documentation file (``rules/<id>.md``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from layerkit.fastclass import dataclass
from layerkit.lint.catalog import rule_doc
from layerkit.lint.contextscan import ContextView
from layerkit.lint.findings import Finding, Fix
from layerkit.lint.model import Instruction, Model


@dataclass
class LintInput:
    model: Model
    context: ContextView | None = None


Check = Callable[[LintInput], Iterable[Finding]]
CHECKS: dict[str, Check] = {}


def check(rule_id: str) -> Callable[[Check], Check]:
    """Register ``fn`` as the implementation of documented rule ``rule_id``."""

    def register(fn: Check) -> Check:
        rule_doc(rule_id)  # fails loudly when the rule has no documentation
        CHECKS[rule_id] = fn
        return fn

    return register


def finding(
    inp: LintInput,
    rule_id: str,
    at: Instruction | tuple[int, int],
    message: str,
    hint: str = "",
    fix: Fix | None = None,
) -> Finding:
    """Build a finding located at an instruction (or an explicit line range)."""
    model = inp.model
    if isinstance(at, Instruction):
        line, end = at.line, at.end_line
    else:
        line, end = at
    return Finding(
        rule=rule_id,
        severity=rule_doc(rule_id).severity,
        message=message,
        file=model.file,
        line=line,
        end_line=max(end, line),
        source=model.line_text(line).strip(),
        hint=hint,
        fix=fix,
    )
