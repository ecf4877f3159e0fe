"""Reader for the lint case files (``rules/<rule-id>.cases``): rules tested as data.

A case file holds several cases. Each case starts with ``### case: <name>`` and
may declare context files, then expected findings of the file's rule as
``rule@line`` (an empty ``### expect:`` means "no finding of this rule")::

    ### case: whole context before pip install
    ### file: requirements.txt = flask
    ### dir: .git
    ### expect: copy-before-install@3
    FROM python:3.12-slim
    ...

Line numbers count from the first Dockerfile line after the ``###`` header.
A ``### dockerfile: <name>`` header names the Dockerfile (default ``Dockerfile``).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from layerkit.dockerfile.parser import parse
from layerkit.lint import Finding, lint


@dataclass
class Case:
    name: str
    source: str
    dockerfile: str = "Dockerfile"
    files: dict[str, str] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)
    big: dict[str, int] = field(default_factory=dict)
    expect: list[tuple[str, int]] = field(default_factory=list)

    @property
    def needs_context(self) -> bool:
        return bool(self.files or self.dirs or self.big)


def load_cases(path: str | os.PathLike[str]) -> list[Case]:
    cases: list[Case] = []
    current: Case | None = None
    body: list[str] = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines(keepends=True):
        line = raw.rstrip("\n")
        if line.startswith("### "):
            key, _, value = line[4:].partition(":")
            key, value = key.strip(), value.strip()
            if key == "case":
                if current is not None:
                    current.source = "".join(body).rstrip("\n") + "\n"
                    cases.append(current)
                current, body = Case(name=value, source=""), []
                continue
            assert current is not None, f"{path}: header before the first case"
            if key == "file":
                name, _, content = value.partition(" = ")
                current.files[name.strip()] = content.replace("\\n", "\n")
            elif key == "dir":
                current.dirs.append(value)
            elif key == "big":
                name, _, size = value.partition(" = ")
                current.big[name.strip()] = int(size)
            elif key == "dockerfile":
                current.dockerfile = value
            elif key == "expect":
                for item in value.split(","):
                    if item.strip():
                        rule, _, num = item.strip().partition("@")
                        current.expect.append((rule, int(num)))
            else:
                raise ValueError(f"{path}: unknown header {key!r}")
            continue
        if current is not None:
            body.append(raw)
    if current is not None:
        current.source = "".join(body).rstrip("\n") + "\n"
        cases.append(current)
    return cases


def materialise(case: Case, root: Path) -> Path:
    """Write the case's context into ``root``; returns the Dockerfile path."""
    for name in case.dirs:
        (root / name).mkdir(parents=True, exist_ok=True)
    for name, content in case.files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content, encoding="utf-8")
    for name, size in case.big.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        with (root / name).open("wb") as fh:
            fh.truncate(size)
    dockerfile = root / case.dockerfile
    dockerfile.write_text(case.source, encoding="utf-8")
    return dockerfile


def run_case(case: Case) -> list[Finding]:
    """Lint the case; always with a context dir (empty unless the case has files)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dockerfile = materialise(case, root)
        result = parse(case.source, filename=case.dockerfile)
        return lint(result, root, dockerfile, strict=True).findings
