"""``layerkit parse`` as a user runs it: a real subprocess of the installed CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "layerkit", "parse", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        timeout=60,
    )


@pytest.fixture
def parser_dir(conformance_dir: Path) -> Path:
    return conformance_dir / "buildkit-parser"


@pytest.mark.parametrize("case", ["json", "lk4d4-the-edge-case-generator", "escape"])
def test_dump_matches_golden_file(parser_dir: Path, case: str) -> None:
    proc = _run("--dump", "-f", str(parser_dir / case / "Dockerfile"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (parser_dir / case / "result").read_text(encoding="utf-8")


def test_context_argument_finds_dockerfile(parser_dir: Path) -> None:
    proc = _run(str(parser_dir / "health"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (parser_dir / "health" / "result").read_text(encoding="utf-8")


def test_relative_file_is_relative_to_cwd(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "Other.dockerfile").write_text("FROM alpine\nRUN echo hi\n")
    proc = _run("-f", "sub/Other.dockerfile", "/nonexistent-context", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '(from "alpine")\n(run "echo hi")\n'


def test_json_output(parser_dir: Path) -> None:
    proc = _run("--json", "-f", str(parser_dir / "_heredoc" / "Dockerfile"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["directives"]["escape"] == "\\"
    copy = data["instructions"][16]
    assert copy["keyword"] == "copy" and copy["args"] == ["<<FILE1", "<<FILE2", "/dest"]
    assert [h["name"] for h in copy["heredocs"]] == ["FILE1", "FILE2"]
    assert copy["heredocs"][1]["content"] == "content 2\n"
    assert copy["end_line"] > copy["start_line"]


def test_json_output_nests_onbuild(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text('FROM a\nONBUILD RUN ["echo", "x"]\n')
    proc = _run("--json", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    onbuild = json.loads(proc.stdout)["instructions"][1]
    assert onbuild["keyword"] == "onbuild"
    assert onbuild["instruction"]["args"] == ["echo", "x"]
    assert onbuild["instruction"]["json_form"] is True


def test_syntax_error_is_a_diagnostic(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM alpine\n\nENV PATH\n")
    proc = _run(str(tmp_path))
    assert proc.returncode == 2
    assert "ENV must have two arguments" in proc.stderr
    assert f"{tmp_path / 'Dockerfile'}:3" in proc.stderr
    assert "ENV PATH" in proc.stderr
    assert "hint:" in proc.stderr
    assert proc.stdout == ""


def test_missing_dockerfile(tmp_path: Path) -> None:
    proc = _run(str(tmp_path))
    assert proc.returncode == 2
    assert str(tmp_path / "Dockerfile") in proc.stderr
    assert "hint:" in proc.stderr


def test_empty_continuation_warning_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM a\nRUN x \\\n\n  y\n")
    proc = _run(str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '(from "a")\n(run "x   y")\n'
    assert "Empty continuation line found in: RUN x   y" in proc.stderr


def test_dump_warns_about_unknown_instruction_on_stderr(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from layerkit.cli import cli

    (tmp_path / "Dockerfile").write_text("FROM alpine\nRUNN echo hi\n")
    result = CliRunner().invoke(cli, ["parse", "--dump", str(tmp_path)])
    assert result.exit_code == 0
    assert result.stdout == '(from "alpine")\n(runn "")\n'
    assert "Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)" in result.stderr
