"""The error type every file operation raises: a BuildError with a file-op reference."""

from __future__ import annotations

from layerkit.errors import BuildError


class FileOpError(BuildError):
    """A COPY/ADD/WORKDIR file action that cannot be carried out as written."""

    reference = "file-op"
