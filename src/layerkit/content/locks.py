"""Named advisory locks shared between processes, on files under ``<root>/locks/``.

A lock is an ``fcntl.flock`` on ``<root>/locks/<name>.lock``. flock locks belong
to an open file description, so two threads of one process that each take the
lock exclude each other just as two processes do, and the kernel drops the lock
when the holder dies (SIGKILL included): a crash never leaves a stale lock.

Shared locks are taken by every blob writer; the exclusive lock by ``gc``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from layerkit.content.errors import LockTimeoutError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
# Poll interval bounds while waiting for a lock with a timeout.
_MIN_SLEEP = 0.005
_MAX_SLEEP = 0.2


def lock_path(locks_dir: Path, name: str) -> Path:
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid lock name {name!r}")
    return locks_dir / f"{name}.lock"


@contextlib.contextmanager
def named_lock(
    locks_dir: Path, name: str, *, shared: bool, timeout: float | None = None
) -> Iterator[None]:
    """Hold lock ``name`` (shared or exclusive) for the duration of the ``with`` block.

    ``timeout=None`` waits forever, ``0`` tries once. On timeout raises
    :class:`LockTimeoutError` naming the lock file, so the user can see who holds it.
    """
    path = lock_path(locks_dir, name)
    locks_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _acquire(fd, path, shared=shared, timeout=timeout)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def shared_lock(locks_dir: Path, name: str, timeout: float | None = None) -> (
    contextlib.AbstractContextManager[None]
):
    return named_lock(locks_dir, name, shared=True, timeout=timeout)


def exclusive_lock(locks_dir: Path, name: str, timeout: float | None = None) -> (
    contextlib.AbstractContextManager[None]
):
    return named_lock(locks_dir, name, shared=False, timeout=timeout)


def _acquire(fd: int, path: Path, *, shared: bool, timeout: float | None) -> None:
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    if timeout is None:
        fcntl.flock(fd, mode)
        return
    deadline = time.monotonic() + timeout
    sleep = _MIN_SLEEP
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kind = "shared" if shared else "exclusive"
                raise LockTimeoutError(
                    f"timed out after {timeout:g}s waiting for a {kind} lock on {path}",
                    hint="another layerkit process (a build or `layerkit prune`) holds it; "
                    "wait for it to finish, or find it with `fuser " + str(path) + "`",
                ) from None
            time.sleep(min(sleep, remaining))
            sleep = min(sleep * 2, _MAX_SLEEP)


def lock_is_free(lock: Path, when_missing: Callable[[], bool] | None = None) -> bool:
    """Whether no live process holds ``lock`` (an flock-ed file, e.g. the lock of a
    snapshot being filled); one that cannot be opened is held by nobody, except that
    ``when_missing`` (if given) answers for a lock that does not exist (yet)."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return True if when_missing is None else when_missing()
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True
