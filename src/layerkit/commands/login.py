"""``layerkit login``: check credentials against a registry, then store them.

    layerkit login [-u USER] [-p PASSWORD | --password-stdin] [--insecure-registry HOST]...
                   [--config FILE] REGISTRY

Credentials go to ``$XDG_CONFIG_HOME/layerkit/auth.json`` (mode 0600); see
docs/registry.md for where else they are looked up.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from layerkit.commands.push import registry_flags


@click.command(name="login")
@click.argument("registry")
@click.option("-u", "--username", default=None, help="User name (prompted if missing).")
@click.option("-p", "--password", default=None,
              help="Password (prefer --password-stdin: a flag shows in `ps`).")
@click.option("--password-stdin", "password_stdin", is_flag=True,
              help="Read the password from standard input.")
@registry_flags
def command(registry: str, username: str | None, password: str | None, password_stdin: bool,
            insecure_registry: tuple[str, ...], registry_config: str | None) -> None:
    """Log in to REGISTRY (host[:port])."""
    from layerkit.errors import BuildError
    from layerkit.registry.config import load_config
    from layerkit.registry.login import login

    if password_stdin:
        if password is not None:
            raise BuildError("--password and --password-stdin are mutually exclusive",
                             hint="pass the password one way", reference="bad-flag")
        password = sys.stdin.read().rstrip("\r\n")
    if username is None:
        username = click.prompt("Username")
    if password is None:
        password = click.prompt("Password", hide_input=True)
    if not username or not password:
        raise BuildError("a user name and a password are needed",
                         hint="pass -u USER and --password-stdin", reference="bad-flag")
    path = login(registry, username, password,
                 config=load_config(Path(registry_config) if registry_config else None),
                 insecure_registries=list(insecure_registry))
    click.echo(f"Login Succeeded (credentials saved in {path})", err=True)
