"""``layerkit build``: build a Dockerfile into an image, reusing the layer cache.

    layerkit build [-f FILE] [-t NAME:TAG]... [--build-arg K=V]... [-o type=...] CONTEXT

Progress (one line per step: CACHED, or why it ran) goes to stderr; the image id
is printed on stdout at the end. Exit status 0 on success, 2 on any error (a
failed RUN shows its command, exit code and last lines).
"""

from __future__ import annotations

from typing import Any

import click

from layerkit.commands import buildrun
from layerkit.commands._buildflags import build_flags, to_options


@click.command(name="build")
@build_flags
@click.option("-t", "--tag", "tag", multiple=True, metavar="NAME[:TAG]",
              help="Name the image in the local store (repeatable).")
@click.option("-o", "--output", "output", multiple=True, metavar="type=TYPE[,dest=PATH]",
              help="Also export: type=oci|docker|local|tar|image|registry "
                   "(dest=, compression=, name=, push=true).")
@click.option("--progress", default="auto", type=click.Choice(["auto", "tty", "plain", "json"]),
              show_default=True, help="Progress output.")
@click.option("--metadata-file", "metadata_file", default=None,
              help="Write the image digests and every step's status and reason as JSON.")
def command(**kw: Any) -> None:
    """Build an image from a Dockerfile, with every step explained."""
    options = to_options(kw, tags=tuple(kw["tag"]), outputs=tuple(kw["output"]),
                         progress=kw["progress"], metadata_file=kw["metadata_file"])
    buildrun.run(options)
