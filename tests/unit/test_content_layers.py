"""Layer compression helpers: sniffing, deterministic gzip/zstd, streaming digests."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
from pathlib import Path
from typing import IO

import pytest
import zstandard
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from layerkit.content.errors import UnsupportedCompressionError
from layerkit.content.layers import (
    Compression,
    HashingReader,
    check_level,
    compress_stream,
    detect_compression,
    hash_stream,
    open_decompressed,
    variant_key,
)

DATA = b"layer tar bytes " * 5000 + os.urandom(3000)


def compress(data: bytes, kind: Compression, level: int | None = None) -> bytes:
    out = io.BytesIO()
    compress_stream(io.BytesIO(data), out, kind, level)
    return out.getvalue()


class OneWay(io.RawIOBase):
    """A non-seekable source, like a socket or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        chunk = self._buf.read(min(len(b), 1000))
        b[: len(chunk)] = chunk
        return len(chunk)

    def seekable(self) -> bool:
        return False


@pytest.mark.parametrize(
    ("blob", "expected"),
    [
        (gzip.compress(b"x"), Compression.GZIP),
        (zstandard.ZstdCompressor().compress(b"x"), Compression.ZSTD),
        (bz2.compress(b"x"), Compression.BZIP2),
        (lzma.compress(b"x"), Compression.XZ),
        (b"plain tar header", Compression.NONE),
        (b"", Compression.NONE),
    ],
)
def test_detect_compression(blob: bytes, expected: Compression) -> None:
    assert detect_compression(blob[:6]) is expected


@pytest.mark.parametrize("kind", [Compression.GZIP, Compression.ZSTD, Compression.NONE])
def test_round_trip_and_determinism(kind: Compression) -> None:
    first, second = compress(DATA, kind), compress(DATA, kind)
    assert first == second
    reader, detected = open_decompressed(io.BytesIO(first))
    assert detected is kind
    assert reader.read() == DATA


@pytest.mark.parametrize(
    ("blob", "kind"),
    [(bz2.compress(DATA), Compression.BZIP2), (lzma.compress(DATA), Compression.XZ)],
)
def test_legacy_formats_decompress(blob: bytes, kind: Compression) -> None:
    reader, detected = open_decompressed(OneWay(blob))
    assert detected is kind
    assert reader.read() == DATA


def test_decompress_from_non_seekable_stream() -> None:
    reader, kind = open_decompressed(OneWay(compress(DATA, Compression.ZSTD)))
    assert kind is Compression.ZSTD and reader.read() == DATA
    reader, kind = open_decompressed(OneWay(DATA))
    assert kind is Compression.NONE and reader.read() == DATA


def test_multi_member_gzip_is_read_fully() -> None:
    blob = gzip.compress(b"part one ") + gzip.compress(b"part two")
    reader, _ = open_decompressed(io.BytesIO(blob))
    assert reader.read() == b"part one part two"


def test_gzip_header_is_deterministic_even_for_named_files(tmp_path: Path) -> None:
    path = tmp_path / "named-output.gz"
    with open(path, "wb") as f:
        compress_stream(io.BytesIO(DATA), f, Compression.GZIP)
    header = path.read_bytes()[:10]
    assert header[:3] == b"\x1f\x8b\x08"
    assert header[3] == 0, "no FNAME/FCOMMENT/FEXTRA flags: no file name leaks in"
    assert header[4:8] == b"\0\0\0\0", "mtime is zero"
    assert path.read_bytes() == compress(DATA, Compression.GZIP)
    assert gzip.decompress(path.read_bytes()) == DATA


def test_levels_change_output_and_are_validated() -> None:
    assert compress(DATA, Compression.GZIP, 1) != compress(DATA, Compression.GZIP, 9)
    assert compress(DATA, Compression.ZSTD, 1) != compress(DATA, Compression.ZSTD, 19)
    with pytest.raises(ValueError):
        check_level(Compression.GZIP, 10)
    with pytest.raises(ValueError):
        check_level(Compression.ZSTD, 0)
    assert check_level(Compression.GZIP, None) == 6


def test_variant_keys_name_level_and_backend() -> None:
    assert variant_key(Compression.GZIP, 1) != variant_key(Compression.GZIP, 9)
    assert variant_key(Compression.ZSTD, None).startswith("zstd-3-")
    assert variant_key(Compression.NONE, None) == "none"
    with pytest.raises(UnsupportedCompressionError):
        variant_key(Compression.XZ, None)
    with pytest.raises(UnsupportedCompressionError):
        compress(b"x", Compression.BZIP2)


def test_hashing_reader_and_hash_stream_agree_with_hashlib() -> None:
    expected = "sha256:" + hashlib.sha256(DATA).hexdigest()
    assert hash_stream(io.BytesIO(DATA)).digest == expected
    reader = HashingReader(io.BytesIO(DATA))
    assert reader.read() == DATA
    assert reader.info == (expected, len(DATA))


@settings(max_examples=40, deadline=None)
@given(
    data=st.binary(max_size=5000),
    kind=st.sampled_from([Compression.GZIP, Compression.ZSTD, Compression.NONE]),
)
def test_any_bytes_round_trip(data: bytes, kind: Compression) -> None:
    # Sniffing cannot tell plain bytes that begin with a magic number from a
    # compressed stream; a real tar begins with a file name, so that never happens.
    assume(kind is not Compression.NONE or detect_compression(data[:6]) is Compression.NONE)
    blob = compress(data, kind)
    src: IO[bytes] = io.BytesIO(blob)
    reader, _ = open_decompressed(src)
    assert reader.read() == data
