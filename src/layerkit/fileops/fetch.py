"""Downloads an ``ADD <url>`` source to a local file, and checks ``--checksum``.

:func:`fetch_url` is the default ``fetch`` for :func:`layerkit.fileops.apply_file_op`:
it follows redirects, streams to a temporary file while hashing, refuses a
digest mismatch before the file is used, and sets the file's mtime from the
``Last-Modified`` header when the server sends one (BuildKit's http source
does the same). The temp file lives in its own directory, named after the
server's Content-Disposition filename or the URL's last path segment.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import tempfile
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Final

from layerkit.fileops.errors import FileOpError

if TYPE_CHECKING:
    # httpx (and email) cost ~0.1 s to import; every COPY imports this module, only
    # ADD <url> downloads.
    import httpx

_ALGORITHMS: Final = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX: Final = re.compile(r"^[0-9a-f]+$")
_CHUNK: Final = 1 << 20
_DISPOSITION: Final = re.compile(r'filename="?([^";]+)"?')


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``"sha256:<hex>"`` → ("sha256", hex), with BuildKit's error wording."""
    algo, sep, value = checksum.partition(":")
    hint = "write it as --checksum=sha256:<64 hex digits> (sha384 and sha512 work too)"
    if not sep:
        raise FileOpError(f"invalid checksum digest format: {checksum!r}", hint=hint,
                          reference="add-checksum-invalid")
    if algo not in _ALGORITHMS:
        raise FileOpError(f"unsupported digest algorithm: {algo!r} in --checksum={checksum}",
                          hint=hint, reference="add-checksum-invalid")
    if len(value) != _ALGORITHMS[algo] or not _HEX.match(value):
        raise FileOpError(f"invalid checksum digest format: {checksum!r}", hint=hint,
                          reference="add-checksum-invalid")
    return algo, value


def check_checksum_sources(sources: list[str] | tuple[str, ...], checksum: str) -> None:
    """``--checksum`` is only for HTTP(S) and Git sources (BuildKit's rule)."""
    if not checksum:
        return
    for src in sources:
        if not src.startswith(("http://", "https://", "git@", "git://")) and not (
                src.endswith(".git") or "#" in src):
            raise FileOpError(
                f"checksum requires HTTP(S) or Git sources, not {src!r}",
                hint="drop --checksum for local files: their content is already part of "
                "the cache key",
                reference="add-checksum-invalid",
            )


def _mismatch(url: str, expected: str, got: str) -> FileOpError:
    return FileOpError(
        f"ADD {url}: digest mismatch: expected {expected}, got {got}",
        hint="the server returned different content than --checksum pins; check the URL "
        "and update the checksum if the new content is expected",
        reference="add-checksum-mismatch",
    )


def verify_checksum(path: Path, checksum: str, url: str) -> None:
    """Re-hash a fetched file and compare it with ``checksum`` ("" skips)."""
    if not checksum:
        return
    algo, expected = parse_checksum(checksum)
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    if h.hexdigest() != expected:
        raise _mismatch(url, checksum, f"{algo}:{h.hexdigest()}")


def url_filename(url: str) -> str:
    """The name a URL's file gets in a directory destination (its last segment)."""
    path = urllib.parse.urlsplit(url).path
    return posixpath.basename(path.rstrip("/")) or "download"


def fetch_url(
    url: str,
    *,
    checksum: str = "",
    client: httpx.Client | None = None,
    timeout: float = 300.0,
) -> Path:
    """Download ``url`` to a new temporary file and return its path."""
    import email.utils

    import httpx

    algo, expected = parse_checksum(checksum) if checksum else ("sha256", "")
    own = client is None
    http = client or httpx.Client(follow_redirects=True, timeout=timeout)
    tmpdir = Path(tempfile.mkdtemp(prefix="layerkit-add-"))
    try:
        with http.stream("GET", url, follow_redirects=True) as resp:
            if resp.status_code >= 400:
                raise FileOpError(
                    f"ADD {url}: download failed: {resp.status_code} {resp.reason_phrase}",
                    hint="check that the URL is reachable from this machine",
                    reference="add-url-failed",
                )
            name = url_filename(url)
            found = _DISPOSITION.search(resp.headers.get("content-disposition", ""))
            if found:
                name = posixpath.basename(found.group(1)) or name
            target = tmpdir / name
            h = hashlib.new(algo)
            with open(target, "wb") as out:
                for chunk in resp.iter_bytes(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
            if expected and h.hexdigest() != expected:
                raise _mismatch(url, checksum, f"{algo}:{h.hexdigest()}")
            modified = resp.headers.get("last-modified")
            if modified:
                try:
                    when = email.utils.parsedate_to_datetime(modified).timestamp()
                    os.utime(target, (when, when))
                except (TypeError, ValueError):
                    pass  # an unparsable date just keeps the download time
            return target
    except BaseException as exc:
        import shutil

        shutil.rmtree(tmpdir, ignore_errors=True)
        if not isinstance(exc, httpx.HTTPError):
            raise
        raise FileOpError(
            f"ADD {url}: download failed: {exc}",
            hint="check the URL, the network and any proxy settings (HTTPS_PROXY)",
            reference="add-url-failed",
        ) from exc
    finally:
        if own:
            http.close()
