"""layerkit.lint: the cache linter behind ``layerkit check``.

Rules are data (``rules/<id>.md``: id, title, severity, why, bad, good, fix) plus a
check function registered under the same id. ``lint`` runs them over a parse tree,
``fix_text`` applies their mechanical fixes, ``render_*`` format the results.
"""

from layerkit.lint.catalog import RuleDoc, load_catalog, rule_doc
from layerkit.lint.findings import FileWrite, Finding, Fix, LineEdit
from layerkit.lint.fix import FixResult, apply_edits, fix_text, unified_diff
from layerkit.lint.render import render_json, render_sarif, render_text
from layerkit.lint.runner import CheckDirective, LintReport, lint, parse_check_directive

__all__ = [
    "CheckDirective",
    "FileWrite",
    "Finding",
    "Fix",
    "FixResult",
    "LineEdit",
    "LintReport",
    "RuleDoc",
    "apply_edits",
    "fix_text",
    "lint",
    "load_catalog",
    "parse_check_directive",
    "render_json",
    "render_sarif",
    "render_text",
    "rule_doc",
    "unified_diff",
]
