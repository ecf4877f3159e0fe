"""The ``layerkit`` command: its entry point.

``layerkit build`` with only the flags a no-op rebuild can be answered for goes
straight to :mod:`layerkit.commands.fastentry`, which parses them itself: click
and the flag tables cost ~20 ms to import, a quarter of a no-op rebuild.
Everything else is the click application in :mod:`layerkit.clickapp`.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import click


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["build"]:
        from layerkit.commands.fastentry import try_build

        code = try_build(args[1:])
        if code is not None:
            if argv is None:
                _end_process(code)
            if code:
                sys.exit(code)
            return
    from layerkit.clickapp import run

    run(argv)


def _end_process(code: int) -> None:
    """Leave without the interpreter's teardown (collecting every object of ~300
    modules: 15-20 ms, a tenth of a one-line rebuild). Safe here because the build
    has closed what it opened (databases, files, temporary directories; its threads
    are joined) and nothing registered at exit needs to run; only the standard
    streams are still buffered. Only for the process entry (``argv`` None), never
    for a caller that imported :func:`main`."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 1  # a closed pipe: the output was lost
    os._exit(code)


def __getattr__(name: str) -> Any:
    # ``from layerkit.cli import cli`` (the click group) keeps working.
    if name == "cli":
        from layerkit.clickapp import cli

        group: click.Group = cli
        return group
    raise AttributeError(f"module 'layerkit.cli' has no attribute {name!r}")


if __name__ == "__main__":
    main()
