"""``layerkit parse --stages`` as a user runs it: a real subprocess of the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DOCKERFILE = """\
ARG PY=3.12
FROM python:${PY}-slim AS deps
RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt

FROM node:20 AS frontend
RUN npm ci && npm run build

FROM deps AS test
RUN pytest

FROM python:${PY}-slim
COPY --from=deps /usr/local/lib /usr/local/lib
COPY --from=frontend /app/dist /srv/static
"""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "layerkit", "parse", *args],
        capture_output=True, text=True, encoding="utf-8", cwd=cwd, timeout=60,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
    return tmp_path


def test_stages_text(project: Path) -> None:
    proc = _run("--stages", ".", cwd=project)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "target: stage-3 (stage 3)" in out
    assert "[2] test" in out and "pruned" in out
    assert "base: image python:3.12-slim" in out
    assert "wave 1: deps, frontend  (parallel)" in out
    assert "wave 2: stage-3" in out


def test_stages_target_and_build_arg(project: Path) -> None:
    proc = _run("--stages", "--target", "test", "--build-arg", "PY=3.11",
                "--build-arg", "NOT_USED=1", ".", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "target: test (stage 2)" in proc.stdout
    assert "python:3.11-slim" in proc.stdout
    assert "[Warning] One or more build-args [NOT_USED] were not consumed" in proc.stdout


def test_stages_json(project: Path) -> None:
    proc = _run("--stages-json", "-f", str(project / "Dockerfile"), cwd=project)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["build_order"] == [[0, 1], [3]]
    assert [s["name"] for s in data["stages"]] == ["deps", "frontend", "test", None]
    assert data["stages"][2]["needed"] is False
    assert data["stages"][3]["deps"] == [0, 1]


def test_unknown_target_is_a_diagnostic(project: Path) -> None:
    proc = _run("--stages", "--target", "deploy", ".", cwd=project)
    assert proc.returncode == 2
    assert "target stage 'deploy' could not be found" in proc.stderr
    assert "hint: the stages are: deps, frontend, test" in proc.stderr


def test_instruction_error_has_line(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM alpine\nCOPY --form=x a b\n", encoding="utf-8")
    proc = _run("--stages", ".", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown flag: form" in proc.stderr
    assert "Dockerfile:2" in proc.stderr
    assert "did you mean from?" in proc.stderr
