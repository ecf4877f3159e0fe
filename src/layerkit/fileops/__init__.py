"""File operations: performs COPY, ADD, heredoc files and WORKDIR mkdir into a rootfs.

The worker calls :func:`apply_file_op` with the mounted root filesystem of the
new layer and the roots to copy from; the rules follow BuildKit's file
backend (fsutil copy) and are written down in docs/fileops.md.
"""

from __future__ import annotations

from layerkit.fileops.apply import apply_file_op
from layerkit.fileops.archive import detect_archive
from layerkit.fileops.chmod import ModeSpec, parse_chmod
from layerkit.fileops.errors import FileOpError
from layerkit.fileops.fetch import check_checksum_sources, fetch_url, parse_checksum
from layerkit.fileops.owner import Owner, resolve_owner
from layerkit.fileops.result import FileOpResult

__all__ = [
    "FileOpError",
    "FileOpResult",
    "ModeSpec",
    "Owner",
    "apply_file_op",
    "check_checksum_sources",
    "detect_archive",
    "fetch_url",
    "parse_checksum",
    "parse_chmod",
    "resolve_owner",
]
