"""Runs every registered rule over one parsed Dockerfile and applies the file's
``# check=`` directive (``skip=<ids>|all``, ``error=true``)."""

from __future__ import annotations

from pathlib import Path

from layerkit.dockerfile.ast import ParseResult
from layerkit.fastclass import dataclass, field, replace
from layerkit.lint import (
    buildkit_rules,
    cache_rules,
    context_rules,
    image_rules,
    style_rules,
)
from layerkit.lint.catalog import resolve_rule_name
from layerkit.lint.contextscan import ContextView
from layerkit.lint.findings import Finding
from layerkit.lint.model import build_model
from layerkit.lint.registry import CHECKS, LintInput

# imported for their @check registrations
_RULE_MODULES = (buildkit_rules, cache_rules, context_rules, image_rules, style_rules)


@dataclass(frozen=True)
class CheckDirective:
    skip: frozenset[str] = frozenset()
    skip_all: bool = False
    error: bool = False


def parse_check_directive(value: str | None) -> CheckDirective:
    """``skip=a,b;error=true`` -> CheckDirective (unknown keys and names are ignored)."""
    if not value:
        return CheckDirective()
    skip: set[str] = set()
    skip_all = False
    error = False
    for part in value.split(";"):
        key, _, val = part.partition("=")
        key = key.strip().lower()
        if key == "skip":
            for name in val.split(","):
                name = name.strip()
                if name.lower() == "all":
                    skip_all = True
                elif (rule := resolve_rule_name(name)) is not None:
                    skip.add(rule)
        elif key == "error":
            error = val.strip().lower() in ("true", "1", "yes")
    return CheckDirective(frozenset(skip), skip_all, error)


@dataclass
class LintReport:
    file: str
    findings: list[Finding] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    def summary(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "info": 0}
        for f in self.findings:
            counts[f.severity] = counts.get(f.severity, 0) + 1
        counts["total"] = len(self.findings)
        counts["fixable"] = sum(1 for f in self.findings if f.fixable)
        return counts


def lint(
    result: ParseResult,
    context_dir: str | Path | None = None,
    dockerfile_path: str | Path | None = None,
    *,
    rules: set[str] | None = None,
    strict: bool = False,
) -> LintReport:
    """Lint one parse result; ``context_dir`` enables the context-aware rules.

    A rule that fails unexpectedly is recorded in ``internal_errors`` (and raised
    when ``strict``) so that one broken rule never hides the others' findings.
    """
    model = build_model(result)
    ctx = None
    if context_dir is not None and Path(context_dir).is_dir():
        dockerfile = Path(dockerfile_path) if dockerfile_path else None
        ctx = ContextView.open(Path(context_dir), dockerfile)
    inp = LintInput(model=model, context=ctx)
    directive = parse_check_directive(result.check)
    report = LintReport(file=result.filename)
    if directive.skip_all:
        return report
    for rule_id, fn in sorted(CHECKS.items()):
        if rules is not None and rule_id not in rules:
            continue
        if rule_id in directive.skip:
            continue
        try:
            found = list(fn(inp))
        except Exception as exc:  # isolate one rule's bug
            if strict:
                raise
            report.internal_errors.append(f"{rule_id}: {type(exc).__name__}: {exc}")
            continue
        for item in found:
            if directive.error and item.severity == "warning":
                item = replace(item, severity="error")
            report.findings.append(item)
    report.findings.sort(key=lambda f: (f.line, f.rule))
    return report
