"""The ``layerkit`` command: its entry point.

``layerkit build`` with only the flags a no-op rebuild can be answered for goes
straight to :mod:`layerkit.commands.fastentry`, which parses them itself: click
and the flag tables cost ~20 ms to import, a quarter of a no-op rebuild.
Everything else is the click application in :mod:`layerkit.clickapp`.
"""

from __future__ import annotations

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
            if code:
                sys.exit(code)
            return
    from layerkit.clickapp import run

    run(argv)


def __getattr__(name: str) -> Any:
    # ``from layerkit.cli import cli`` (the click group) keeps working.
    if name == "cli":
        from layerkit.clickapp import cli

        group: click.Group = cli
        return group
    raise AttributeError(f"module 'layerkit.cli' has no attribute {name!r}")


if __name__ == "__main__":
    main()
