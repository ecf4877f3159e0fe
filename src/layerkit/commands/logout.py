"""``layerkit logout``: forget the stored credentials for a registry.

    layerkit logout REGISTRY
"""

from __future__ import annotations

import click


@click.command(name="logout")
@click.argument("registry")
def command(registry: str) -> None:
    """Remove REGISTRY's credentials from layerkit's auth.json."""
    from layerkit.registry.login import logout

    if logout(registry):
        click.echo(f"Removing login credentials for {registry}", err=True)
    else:
        click.echo(f"Not logged in to {registry}", err=True)
