"""``layerkit check`` as a user runs it: exit codes, output formats, the check
directive, --fix and the context-aware rules on temporary build contexts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from layerkit.lint import load_catalog


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "layerkit", "check", *args],
        capture_output=True, text=True, cwd=cwd, timeout=60, check=False,
    )


def write(root: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content, encoding="utf-8")


GOOD = (
    "# syntax=docker/dockerfile:1\n"
    "FROM python:3.12-slim\n"
    "WORKDIR /app\n"
    "COPY requirements.txt .\n"
    "RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt\n"
    "COPY . .\n"
    'CMD ["python", "app.py"]\n'
)
LEGACY = (
    "FROM python:3.12-slim\n"
    "WORKDIR /app\n"
    "COPY . .\n"
    "RUN pip install -r requirements.txt\n"
    "CMD python app.py\n"
)


def test_clean_file_exits_zero_with_empty_json(tmp_path: Path) -> None:
    write(tmp_path, {"Dockerfile": GOOD, "requirements.txt": "flask\n", "app.py": ""})
    proc = run("--format", "json", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["findings"] == []
    assert doc["summary"]["total"] == 0


def test_json_shape_and_warning_exit_code(tmp_path: Path) -> None:
    write(tmp_path, {"Dockerfile": LEGACY, "requirements.txt": "flask\n", "app.py": ""})
    proc = run("--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # warnings only
    doc = json.loads(proc.stdout)
    keys = {"rule", "severity", "message", "file", "line", "end_line", "source", "hint",
            "fixable"}
    assert all(set(f) == keys for f in doc["findings"])
    by_rule = {f["rule"]: f for f in doc["findings"]}
    assert by_rule["copy-before-install"]["line"] == 3
    assert by_rule["copy-before-install"]["source"] == "COPY . ."
    assert by_rule["copy-before-install"]["fixable"] is True
    assert by_rule["json-args-recommended"]["line"] == 5
    assert doc["summary"]["warning"] >= 2


def test_text_format_is_a_diagnostic(tmp_path: Path) -> None:
    write(tmp_path, {"Dockerfile": LEGACY, "requirements.txt": "flask\n"})
    proc = run(str(tmp_path))
    assert "warning: copy-before-install" in proc.stdout
    assert "  × COPY . . sends the whole context before `pip install" in proc.stdout
    assert f"  ╰─▶ {tmp_path}/Dockerfile:3  COPY . ." in proc.stdout
    assert "hint: copy requirements.txt first" in proc.stdout


def test_error_finding_exits_one(tmp_path: Path) -> None:
    write(tmp_path, {"Dockerfile": "FROM alpine:3.20 AS a\nFROM alpine:3.20 AS a\n"})
    proc = run("--format", "json", str(tmp_path))
    assert proc.returncode == 1
    assert [f["rule"] for f in json.loads(proc.stdout)["findings"]] == ["duplicate-stage-name"]


def test_check_error_directive_turns_warnings_into_errors(tmp_path: Path) -> None:
    write(tmp_path, {"Dockerfile": "# check=error=true\nFROM alpine:3.20\nCMD echo hi\n"})
    proc = run("--format", "json", str(tmp_path))
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["findings"][0]["severity"] == "error"


def test_skip_directive(tmp_path: Path) -> None:
    body = "FROM alpine\nCMD echo hi\n"
    write(tmp_path, {"Dockerfile": "# check=skip=JSONArgsRecommended,floating-base-tag\n" + body})
    assert json.loads(run("--format", "json", str(tmp_path)).stdout)["findings"] == []
    write(tmp_path, {"Dockerfile": "# check=skip=all\n" + body})
    assert json.loads(run("--format", "json", str(tmp_path)).stdout)["findings"] == []
    write(tmp_path, {"Dockerfile": body})
    rules = {f["rule"] for f in json.loads(run("--format", "json", str(tmp_path)).stdout)[
        "findings"]}
    assert rules == {"json-args-recommended", "floating-base-tag"}


def test_usage_and_parse_errors_exit_two(tmp_path: Path) -> None:
    proc = run(str(tmp_path))
    assert proc.returncode == 2
    assert "error: dockerfile-not-found" in proc.stderr
    write(tmp_path, {"Dockerfile": "FROM alpine\nRUN <<EOF\necho\n"})
    proc = run(str(tmp_path))
    assert proc.returncode == 2
    assert "unterminated heredoc" in proc.stderr
    assert run("--format", "yaml", str(tmp_path)).returncode == 2


def test_sarif_shape(tmp_path: Path) -> None:
    write(tmp_path, {"Dockerfile": LEGACY, "requirements.txt": "flask\n"})
    proc = run("--format", "sarif", str(tmp_path))
    doc = json.loads(proc.stdout)
    assert doc["version"] == "2.1.0" and "sarif" in doc["$schema"]
    driver = doc["runs"][0]["tool"]["driver"]
    ids = [r["id"] for r in driver["rules"]]
    assert ids == sorted(load_catalog())
    assert all(r["helpUri"].endswith(f"docs/rules/{r['id']}.md") for r in driver["rules"])
    assert all(r["shortDescription"]["text"] for r in driver["rules"])
    results = doc["runs"][0]["results"]
    assert results
    for res in results:
        assert driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in ("error", "warning", "note")
        region = res["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["endLine"] >= region["startLine"]


def test_fix_rewrites_prints_diff_and_second_check_is_clean(tmp_path: Path) -> None:
    crlf = LEGACY.replace("\n", "\r\n").replace("WORKDIR /app", "WORKDIR /app  \t")
    (tmp_path / "Dockerfile").write_bytes(crlf.encode())
    write(tmp_path, {"requirements.txt": "flask\n", "app.py": "", ".env": "TOKEN=1\n"})
    proc = run("--fix", str(tmp_path))
    assert "--- a/" in proc.stdout and "+++ b/" in proc.stdout
    fixed = (tmp_path / "Dockerfile").read_bytes().decode()
    assert "WORKDIR /app  \t\r\n" in fixed  # untouched bytes kept
    assert fixed.count("\r\n") == len(fixed.splitlines())
    assert ".env" in (tmp_path / ".dockerignore").read_text(encoding="utf-8")
    again = json.loads(run("--format", "json", str(tmp_path)).stdout)
    assert not [f for f in again["findings"] if f["fixable"]]
    assert {f["rule"] for f in again["findings"]} == {"json-args-recommended"}


def test_fix_with_json_keeps_stdout_parseable(tmp_path: Path) -> None:
    write(tmp_path, {"Dockerfile": "FROM alpine:3.20\nADD app.sh /\n", "app.sh": "echo\n"})
    proc = run("--fix", "--format", "json", str(tmp_path))
    doc = json.loads(proc.stdout)
    assert doc["findings"] == []
    assert "+COPY app.sh /" in proc.stderr
    fixed = (tmp_path / "Dockerfile").read_text(encoding="utf-8")
    assert fixed == "FROM alpine:3.20\nCOPY app.sh /\n"


@pytest.mark.parametrize("ignore_name", [".dockerignore", "app.Dockerfile.dockerignore"])
def test_context_rules_follow_the_ignore_file(tmp_path: Path, ignore_name: str) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref\n", encoding="utf-8")
    write(tmp_path, {"app.Dockerfile": "FROM alpine:3.20\nCOPY . /src\n", "id_rsa": "KEY\n"})
    proc = run("-f", str(tmp_path / "app.Dockerfile"), "--format", "json", str(tmp_path))
    rules = {f["rule"] for f in json.loads(proc.stdout)["findings"]}
    assert rules == {"missing-dockerignore", "secret-in-context"}
    assert proc.returncode == 1  # a secret sent to the image is an error
    write(tmp_path, {ignore_name: ".git\nid_rsa\n"})
    proc = run("-f", str(tmp_path / "app.Dockerfile"), "--format", "json", str(tmp_path))
    assert json.loads(proc.stdout)["findings"] == []
    assert proc.returncode == 0


def test_a_dockerfile_given_as_context_is_accepted(tmp_path: Path) -> None:
    write(tmp_path, {"Dockerfile": "FROM alpine:3.20\nCMD echo hi\n"})
    proc = run("--format", "json", "Dockerfile", cwd=tmp_path)
    doc = json.loads(proc.stdout)
    assert [(f["rule"], f["file"], f["line"]) for f in doc["findings"]] == [
        ("json-args-recommended", "Dockerfile", 2)
    ]


def test_buildkit_style_checks_and_their_skip_names(tmp_path: Path) -> None:
    text = (
        "FROM alpine:3.20 as Build\n"
        "MAINTAINER Jane Doe\n"
        "ENV APP_HOME /srv\n"
        'CMD ["true"]\n'
        'CMD ["sh"]\n'
    )
    write(tmp_path, {"Dockerfile": text})
    doc = json.loads(run("--format", "json", str(tmp_path)).stdout)
    assert {(f["rule"], f["line"]) for f in doc["findings"]} >= {
        ("from-as-casing", 1), ("stage-name-casing", 1), ("maintainer-deprecated", 2),
        ("legacy-key-value-format", 3), ("multiple-instructions-disallowed", 4),
    }
    skip = "# check=skip=FromAsCasing,StageNameCasing,MaintainerDeprecated,LegacyKeyValueFormat\n"
    write(tmp_path, {"Dockerfile": skip + text})
    doc = json.loads(run("--format", "json", str(tmp_path)).stdout)
    assert [(f["rule"], f["line"]) for f in doc["findings"]] == [
        ("multiple-instructions-disallowed", 5)
    ]
