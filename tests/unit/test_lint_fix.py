"""``--fix`` as data: the fixes keep every untouched byte, converge, are idempotent,
produce files that still parse, and a second check no longer reports them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from layerkit.dockerfile.parser import parse
from layerkit.lint import FileWrite, Finding, LineEdit, apply_edits, fix_text, lint
from layerkit.lint.fix import select_fixes

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "lint"


def _casefile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lint_casefile", DATA / "casefile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lint_casefile"] = module
    spec.loader.exec_module(module)
    return module


casefile = _casefile()


def _checker(context: Path | None = None, dockerfile: Path | None = None):  # type: ignore[no-untyped-def]
    def run(text: str) -> list[Finding]:
        return lint(parse(text), context, dockerfile, strict=True).findings

    return run


def _write(w: FileWrite) -> None:
    Path(w.path).write_text(w.content, encoding="utf-8")


def test_apply_edits_replaces_inserts_and_deletes() -> None:
    text = "a\nb\nc\n"
    edits = [LineEdit(2, 2, "B\n"), LineEdit(1, 0, "top\n"), LineEdit(3, 3, ""),
             LineEdit(4, 3, "end\n")]
    assert apply_edits(text, edits) == "top\na\nB\nend\n"


def test_insert_at_end_of_file_without_newline() -> None:
    assert apply_edits("a\nb", [LineEdit(3, 2, "c\n")]) == "a\nb\nc\n"


def test_fix_keeps_untouched_bytes_crlf_tabs_trailing_spaces() -> None:
    text = (
        "FROM debian:12-slim  \r\n"
        "# a comment\twith a tab \r\n"
        "RUN apt-get update && \\\r\n"
        "\tapt-get install -y --no-install-recommends curl\r\n"
        "ADD\tconfig.yaml /etc/app/   \r\n"
        "CMD [\"curl\"]\r\n"
    )
    result = fix_text(text, _checker())
    assert result.text == (
        "FROM debian:12-slim  \r\n"
        "# a comment\twith a tab \r\n"
        "RUN apt-get update && \\\r\n"
        "\tapt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*\r\n"
        "COPY\tconfig.yaml /etc/app/   \r\n"
        "CMD [\"curl\"]\r\n"
    )
    assert {f.rule for f in result.applied} == {"apt-lists-left", "add-for-local-files"}


def test_fix_is_idempotent_and_second_check_is_clean(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("flask\n", encoding="utf-8")
    (tmp_path / "app.py").write_text("print(1)\n", encoding="utf-8")
    text = (
        "FROM python:3.12-slim\n"
        "WORKDIR /app\n"
        "ARG GIT_SHA\n"
        "COPY . .\n"
        "RUN pip install -r requirements.txt\n"
        "LABEL revision=$GIT_SHA\n"
        'CMD ["python", "app.py"]\n'
    )
    check = _checker(tmp_path, tmp_path / "Dockerfile")
    first = fix_text(text, check)
    assert first.text == (
        "# syntax=docker/dockerfile:1\n"
        "FROM python:3.12-slim\n"
        "WORKDIR /app\n"
        "COPY requirements.txt .\n"
        "RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt\n"
        "COPY . .\n"
        "ARG GIT_SHA\n"
        "LABEL revision=$GIT_SHA\n"
        'CMD ["python", "app.py"]\n'
    )
    parse(first.text)
    assert fix_text(first.text, check).text == first.text
    remaining = check(first.text)
    fixed_rules = {f.rule for f in first.applied}
    assert not [f for f in remaining if f.rule in fixed_rules]


def test_fix_keeps_non_root_user_home(tmp_path: Path) -> None:
    text = (
        "FROM node:20-slim\n"
        "RUN useradd -u 1001 -m app\n"
        "USER app\n"
        "WORKDIR /home/app/src\n"
        "COPY package.json package-lock.json ./\n"
        "RUN npm ci\n"
    )
    result = fix_text(text, _checker(tmp_path, tmp_path / "Dockerfile"))
    assert "RUN --mount=type=cache,target=/home/app/.npm,uid=1001 npm ci\n" in result.text


def test_copy_before_install_fix_uses_manifests_present(tmp_path: Path) -> None:
    for name in ("package.json", "yarn.lock", "index.js"):
        (tmp_path / name).write_text("{}\n", encoding="utf-8")
    text = "FROM node:20-slim\nWORKDIR /app\nCOPY --chown=node:node . /app\nRUN yarn install\n"
    result = fix_text(text, _checker(tmp_path, tmp_path / "Dockerfile"))
    lines = result.text.splitlines()
    assert "COPY --chown=node:node package.json yarn.lock /app/" in lines
    assert lines.index("COPY --chown=node:node . /app") > lines.index(
        next(line for line in lines if "yarn install" in line))
    parse(result.text)


def test_copy_before_install_not_fixed_when_unsafe(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("flask\n", encoding="utf-8")
    text = "FROM python:3.12-slim\nCOPY . /app\nWORKDIR /app\nRUN pip install -r requirements.txt\n"
    findings = _checker(tmp_path)(text)
    cbi = [f for f in findings if f.rule == "copy-before-install"]
    assert len(cbi) == 1 and cbi[0].fix is None


@pytest.mark.parametrize(
    "case",
    [c for p in sorted((DATA / "rules").glob("*.cases")) for c in casefile.load_cases(p)],
    ids=lambda c: c.name,
)
def test_every_case_fixes_cleanly(case: object, tmp_path: Path) -> None:
    dockerfile = casefile.materialise(case, tmp_path)
    check = _checker(tmp_path, dockerfile)
    before = check(case.source)
    result = fix_text(case.source, check, _write)
    parse(result.text)  # the fixed file must still parse
    after = check(result.text)
    assert not select_fixes(after), [f"{f.rule}@{f.line}" for f in after if f.fixable]
    assert len([f for f in after if f.fixable]) <= len([f for f in before if f.fixable])
    again = fix_text(result.text, check, _write)
    assert again.text == result.text


def test_fixes_on_buildkit_parser_corpus_still_parse(conformance_dir: Path) -> None:
    """Real-world Dockerfiles of BuildKit's parser tests: lint never crashes, fixes
    converge, and every fixed file still parses."""
    checked = 0
    for folder in sorted((conformance_dir / "buildkit-parser").iterdir()):
        path = folder / "Dockerfile"
        if not path.is_file() or folder.name.startswith("_negative"):
            continue
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        try:
            parse(text)
        except Exception:
            continue  # parser-negative input: not the linter's business
        result = fix_text(text, _checker())
        parse(result.text)
        assert fix_text(result.text, _checker()).text == result.text, folder.name
        assert not select_fixes(_checker()(result.text)), folder.name
        checked += 1
    assert checked >= 25


def test_byte_order_mark_is_kept() -> None:
    text = "\ufeffFROM alpine:3.20\nRUN --mount=type=cache,target=/var/cache/apk apk add git\n"
    result = fix_text(text, _checker())
    assert result.text.startswith("\ufeff# syntax=docker/dockerfile:1\nFROM alpine:3.20\n")
    assert parse(result.text).syntax == "docker/dockerfile:1"
