"""``layerkit parse``: a Dockerfile -> its syntax tree, printed as BuildKit's dump or JSON.

    layerkit parse [-f FILE] [--dump | --json] [CONTEXT]

FILE defaults to CONTEXT/Dockerfile; a relative -f is relative to the current
directory, as with ``docker build``.
"""

from __future__ import annotations

import json
import os

import click

from layerkit.dockerfile.ast import ParseResult
from layerkit.dockerfile.dump import dump, to_json
from layerkit.dockerfile.keywords import INSTRUCTIONS, did_you_mean
from layerkit.dockerfile.parser import parse_file


def resolve_dockerfile(context: str, file: str | None) -> str:
    """The Dockerfile path: -f as given (relative to the cwd), else CONTEXT/Dockerfile."""
    return file if file is not None else os.path.join(context, "Dockerfile")


@click.command(name="parse")
@click.option(
    "-f",
    "--file",
    "file",
    type=str,
    default=None,
    help="Dockerfile to parse (default: CONTEXT/Dockerfile).",
)
@click.option(
    "--dump",
    "output",
    flag_value="dump",
    default=True,
    help="Print BuildKit's AST dump (default).",
)
@click.option("--json", "output", flag_value="json", help="Print the syntax tree as JSON.")
# --- extension point: further output modes (e.g. --stages, which calls
# --- layerkit.frontend) are added here as another `flag_value` of "output"
# --- and handled in the dispatch below.
@click.option(
    "--stages",
    "output",
    flag_value="stages",
    help="Print the stage graph: stages, dependencies, pruning and build waves.",
)
@click.option(
    "--stages-json", "output", flag_value="stages-json", help="Print the stage graph as JSON."
)
@click.option("--target", "target", default=None, help="With --stages: the stage to build.")
@click.option(
    "--build-arg",
    "build_args",
    multiple=True,
    metavar="KEY=VAL",
    help="With --stages: a build arg (repeatable); KEY alone takes $KEY from the environment.",
)
@click.argument("context", type=str, default=".", required=False)
def command(
    file: str | None,
    output: str,
    context: str,
    target: str | None = None,
    build_args: tuple[str, ...] = (),
) -> None:
    """Parse a Dockerfile and print its syntax tree."""
    result = parse_file(resolve_dockerfile(context, file))
    for warning in result.warnings:
        click.echo(f"warning: {result.filename}:{warning.line}: {warning.message}", err=True)
    if output in ("dump", "json"):
        _warn_unknown_instructions(result)
    if output == "json":
        click.echo(json.dumps(to_json(result), indent=2, ensure_ascii=False))
    elif output in ("stages", "stages-json"):
        from layerkit.frontend import build_stage_graph, format_stages, format_stages_json

        graph = build_stage_graph(result, target=target, build_args=_build_args(build_args))
        click.echo(format_stages(graph) if output == "stages" else format_stages_json(graph))
    else:
        click.echo(dump(result.ast))


def _warn_unknown_instructions(result: ParseResult) -> None:
    """BuildKit's parser keeps unknown instructions (they dump as ``(foo "")``) and
    only the converter rejects them; say so now rather than at build time."""
    for node in result.instructions:
        if node.keyword not in INSTRUCTIONS:
            suggestion = did_you_mean(node.value)
            hint = f" (did you mean {suggestion}?)" if suggestion else ""
            click.echo(
                f"warning: {result.filename}:{node.start_line}: unknown instruction: "
                f"{node.value.upper()}{hint}",
                err=True,
            )


def _build_args(items: tuple[str, ...]) -> dict[str, str]:
    """``KEY=VAL`` pairs; a bare ``KEY`` takes its value from the environment (as docker)."""
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VAL", param_hint="--build-arg")
        if eq:
            out[key] = value
        elif key in os.environ:
            out[key] = os.environ[key]
    return out
