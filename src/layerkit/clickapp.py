"""The ``layerkit`` click application: a thin layer over the api.

Each sub-command lives in ``layerkit.commands.<name>`` and exposes ``command``.
Errors derived from ``LayerkitError`` are rendered as diagnostics and exit 2
(1 is reserved for "findings" from ``check``). The console entry point is
:func:`layerkit.cli.main`, which answers no-op rebuilds before click is imported.
"""

from __future__ import annotations

import importlib
import sys

import click

from layerkit import __version__
from layerkit.errors import LayerkitError

# Sub-commands are imported lazily so ``layerkit --help`` and a no-op rebuild
# do not pay for modules they do not use.
_COMMANDS: dict[str, str] = {
    "parse": "layerkit.commands.parse",
    "check": "layerkit.commands.check",
    "build": "layerkit.commands.build",
    "plan": "layerkit.commands.plan",
    "load": "layerkit.commands.load",
    "images": "layerkit.commands.images",
    "history": "layerkit.commands.history",
    "inspect": "layerkit.commands.inspect",
    "tag": "layerkit.commands.tag",
    "rmi": "layerkit.commands.rmi",
    "du": "layerkit.commands.du",
    "prune": "layerkit.commands.prune",
    "push": "layerkit.commands.push",
    "login": "layerkit.commands.login",
    "logout": "layerkit.commands.logout",
    "fsck": "layerkit.commands.fsck",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = _COMMANDS.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(module_name)
        command: click.Command = module.command
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="layerkit")
def cli() -> None:
    """layerkit: build Dockerfiles into OCI images, with a cache that explains itself."""


def run(argv: list[str] | None = None) -> None:
    try:
        # With standalone_mode=False click returns a command's exit code
        # (ctx.exit(n)) instead of exiting; pass it on.
        code = cli.main(args=argv, prog_name="layerkit", standalone_mode=False)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except LayerkitError as err:
        click.echo(err.render(), err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)

