"""Turns bytes into verified, content-addressed files under ``<root>/blobs/sha256/<hex>``.

Crash safety (see docs/store.md): every blob is written to a temp file in
``<root>/blobs/tmp/``, hashed while it is written, checked against the expected
digest and size, fsynced, made read-only and renamed into place with
``os.replace`` (then the directory is fsynced). A file at a final blob path is
therefore always complete; a SIGKILL at any point leaves at most a temp file,
which ``gc`` removes.

Concurrency: writers hold the shared ``gc`` lock while their temp file exists;
``gc`` takes it exclusively. Callers that write blobs and only reference them
afterwards (a build) hold :meth:`ContentStore.lease` across the whole gap, so a
concurrent prune cannot collect a blob that is about to be referenced.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, BinaryIO

from layerkit.content.digest import BlobInfo, check_sha256_digest
from layerkit.content.errors import BlobNotFoundError, ContentError, DigestMismatchError
from layerkit.content.locks import named_lock
from layerkit.tmpnames import create_file

GC_LOCK = "gc"
_CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_hex64(name: str) -> bool:
    return len(name) == 64 and set(name) <= _HEX


class BlobWriter:
    """A write-only file object that hashes what it is given.

    Obtained from :meth:`ContentStore.writer`; after the ``with`` block exits
    cleanly, :attr:`info` holds the committed digest and size.
    """

    def __init__(self, file: IO[bytes], tmp_path: Path) -> None:
        self._file = file
        self.tmp_path = tmp_path
        self._hash = hashlib.sha256()
        self._size = 0
        self._info: BlobInfo | None = None
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._file.write(data)
        self._hash.update(data)
        n = len(memoryview(data).cast("B"))
        self._size += n
        return n

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        # The real flush happens at commit; compressors call this freely.
        pass

    def tell(self) -> int:
        return self._size

    @property
    def digest(self) -> str:
        return f"sha256:{self._hash.hexdigest()}"

    @property
    def size(self) -> int:
        return self._size

    def mark_committed(self) -> None:
        self._info = BlobInfo(self.digest, self.size)

    @property
    def info(self) -> BlobInfo:
        if self._info is None:
            raise ContentError("blob writer has not committed yet")
        return self._info


class ContentStore:
    """Content-addressed blob store rooted at ``root``.

    ``lock_timeout`` bounds how long a writer waits for a running ``gc`` (and
    ``gc`` for running writers) before raising :class:`LockTimeoutError`.
    """

    def __init__(self, root: Path, *, lock_timeout: float | None = 600.0) -> None:
        self.root = Path(root)
        self.blobs_dir = self.root / "blobs" / "sha256"
        self.tmp_dir = self.root / "blobs" / "tmp"
        self.locks_dir = self.root / "locks"
        self.lock_timeout = lock_timeout
        for d in (self.blobs_dir, self.tmp_dir, self.locks_dir):
            d.mkdir(parents=True, exist_ok=True)

    # -- reading ---------------------------------------------------------------

    def _target(self, digest: str) -> Path:
        return self.blobs_dir / check_sha256_digest(digest)

    def has(self, digest: str) -> bool:
        return self._target(digest).is_file()

    def path(self, digest: str) -> Path:
        """Return the blob's file path; raise BlobNotFoundError when absent."""
        target = self._target(digest)
        if not target.is_file():
            raise BlobNotFoundError(
                f"blob {digest} is not in the content store at {self.root}",
                hint="it may have been pruned; rebuild or pull the image again",
            )
        return target

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self._target(digest), "rb")
        except FileNotFoundError:
            self.path(digest)  # raises the diagnostic error
            raise

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def info(self, digest: str) -> BlobInfo:
        return BlobInfo(digest, self.size(digest))

    def iter_digests(self) -> Iterator[str]:
        with os.scandir(self.blobs_dir) as entries:
            for entry in entries:
                if _is_hex64(entry.name) and entry.is_file(follow_symlinks=False):
                    yield f"sha256:{entry.name}"

    def verify(self, digest: str) -> bool:
        """Re-hash the blob; False when it is missing or its bytes do not match."""
        target = self._target(digest)
        h = hashlib.sha256()
        try:
            with open(target, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
        except FileNotFoundError:
            return False
        return f"sha256:{h.hexdigest()}" == digest

    def disk_usage(self) -> int:
        """Total bytes held in blobs (temp files excluded)."""
        total = 0
        with os.scandir(self.blobs_dir) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
        return total

    # -- writing ---------------------------------------------------------------

    def lease(self) -> contextlib.AbstractContextManager[None]:
        """Keep ``gc`` out while held: wrap "write blobs, then record references"."""
        return named_lock(self.locks_dir, GC_LOCK, shared=True, timeout=self.lock_timeout)

    @contextlib.contextmanager
    def writer(
        self, expected_digest: str | None = None, expected_size: int | None = None
    ) -> Iterator[BlobWriter]:
        """Stream a blob into the store; commit on clean exit of the ``with`` block.

        A digest or size mismatch raises :class:`DigestMismatchError`; on any
        error the temp file is removed and nothing is committed.
        """
        if expected_digest is not None:
            check_sha256_digest(expected_digest)
        with self.lease():
            fd, tmp = create_file(self.tmp_dir, "ingest-", ".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    w = BlobWriter(f, tmp)
                    yield w
                    f.flush()
                    os.fsync(f.fileno())
                w.closed = True
                _check(BlobInfo(w.digest, w.size), expected_digest, expected_size)
                os.chmod(tmp, 0o444)
                os.replace(tmp, self._target(w.digest))
                _fsync_dir(self.blobs_dir)
                w.mark_committed()
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                raise

    def write_bytes(self, data: bytes, expected_digest: str | None = None) -> BlobInfo:
        with self.writer(expected_digest=expected_digest) as w:
            w.write(data)
        return w.info

    def write_stream(
        self,
        src: IO[bytes],
        expected_digest: str | None = None,
        expected_size: int | None = None,
    ) -> BlobInfo:
        with self.writer(expected_digest, expected_size) as w:
            shutil.copyfileobj(src, w, _CHUNK)
        return w.info

    def ingest_file(
        self, path: Path, move: bool = False, expected_digest: str | None = None,
        *, digest_known: bool = False,
    ) -> BlobInfo:
        """Add an existing file. With ``move=True`` it is renamed into place when it is
        on the same filesystem (the caller must not modify it meanwhile); otherwise
        it is copied through a verified writer.

        ``digest_known`` says the caller computed ``expected_digest`` over exactly the
        bytes it wrote to ``path`` (a layer diff hashes while it writes), so a move
        skips reading the file again; it is still fsynced before the rename."""
        path = Path(path)
        if move:
            moved = self._try_move(path, expected_digest,
                                   trusted=digest_known and expected_digest is not None)
            if moved is not None:
                return moved
        with open(path, "rb") as src:
            info = self.write_stream(src, expected_digest)
        if move:
            path.unlink()
        return info

    def _try_move(
        self, path: Path, expected_digest: str | None, *, trusted: bool = False
    ) -> BlobInfo | None:
        with self.lease():
            if trusted and expected_digest is not None:
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
                    size = os.fstat(f.fileno()).st_size
                info = BlobInfo(f"sha256:{check_sha256_digest(expected_digest)}", size)
            else:
                h = hashlib.sha256()
                size = 0
                with open(path, "rb") as f:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
                        size += len(chunk)
                    os.fsync(f.fileno())
                info = BlobInfo(f"sha256:{h.hexdigest()}", size)
                _check(info, expected_digest, None)
            os.chmod(path, 0o444)
            try:
                os.replace(path, self._target(info.digest))
            except OSError as e:
                if e.errno != errno.EXDEV:
                    raise
                return None
            _fsync_dir(self.blobs_dir)
            return info

    # -- removing --------------------------------------------------------------

    def delete(self, digest: str) -> bool:
        """Remove a blob; True if it existed. Readers holding it open keep their copy."""
        try:
            self._target(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def gc(self, roots: Iterable[str]) -> int:
        """Delete every blob not in ``roots`` and every stale temp file; return bytes freed.

        Runs under the exclusive ``gc`` lock, so no writer is active and every
        temp file found is a leftover of a crashed writer.
        """
        keep = {check_sha256_digest(d) for d in roots}
        freed = 0
        with named_lock(self.locks_dir, GC_LOCK, shared=False, timeout=self.lock_timeout):
            stale_tmp = self._scan(self.tmp_dir, lambda name: True)
            unreferenced = self._scan(
                self.blobs_dir, lambda name: _is_hex64(name) and name not in keep
            )
            for path in [*stale_tmp, *unreferenced]:
                try:
                    size = os.lstat(path).st_size
                    os.unlink(path)
                except FileNotFoundError:
                    continue
                freed += size
                import logging  # only collection logs (the import is ~3 ms)

                logging.getLogger(__name__).debug("gc removed %s (%d bytes)", path, size)
            _fsync_dir(self.blobs_dir)
        return freed

    @staticmethod
    def _scan(directory: Path, doomed: Callable[[str], bool]) -> list[str]:
        with os.scandir(directory) as entries:
            return [
                e.path for e in entries if doomed(e.name) and e.is_file(follow_symlinks=False)
            ]


def _check(info: BlobInfo, expected_digest: str | None, expected_size: int | None) -> None:
    if expected_size is not None and info.size != expected_size:
        raise DigestMismatchError(
            f"blob size mismatch: expected {expected_size} bytes, got {info.size} "
            f"(digest {info.digest})",
            hint="the source was truncated or changed while it was read; retry the transfer",
        )
    if expected_digest is not None and info.digest != expected_digest:
        raise DigestMismatchError(
            f"blob digest mismatch: expected {expected_digest}, got {info.digest}",
            hint="the content is corrupted or was changed in transit; retry the transfer",
        )
