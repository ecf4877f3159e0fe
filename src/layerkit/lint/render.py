"""Renders lint reports: pip-style text diagnostics, JSON and SARIF 2.1.0."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from layerkit import __version__
from layerkit.lint.catalog import load_catalog
from layerkit.lint.runner import LintReport

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def render_text(reports: Sequence[LintReport]) -> str:
    blocks: list[str] = []
    for report in reports:
        for f in report.findings:
            lines = [f"{f.severity}: {f.rule}", f"  × {f.message}"]
            where = f"{f.file}:{f.line}"
            lines.append(f"  ╰─▶ {where}  {f.source}".rstrip())
            if f.hint:
                lines.append(f"hint: {f.hint}")
            blocks.append("\n".join(lines))
    total = sum(len(r.findings) for r in reports)
    if total == 0:
        blocks.append("no findings")
    else:
        counts = _summary(reports)
        blocks.append(
            f"{total} finding(s): {counts['error']} error(s), {counts['warning']} warning(s), "
            f"{counts['info']} info; {counts['fixable']} fixable with --fix"
        )
    return "\n\n".join(blocks) + "\n"


def _summary(reports: Sequence[LintReport]) -> dict[str, int]:
    total: dict[str, int] = {"error": 0, "warning": 0, "info": 0, "total": 0, "fixable": 0}
    for report in reports:
        for key, value in report.summary().items():
            total[key] = total.get(key, 0) + value
    return total


def render_json(reports: Sequence[LintReport]) -> str:
    findings = [f.to_dict() for r in reports for f in r.findings]
    summary: dict[str, object] = dict(_summary(reports))
    summary["files"] = [r.file for r in reports]
    doc: dict[str, object] = {"findings": findings, "summary": summary}
    internal = [e for r in reports for e in r.internal_errors]
    if internal:
        doc["internal_errors"] = internal
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _uri(path: str) -> str:
    """A SARIF artifact URI: relative paths stay relative references."""
    posix = path.replace("\\", "/")
    if posix.startswith("/"):
        return Path(posix).as_uri()
    return quote(posix)


def render_sarif(reports: Sequence[LintReport]) -> str:
    catalog = load_catalog()
    ids = sorted(catalog)
    rules = []
    for rule_id in ids:
        doc = catalog[rule_id]
        rule: dict[str, object] = {
            "id": rule_id,
            "name": "".join(w.title() for w in rule_id.split("-")),
            "shortDescription": {"text": doc.title},
            "fullDescription": {"text": doc.why.split("\n\n")[0].replace("\n", " ")},
            "helpUri": doc.help_uri,
            "help": {"text": doc.fix.replace("\n", " ")},
            "defaultConfiguration": {"level": _SARIF_LEVEL[doc.severity]},
        }
        if doc.buildkit:
            rule["properties"] = {"buildkit": doc.buildkit}
        rules.append(rule)
    results = []
    for report in reports:
        for f in report.findings:
            results.append({
                "ruleId": f.rule,
                "ruleIndex": ids.index(f.rule),
                "level": _SARIF_LEVEL.get(f.severity, "warning"),
                "message": {"text": f.message + (f" Hint: {f.hint}" if f.hint else "")},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(f.file)},
                        "region": {
                            "startLine": f.line,
                            "endLine": f.end_line,
                            "snippet": {"text": f.source},
                        },
                    }
                }],
            })
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "layerkit",
                "version": __version__,
                "informationUri": "https://github.com/layerkit/layerkit",
                "rules": rules,
            }},
            "results": results,
        }],
    }
    return json.dumps(sarif, indent=2, ensure_ascii=False) + "\n"
