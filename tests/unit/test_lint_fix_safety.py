"""``--fix`` must not change what a build means beyond the fix itself: regressions
found on real-world Dockerfile patterns (an install chained with a build step, `go
get` without packages, several manifests copied to `.`, legacy ENV values)."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerkit.dockerfile.parser import parse
from layerkit.lint import Finding, fix_text, lint


def _fix(tmp_path: Path, text: str, files: dict[str, str]) -> str:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content, encoding="utf-8")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(text, encoding="utf-8")

    def run(source: str) -> list[Finding]:
        return lint(parse(source), tmp_path, dockerfile, strict=True).findings

    result = fix_text(text, run)
    parse(result.text)  # the result must still parse
    return result.text


def _order(text: str, *needles: str) -> list[int]:
    return [text.index(n) for n in needles]


NODE = {"package.json": "{}", "package-lock.json": "{}", "src/index.js": ""}


def test_install_chained_with_a_build_is_not_moved_before_the_sources(tmp_path: Path) -> None:
    text = (
        "FROM node:20 AS builder\n"
        "WORKDIR /app\n"
        "COPY . .\n"
        "RUN npm ci && npm run build\n"
        "FROM nginx:1.27-alpine\n"
        "COPY --from=builder /app/dist /usr/share/nginx/html\n"
    )
    out = _fix(tmp_path, text, NODE)
    copy, build = _order(out, "COPY . .", "npm run build")
    assert copy < build


def test_system_install_chained_with_make_stays_after_the_sources(tmp_path: Path) -> None:
    text = (
        "FROM debian:12-slim\n"
        "COPY . /src\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends gcc "
        "&& make -C /src && rm -rf /var/lib/apt/lists/*\n"
    )
    out = _fix(tmp_path, text, {"Makefile": "all:\n"})
    copy, make = _order(out, "COPY . /src", "make -C /src")
    assert copy < make


def test_go_get_without_packages_needs_the_sources(tmp_path: Path) -> None:
    text = (
        "FROM golang:1.22 AS build\n"
        "WORKDIR /app\n"
        "COPY . /app\n"
        "RUN go get -d -v\n"
        "RUN go build -o app .\n"
    )
    out = _fix(tmp_path, text, {"go.mod": "module x\n", "main.go": "package main\n"})
    copy, get = _order(out, "COPY . /app", "go get -d -v")
    assert copy < get


def test_dependency_only_install_is_split_with_a_slash_destination(tmp_path: Path) -> None:
    text = (
        "FROM node:20\n"
        "WORKDIR /app\n"
        "COPY . .\n"
        "RUN npm ci --omit=dev\n"
        'CMD ["node", "src/index.js"]\n'
    )
    out = _fix(tmp_path, text, NODE)
    assert "COPY package.json package-lock.json ./\n" in out
    manifests, install, sources = _order(
        out, "COPY package.json", "npm ci --omit=dev", "COPY . ."
    )
    assert manifests < install < sources


@pytest.mark.parametrize(
    ("line", "fixed"),
    [
        ("ENV PATH /usr/local/bin:$PATH\n", "ENV PATH=/usr/local/bin:$PATH\n"),
        ("ENV GREETING hello  big world\n", 'ENV GREETING="hello  big world"\n'),
        ("LABEL description a small image\n", 'LABEL description="a small image"\n'),
        ("env JAVA_OPTS -Dfoo=bar\n", "env JAVA_OPTS=-Dfoo=bar\n"),
    ],
)
def test_legacy_env_fix_keeps_the_value(tmp_path: Path, line: str, fixed: str) -> None:
    out = _fix(tmp_path, "FROM alpine:3.20\n" + line, {})
    assert out == "FROM alpine:3.20\n" + fixed

    def pairs(source: str) -> list[tuple[str, str]]:
        node = parse(source).instructions[1]
        args = [n.value for n in node.next]
        return [(args[i], args[i + 1].strip('"')) for i in range(0, len(args), 3)]

    assert pairs(out) == pairs("FROM alpine:3.20\n" + line)


@pytest.mark.parametrize(
    "line",
    [
        'ENV MESSAGE "quoted" and more\n',
        "ENV WIN_PATH C:\\tools bin\n",
        "ENV PATH /a:\\\n/b\n",
    ],
)
def test_legacy_env_with_quotes_escapes_or_lines_is_left_alone(
    tmp_path: Path, line: str
) -> None:
    text = "FROM alpine:3.20\n" + line
    assert _fix(tmp_path, text, {}) == text


def test_empty_continuation_fix_drops_only_the_blank_lines(tmp_path: Path) -> None:
    text = "FROM debian:12-slim\nRUN echo a && \\\n\n    echo b\n\nCMD [\"sh\"]\n"
    out = _fix(tmp_path, text, {})
    assert out == "FROM debian:12-slim\nRUN echo a && \\\n    echo b\n\nCMD [\"sh\"]\n"
    assert not parse(out).warnings
