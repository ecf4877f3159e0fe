"""A corpus of realistic Dockerfiles with their build contexts
(tests/data/lint/corpus/<name>/): the well-written ones must give no finding at all,
the legacy ones exactly the findings listed in their expected.txt."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from layerkit.dockerfile.parser import parse
from layerkit.lint import lint

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "data" / "lint" / "corpus"
NAMES = sorted(p.name for p in CORPUS.iterdir() if (p / "Dockerfile").is_file())


def _expected(folder: Path) -> tuple[list[str], Counter[tuple[str, int]]]:
    dirs: list[str] = []
    found: Counter[tuple[str, int]] = Counter()
    for line in (folder / "expected.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("dir:"):
            dirs.append(line[4:].strip())
            continue
        rule, _, num = line.partition("@")
        found[(rule, int(num))] += 1
    return dirs, found


def test_corpus_is_large_enough() -> None:
    assert len(NAMES) >= 15
    assert sum(1 for n in NAMES if n.endswith("-good")) >= 10


@pytest.mark.parametrize("name", NAMES)
def test_corpus_findings(name: str, tmp_path: Path) -> None:
    source = CORPUS / name
    context = tmp_path / name
    shutil.copytree(source, context, ignore=shutil.ignore_patterns("expected.txt"))
    dirs, expected = _expected(source)
    for d in dirs:
        (context / d).mkdir(parents=True, exist_ok=True)
        (context / d / "placeholder").write_text("x", encoding="utf-8")
    dockerfile = context / "Dockerfile"
    result = parse(dockerfile.read_text(encoding="utf-8"), filename="Dockerfile")
    report = lint(result, context, dockerfile, strict=True)
    got = Counter((f.rule, f.line) for f in report.findings)
    assert got == expected, "\n".join(f"{f.rule}@{f.line}: {f.message}" for f in report.findings)
    if name.endswith("-good"):
        assert not expected
