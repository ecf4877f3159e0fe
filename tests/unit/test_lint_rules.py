"""Lint rules tested as data: tests/data/lint/rules/<rule-id>.cases hold small
Dockerfiles (and build-context files) with the findings expected of that rule."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from layerkit.dockerfile.parser import parse
from layerkit.lint import lint, load_catalog
from layerkit.lint.catalog import parse_rule_doc, resolve_rule_name
from layerkit.lint.registry import CHECKS
from layerkit.lint.runner import parse_check_directive

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "lint"
RULE_CASES = DATA / "rules"


def _casefile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lint_casefile", DATA / "casefile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lint_casefile"] = module
    spec.loader.exec_module(module)
    return module


casefile = _casefile()


def _all_cases() -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for path in sorted(RULE_CASES.glob("*.cases")):
        for case in casefile.load_cases(path):
            out.append((path.stem, case))
    return out


CASES = _all_cases()


@pytest.mark.parametrize(
    ("rule", "case"), CASES, ids=[f"{rule}:{case.name}" for rule, case in CASES]
)
def test_rule_case(rule: str, case: object) -> None:
    findings = casefile.run_case(case)
    got = sorted((f.rule, f.line) for f in findings if f.rule == rule)
    assert got == sorted(case.expect), [f.message for f in findings if f.rule == rule]


def test_every_rule_has_positive_and_negative_cases() -> None:
    by_rule: dict[str, list[object]] = {}
    for rule, case in CASES:
        by_rule.setdefault(rule, []).append(case)
    assert set(by_rule) == set(load_catalog())
    for rule, cases in by_rule.items():
        assert any(c.expect for c in cases), f"{rule}: no case that must be reported"
        assert any(not c.expect for c in cases), f"{rule}: no non-trap case"


def test_catalog_matches_registered_checks() -> None:
    assert set(CHECKS) == set(load_catalog())


def test_docs_are_identical_to_package_data() -> None:
    package = REPO / "src" / "layerkit" / "lint" / "rules"
    docs = REPO / "docs" / "rules"
    names = sorted(p.name for p in package.glob("*.md"))
    assert names == sorted(p.name for p in docs.glob("*.md"))
    for name in names:
        assert (package / name).read_bytes() == (docs / name).read_bytes(), name


def test_rule_docs_have_all_sections() -> None:
    for doc in load_catalog().values():
        assert doc.severity in ("error", "warning", "info")
        assert "```" in doc.bad and "```" in doc.good, doc.id
        assert doc.why and doc.fix


def test_rule_doc_without_front_matter_is_rejected() -> None:
    from layerkit.errors import LintError

    with pytest.raises(LintError):
        parse_rule_doc("## Why\nx\n")


def test_findings_carry_location_source_and_hint() -> None:
    text = "FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\nRUN pip install -r requirements.txt\n"
    findings = lint(parse(text), None, None, strict=True).findings
    cbi = [f for f in findings if f.rule == "copy-before-install"]
    assert len(cbi) == 1
    assert (cbi[0].line, cbi[0].end_line, cbi[0].source) == (3, 3, "COPY . .")
    assert "pip install" in cbi[0].message and cbi[0].hint
    assert cbi[0].severity == "warning"


def test_buildkit_names_resolve_to_rule_ids() -> None:
    assert resolve_rule_name("JSONArgsRecommended") == "json-args-recommended"
    assert resolve_rule_name("undefinedvar") == "undefined-variable"
    assert resolve_rule_name("copy-before-install") == "copy-before-install"
    assert resolve_rule_name("NoSuchRule") is None


def test_check_directive_skip_and_error() -> None:
    directive = parse_check_directive("skip=JSONArgsRecommended,floating-base-tag;error=true")
    assert directive.skip == {"json-args-recommended", "floating-base-tag"}
    assert directive.error and not directive.skip_all
    assert parse_check_directive("skip=all").skip_all


def test_skip_directive_silences_rule() -> None:
    text = "# check=skip=json-args-recommended\nFROM alpine:3.20\nCMD echo hi\n"
    assert not lint(parse(text), strict=True).findings
    text = "FROM alpine:3.20\nCMD echo hi\n"
    assert [f.rule for f in lint(parse(text), strict=True).findings] == ["json-args-recommended"]


def test_error_directive_promotes_warnings() -> None:
    text = "# check=error=true\nFROM alpine:3.20\nCMD echo hi\n"
    report = lint(parse(text), strict=True)
    assert [f.severity for f in report.findings] == ["error"]
    assert report.has_errors


def test_unknown_instruction_suggests_keyword() -> None:
    text = "FROM alpine:3.20\nRUNN echo hi\n"
    findings = lint(parse(text), strict=True).findings
    assert any("did you mean RUN?" in f.message for f in findings)
    assert {f.severity for f in findings if f.rule == "unknown-instruction"} == {"error"}


def test_a_broken_rule_does_not_hide_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(_inp: object) -> list[object]:
        raise RuntimeError("bug")

    monkeypatch.setitem(CHECKS, "floating-base-tag", boom)
    report = lint(parse("FROM alpine\nCMD echo hi\n"))
    assert report.internal_errors and "floating-base-tag" in report.internal_errors[0]
    assert [f.rule for f in report.findings] == ["json-args-recommended"]


def test_public_api_is_pinned() -> None:
    import layerkit.lint as api

    assert sorted(api.__all__) == [
        "CheckDirective", "FileWrite", "Finding", "Fix", "FixResult", "LineEdit", "LintReport",
        "RuleDoc", "apply_edits", "fix_text", "lint", "load_catalog", "parse_check_directive",
        "render_json", "render_sarif", "render_text", "rule_doc", "unified_diff",
    ]
    assert all(hasattr(api, name) for name in api.__all__)
