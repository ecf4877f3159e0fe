"""The Python API: what ``import layerkit`` offers, one call per CLI command.

The CLI is a thin layer over these functions, and they are thin layers over the
modules: the api only resolves paths the way ``docker build`` does (a Dockerfile
defaults to ``CONTEXT/Dockerfile``) and hands over to ``dockerfile``,
``frontend``, ``lint`` and ``worker`` (build and plan). ``BuildOptions`` is the
one options object ``layerkit build``/``plan`` and :func:`build`/:func:`plan` share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from layerkit.worker.options import BuildOptions

if TYPE_CHECKING:
    # Imported where used: a no-op rebuild should not pay for the linter.
    from layerkit.dockerfile.ast import ParseResult
    from layerkit.frontend import StageGraph
    from layerkit.lint import LintReport
    from layerkit.solver import Plan
    from layerkit.worker.session import BuildResult

__all__ = ["BuildOptions", "build", "check", "dockerfile_path", "parse", "plan", "stages"]

PathLike = str | os.PathLike[str]


def dockerfile_path(context: PathLike = ".", file: PathLike | None = None) -> Path:
    """``-f FILE`` as given (relative to the cwd), else ``CONTEXT/Dockerfile``."""
    return Path(file) if file is not None else Path(context) / "Dockerfile"


def parse(context: PathLike = ".", file: PathLike | None = None) -> ParseResult:
    """Parse a Dockerfile into BuildKit's syntax tree (see ``layerkit.dockerfile.dump``)."""
    from layerkit.dockerfile.parser import parse_file

    return parse_file(dockerfile_path(context, file))


def stages(
    context: PathLike = ".",
    file: PathLike | None = None,
    *,
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
) -> StageGraph:
    """The stage graph: stages, dependencies, what the target needs, build order."""
    from layerkit.frontend import build_stage_graph

    return build_stage_graph(parse(context, file), target=target, build_args=build_args)


def check(context: PathLike = ".", file: PathLike | None = None) -> LintReport:
    """Run the cache linter (``layerkit check``) on a Dockerfile and its context."""
    from layerkit.dockerfile.parser import parse_file
    from layerkit.lint import lint

    path = dockerfile_path(context, file)
    return lint(parse_file(path), context_dir=Path(context), dockerfile_path=path)


def _options(options: BuildOptions | None, context: PathLike | None, kw: Any) -> BuildOptions:
    from layerkit.fastclass import replace

    base = options or BuildOptions()
    if context is not None:
        kw["context"] = os.fspath(context)
    return replace(base, **kw) if kw else base


def build(
    context: PathLike | None = None, options: BuildOptions | None = None, *,
    stream: TextIO | None = None, **kw: Any,
) -> BuildResult:
    """Build an image (``layerkit build``): ``build("app", tags=("app:1",))`` or
    ``build(options=BuildOptions(...))``. Progress is written to ``stream`` (stderr)."""
    from layerkit.worker.session import run_build

    return run_build(_options(options, context, kw), stream=stream)


def plan(
    context: PathLike | None = None, options: BuildOptions | None = None, **kw: Any
) -> Plan:
    """Predict which steps a build would reuse or run, and why (``layerkit plan``)."""
    from layerkit.worker.session import run_plan

    return run_plan(_options(options, context, kw))
