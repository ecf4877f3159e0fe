"""Turns layer tar streams into digests, compressed blobs and back into plain tars.

- ``diff_id``: sha256 of the *uncompressed* tar, computed while streaming.
- Compression is deterministic: gzip (isal's igzip when importable, else zlib)
  writes ``mtime=0``, no file name and the same OS byte every time; zstd runs
  single-threaded with a fixed level. The same input, level and library versions
  give the same bytes. isal and zlib produce *different* (both valid) gzip
  streams, so the compression cache records which backend made a blob.
- Decompression sniffs the magic bytes: gzip, zstd, bzip2, xz, or none.
"""

from __future__ import annotations

import bz2
import enum
import gzip
import hashlib
import io
import lzma
from collections.abc import Iterator
from typing import IO, Any, Protocol, cast

import zstandard

from layerkit.content.digest import BlobInfo
from layerkit.content.errors import UnsupportedCompressionError

_igzip: Any
try:
    from isal import igzip as _isal_igzip

    _igzip = _isal_igzip
    GZIP_BACKEND = "isal"
except ImportError:  # pragma: no cover - isal is a hard dependency, zlib is the fallback
    _igzip = None
    GZIP_BACKEND = "zlib"

CHUNK = 1 << 20
DEFAULT_GZIP_LEVEL = 6
DEFAULT_ZSTD_LEVEL = 3


class Compression(enum.StrEnum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"
    BZIP2 = "bzip2"
    XZ = "xz"


# Compressions the exporters may write; bzip2 and xz are read-only (legacy).
WRITABLE = frozenset({Compression.NONE, Compression.GZIP, Compression.ZSTD})

_MAGIC: tuple[tuple[bytes, Compression], ...] = (
    (b"\x1f\x8b", Compression.GZIP),
    (b"\x28\xb5\x2f\xfd", Compression.ZSTD),
    (b"BZh", Compression.BZIP2),
    (b"\xfd7zXZ\x00", Compression.XZ),
)
MAGIC_LEN = 6


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def detect_compression(head: bytes) -> Compression:
    """Name the compression of a stream from its first bytes (at least 6 are best)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return Compression.NONE


def default_level(compression: Compression) -> int | None:
    if compression is Compression.GZIP:
        return DEFAULT_GZIP_LEVEL
    if compression is Compression.ZSTD:
        return DEFAULT_ZSTD_LEVEL
    return None


def check_level(compression: Compression, level: int | None) -> int | None:
    """Return the effective level, or raise ValueError when out of range."""
    if level is None:
        return default_level(compression)
    if compression is Compression.GZIP and not 0 <= level <= 9:
        raise ValueError(f"gzip level must be 0-9, got {level}")
    if compression is Compression.ZSTD and not 1 <= level <= 22:
        raise ValueError(f"zstd level must be 1-22, got {level}")
    if compression is Compression.NONE:
        return None
    return level


def variant_key(compression: Compression, level: int | None) -> str:
    """Name one way of producing a compressed blob, e.g. ``gzip-6-isal``, ``zstd-3``."""
    if compression is Compression.NONE:
        return "none"
    level = check_level(compression, level)
    if compression is Compression.GZIP:
        return f"gzip-{level}-{GZIP_BACKEND}"
    if compression is Compression.ZSTD:
        return f"zstd-{level}-{zstandard.__version__}"
    raise UnsupportedCompressionError(f"layerkit does not write {compression} layers")


class HashingReader(io.RawIOBase):
    """Pass reads through while hashing them (sha256) and counting bytes."""

    def __init__(self, src: Readable) -> None:
        self._src = src
        self._hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._src.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._hash.update(data)
        self.size += n
        return n

    @property
    def digest(self) -> str:
        return f"sha256:{self._hash.hexdigest()}"

    @property
    def info(self) -> BlobInfo:
        return BlobInfo(self.digest, self.size)


def hash_stream(src: Readable) -> BlobInfo:
    """Digest and size of everything left in ``src`` (a diff_id for a plain tar)."""
    h = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
    return BlobInfo(f"sha256:{h.hexdigest()}", size)


def _isal_level(level: int) -> int:
    # igzip has levels 0-3; map zlib's 1-9 scale onto them by speed/ratio class.
    if level <= 0:
        return 0
    if level <= 2:
        return 1
    if level <= 5:
        return 2
    return 3


def compress_stream(
    src: Readable, dst: Writable, compression: Compression, level: int | None = None
) -> None:
    """Copy ``src`` to ``dst`` compressed, deterministically. ``dst`` is not closed."""
    level = check_level(compression, level)
    if compression is Compression.NONE:
        _copy(src, dst)
    elif compression is Compression.GZIP:
        assert level is not None
        gz: Any
        if _igzip is not None:
            gz = _igzip.GzipFile(
                filename="", mode="wb", compresslevel=_isal_level(level), fileobj=dst, mtime=0
            )
        else:  # pragma: no cover
            gz = gzip.GzipFile(
                filename="", mode="wb", compresslevel=level, fileobj=cast(Any, dst), mtime=0
            )
        with gz:
            _copy(src, gz)
    elif compression is Compression.ZSTD:
        assert level is not None
        cctx = zstandard.ZstdCompressor(level=level, threads=0)
        with cctx.stream_writer(cast(Any, dst), closefd=False) as zw:
            _copy(src, zw)
    else:
        raise UnsupportedCompressionError(
            f"layerkit does not write {compression} layers",
            hint="use compression=gzip or compression=zstd",
        )


def _copy(src: Readable, dst: Writable) -> None:
    while chunk := src.read(CHUNK):
        dst.write(chunk)


class _Prefixed(io.RawIOBase):
    """A reader that yields ``head`` and then the rest of ``src``."""

    def __init__(self, head: bytes, src: Readable) -> None:
        self._head = head
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._src.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_decompressed(src: Readable) -> tuple[IO[bytes], Compression]:
    """Wrap ``src`` (any position, need not be seekable) in a reader of the plain bytes."""
    head = b""
    while len(head) < MAGIC_LEN:
        more = src.read(MAGIC_LEN - len(head))
        if not more:
            break
        head += more
    kind = detect_compression(head)
    raw: IO[bytes] = io.BufferedReader(_Prefixed(head, src), CHUNK)
    if kind is Compression.NONE:
        return raw, kind
    if kind is Compression.GZIP:
        if _igzip is not None:
            return cast(IO[bytes], _igzip.GzipFile(fileobj=raw, mode="rb")), kind
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")), kind  # pragma: no cover
    if kind is Compression.ZSTD:
        reader = zstandard.ZstdDecompressor().stream_reader(
            raw, read_across_frames=True, closefd=False
        )
        return io.BufferedReader(reader, CHUNK), kind
    if kind is Compression.BZIP2:
        return cast(IO[bytes], bz2.BZ2File(raw, "rb")), kind
    return cast(IO[bytes], lzma.LZMAFile(raw, "rb")), kind


def iter_chunks(src: Readable) -> Iterator[bytes]:
    while chunk := src.read(CHUNK):
        yield chunk
