"""The Python API: what ``import layerkit`` offers, one call per CLI command.

The CLI is a thin layer over these functions, and they are thin layers over the
modules: the api only resolves paths the way ``docker build`` does (a Dockerfile
defaults to ``CONTEXT/Dockerfile``) and hands over to ``dockerfile``,
``frontend`` and ``lint``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from layerkit.dockerfile.ast import ParseResult
from layerkit.dockerfile.parser import parse_file
from layerkit.frontend import StageGraph, build_stage_graph
from layerkit.lint import LintReport, lint

PathLike = str | os.PathLike[str]


def dockerfile_path(context: PathLike = ".", file: PathLike | None = None) -> Path:
    """``-f FILE`` as given (relative to the cwd), else ``CONTEXT/Dockerfile``."""
    return Path(file) if file is not None else Path(context) / "Dockerfile"


def parse(context: PathLike = ".", file: PathLike | None = None) -> ParseResult:
    """Parse a Dockerfile into BuildKit's syntax tree (see ``layerkit.dockerfile.dump``)."""
    return parse_file(dockerfile_path(context, file))


def stages(
    context: PathLike = ".",
    file: PathLike | None = None,
    *,
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
) -> StageGraph:
    """The stage graph: stages, dependencies, what the target needs, build order."""
    return build_stage_graph(parse(context, file), target=target, build_args=build_args)


def check(context: PathLike = ".", file: PathLike | None = None) -> LintReport:
    """Run the cache linter (``layerkit check``) on a Dockerfile and its context."""
    path = dockerfile_path(context, file)
    return lint(parse_file(path), context_dir=Path(context), dockerfile_path=path)
