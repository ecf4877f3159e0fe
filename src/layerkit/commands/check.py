"""``layerkit check``: lint a Dockerfile for cache problems, optionally fix them.

    layerkit check [-f FILE] [--fix] [--format text|json|sarif] [CONTEXT]

FILE defaults to CONTEXT/Dockerfile. Exit status: 1 when a finding is at error
level, else 0 (2 for usage and parse errors, rendered by the CLI). ``--fix``
rewrites the Dockerfile (untouched lines keep their bytes), may write
``.dockerignore``, prints a unified diff (on stderr for json/sarif, so that stdout
stays machine-readable) and then reports what is left.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from layerkit.dockerfile.parser import parse
from layerkit.errors import DockerfileError, LintError
from layerkit.lint import fix_text, lint, render_json, render_sarif, render_text, unified_diff
from layerkit.lint.findings import FileWrite, Finding
from layerkit.lint.runner import LintReport


def _read(path: Path) -> str:
    try:
        with path.open("r", encoding="utf-8", errors="surrogateescape", newline="") as fh:
            return fh.read()
    except FileNotFoundError:
        raise LintError(
            f"no Dockerfile at {path}",
            hint="pass the build context directory, or the file with -f",
            reference="dockerfile-not-found",
        ) from None
    except IsADirectoryError:
        raise LintError(f"{path} is a directory", hint="pass the Dockerfile with -f") from None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.layerkit-fix")
    with tmp.open("w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _check_text(text: str, name: str, context: Path, dockerfile: Path) -> LintReport:
    result = parse(text, filename=name)
    return lint(result, context, dockerfile)


@click.command(name="check")
@click.option("-f", "--file", "file", type=str, default=None,
              help="Dockerfile to check (default: CONTEXT/Dockerfile).")
@click.option("--fix", is_flag=True, help="Apply the mechanical fixes and print a diff.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text",
              show_default=True, help="Output format.")
@click.argument("context", required=False, default=".")
def command(file: str | None, fix: bool, fmt: str, context: str) -> None:
    """Lint a Dockerfile for layer-cache problems (rules: docs/rules/)."""
    context_dir = Path(context)
    if file is None and context_dir.is_file():
        # `layerkit check path/to/Dockerfile`: be lenient, the file's folder is the context
        file, context = context, str(context_dir.parent)
        context_dir = context_dir.parent
    if not context_dir.is_dir():
        raise LintError(f"build context {context} is not a directory",
                        hint="pass the directory you would give to `docker build`")
    path = Path(file) if file is not None else context_dir / "Dockerfile"
    name = file if file is not None else os.path.join(context, "Dockerfile")
    if name.startswith("./"):
        name = name[2:]
    text = _read(path)
    report = _check_text(text, name, context_dir, path)

    if fix:
        def findings_of(candidate: str) -> list[Finding]:
            return _check_text(candidate, name, context_dir, path).findings

        def write_file(w: FileWrite) -> None:
            _write(Path(w.path), w.content)

        fixed = fix_text(text, findings_of, write_file)
        if fixed.text != text:
            try:
                parse(fixed.text, filename=name)
            except DockerfileError as err:  # pragma: no cover - a bug in a fix
                raise LintError(f"--fix produced a file that does not parse ({err.message}); "
                                "nothing was written to the Dockerfile") from None
            _write(path, fixed.text)
        diff = unified_diff(text, fixed.text, name)
        for file_path, (old, new) in fixed.files.items():
            shown = os.path.join(context, os.path.relpath(file_path, context_dir))
            diff += unified_diff(old, new, os.path.normpath(shown))
        out_err = fmt != "text"
        if diff:
            click.echo(diff, nl=False, err=out_err)
        click.echo(f"fixed {len(fixed.applied)} finding(s)", err=True)
        report = _check_text(fixed.text, name, context_dir, path)

    for problem in report.internal_errors:
        click.echo(f"layerkit check: internal error in rule {problem}", err=True)
    if fmt == "json":
        click.echo(render_json([report]), nl=False)
    elif fmt == "sarif":
        click.echo(render_sarif([report]), nl=False)
    else:
        click.echo(render_text([report]), nl=False)
    if report.has_errors:
        # SystemExit, not click's Exit: the CLI runs click with standalone_mode=False,
        # where a returned exit code would be dropped
        sys.exit(1)
