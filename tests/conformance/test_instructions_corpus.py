"""BuildKit's parser corpus, one level up: every case types, builds a stage graph
and dispatches, or fails with the DockerfileError BuildKit's converter would raise.

Reads ../shared/conformance/buildkit-parser in place.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from layerkit.dockerfile.parser import parse
from layerkit.errors import LayerkitError
from layerkit.frontend import Platform, build_stage_graph

AMD64 = Platform("linux", "amd64")

# Cases that are fine for the parser but not for a build, and why.
EXPECTED_ERRORS = {
    "env": "matching single-quote",  # ENV value with an unterminated quote
    "escapes": "matching double-quote",
    "flags": "unknown flag: user",  # a made-up COPY flag in the parser test
    "health": "HEALTHCHECK requires at least one argument",  # bare HEALTHCHECK
    "json": "no build stage in current context",  # CMD with no FROM
    "jeztah-invalid-json-json-inside-string": "no build stage in current context",
    "jeztah-invalid-json-json-inside-string-double": "no build stage in current context",
    "jeztah-invalid-json-single-quotes": "no build stage in current context",
    "jeztah-invalid-json-unterminated-bracket": "no build stage in current context",
    "jeztah-invalid-json-unterminated-string": "no build stage in current context",
}


def _cases(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if (d / "Dockerfile").is_file() and
                  (d / "result").is_file())


def _build(path: Path) -> None:
    result = parse(path.read_bytes(), str(path))
    graph = build_stage_graph(result, platform=AMD64, build_platform=AMD64)
    for stage in graph.stages:
        graph.steps(stage)


def test_corpus(conformance_dir: Path) -> None:
    cases = _cases(conformance_dir / "buildkit-parser")
    assert len(cases) >= 30
    failures = []
    for case in cases:
        expected = EXPECTED_ERRORS.get(case.name)
        try:
            _build(case / "Dockerfile")
        except LayerkitError as err:
            if expected is None or expected not in err.message:
                failures.append(f"{case.name}: unexpected error {err.message!r}")
            continue
        if expected is not None:
            failures.append(f"{case.name}: expected an error containing {expected!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("case", ["docker", "influxdb", "mumble", "znc"])
def test_real_world_cases_have_stages(conformance_dir: Path, case: str) -> None:
    path = conformance_dir / "buildkit-parser" / case / "Dockerfile"
    graph = build_stage_graph(parse(path.read_bytes(), str(path)), platform=AMD64,
                              build_platform=AMD64)
    assert graph.stages and graph.target.needed
    assert graph.build_order[-1] == [graph.target.index]
