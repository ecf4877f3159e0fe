"""One module per CLI sub-command; each exposes a ``command`` (a click.Command)."""
