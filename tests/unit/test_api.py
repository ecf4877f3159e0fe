"""The public Python API: pinned names, and each call on a real example."""

from pathlib import Path

import pytest

import layerkit

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python-service"


def test_public_names_are_pinned() -> None:
    assert sorted(layerkit.__all__) == [
        "BuildError", "BuildOptions", "ContextError", "DockerfileError", "FrontendError",
        "LayerkitError", "LintError", "Location", "__version__", "build", "check", "parse",
        "plan", "stages",
    ]


def test_parse_example() -> None:
    result = layerkit.parse(EXAMPLE)
    assert [n.keyword for n in result.instructions][:2] == ["from", "workdir"]


def test_stages_example_orders_dependencies() -> None:
    graph = layerkit.stages(EXAMPLE)
    assert [s.name for s in graph.stages] == ["base", "deps", "runtime"]
    assert graph.target.name == "runtime"


def test_check_reports_findings_on_the_naive_twin() -> None:
    clean = layerkit.check(EXAMPLE)
    assert clean.findings == []
    naive = layerkit.check(EXAMPLE, EXAMPLE / "Dockerfile.naive")
    rules = {f.rule for f in naive.findings}
    assert {"floating-base-tag", "add-for-local-files", "copy-before-install"} <= rules


def test_errors_are_layerkit_errors(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM alpine\nENV PATH\n")
    with pytest.raises(layerkit.DockerfileError) as info:
        layerkit.parse(tmp_path)
    assert info.value.location is not None and info.value.location.line == 2
