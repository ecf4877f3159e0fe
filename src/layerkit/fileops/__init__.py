"""File operations: performs COPY, ADD, heredoc files and WORKDIR mkdir into a rootfs.

The worker calls :func:`apply_file_op` with the mounted root filesystem of the
new layer and the roots to copy from; the rules follow BuildKit's file
backend (fsutil copy) and are written down in docs/fileops.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from layerkit.fileops.apply import apply_file_op
    from layerkit.fileops.archive import detect_archive
    from layerkit.fileops.chmod import ModeSpec, parse_chmod
    from layerkit.fileops.errors import FileOpError
    from layerkit.fileops.fetch import check_checksum_sources, fetch_url, parse_checksum
    from layerkit.fileops.owner import Owner, resolve_owner
    from layerkit.fileops.result import FileOpResult

# Names are imported on first use: a COPY needs neither archives nor downloads.
_WHERE = {
    "apply_file_op": "apply", "detect_archive": "archive", "ModeSpec": "chmod",
    "parse_chmod": "chmod", "FileOpError": "errors", "check_checksum_sources": "fetch",
    "fetch_url": "fetch", "parse_checksum": "fetch", "Owner": "owner",
    "resolve_owner": "owner", "FileOpResult": "result",
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'layerkit.fileops' has no attribute {name!r}")
    return getattr(importlib.import_module(f"layerkit.fileops.{module}"), name)
