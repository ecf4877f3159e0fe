"""Holds snapshots under ``<root>/snapshots/<id>/{fs,work}``.

An *active* snapshot (named by a caller's key, private to this process) is a
writable directory; `commit` makes it an immutable snapshot named by a short
id. With the overlayfs driver each committed snapshot holds only its own
layer's files (an upperdir, with overlay whiteouts) and a new active snapshot
is an overlay of a fresh upperdir over its parents' ``fs`` dirs, as in
containerd's overlay snapshotter. With the naive driver each snapshot is a full
copy of its parent.

Crash safety: a snapshot is committed only once its ``committed`` marker has
been written (temp file + rename). An active snapshot holds an flock on its
``lock`` file; a directory with neither a marker nor a live lock is garbage and
is removed when a Snapshotter is next opened on the root.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from layerkit.content.locks import lock_is_free
from layerkit.errors import BuildError
from layerkit.snapshot.diff import diff_naive, diff_overlay
from layerkit.snapshot.driver import (
    Driver,
    choose_driver,
    overlay_extra_options,
    volatile_upper,
)
from layerkit.snapshot.mount import PAGE_SIZE, Mount, mounted, remove_tree, syncfs
from layerkit.snapshot.tarwriter import DiffResult, LayerReuse
from layerkit.tmpnames import create_dir, create_file

if TYPE_CHECKING:
    from layerkit.snapshot.apply import ApplyResult

MARKER = "committed"
_GRACE_SECONDS = 30  # a directory this young may still be getting its lock


def _error(message: str, hint: str) -> BuildError:
    return BuildError(message, hint=hint, reference="snapshot")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see all of it or nothing."""
    fd, tmp = create_file(path.parent, f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_tree(src: Path, dst: Path) -> None:
    """Copy a tree with owners, modes, xattrs, hardlinks and times (``cp -a``)."""
    import subprocess  # the naive driver's path only

    proc = subprocess.run(
        ["cp", "-a", "--reflink=auto", f"{src}/.", f"{dst}/"],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise _error(f"copying snapshot files failed: {proc.stderr.strip()}",
                     "check free disk space under the layerkit root")


class PendingSync:
    """A syncfs(2) of a snapshot's filesystem running in a thread (or nothing to do)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if path is not None:
            self._thread = threading.Thread(target=self._run, name="layerkit-syncfs",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        assert self.path is not None
        try:
            syncfs(self.path)
        except BaseException as exc:  # handed to wait()
            self._error = exc

    def wait(self) -> None:
        """Block until the sync is done; raise its error, if any."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error


class Snapshotter:
    """Snapshots stored under ``root`` (the layerkit store root)."""

    def __init__(
        self,
        root: Path,
        *,
        driver: Driver | None = None,
        max_mount_data: int | None = None,
    ) -> None:
        self.root = root
        self.dir = root / "snapshots"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.driver: Driver = driver or choose_driver(root)
        # Writable overlays skip every sync inside them; commit() syncs once instead.
        self.volatile = self.driver == "overlayfs" and volatile_upper(root)
        # Tests lower this to exercise the relative-path and flattening paths.
        self.max_mount_data = max_mount_data or (PAGE_SIZE - 1)
        self._active: dict[str, str] = {}
        self._locks: dict[str, int] = {}
        self._mutex = threading.Lock()
        self.collect_garbage()

    # -- metadata -----------------------------------------------------------

    def _path(self, sid: str) -> Path:
        return self.dir / sid

    def is_committed(self, sid: str) -> bool:
        return (self._path(sid) / MARKER).is_file()

    def committed(self) -> list[str]:
        """Ids of all committed snapshots (including other processes')."""
        return sorted(p.name for p in self.dir.iterdir()
                      if not p.name.startswith((".", "flat-")) and (p / MARKER).is_file())

    def stack(self, sid: str) -> list[str]:
        """The committed snapshot ``sid`` and its ancestors, bottom first."""
        if not self.is_committed(sid):
            raise _error(f"snapshot {sid!r} does not exist or is not committed",
                         "it may have been pruned; rebuild without cache")
        meta = json.loads((self._path(sid) / MARKER).read_text())
        return [*meta["parents"], sid]

    def _expand(self, parents: Sequence[str]) -> list[str]:
        """``parents`` (bottom first) with each one's recorded ancestors."""
        out: list[str] = []
        for parent in parents:
            for sid in self.stack(parent):
                if sid not in out:
                    out.append(sid)
        return out

    def _id_for(self, key: str) -> str:
        try:
            return self._active[key]
        except KeyError:
            raise _error(f"no active snapshot with key {key!r}",
                         "prepare() it first; active keys are private to a process") from None

    def _resolve(self, key_or_id: str) -> tuple[str, bool]:
        if key_or_id in self._active:
            return self._active[key_or_id], True
        self.stack(key_or_id)  # raises when unknown
        return key_or_id, False

    def fs(self, key_or_id: str) -> Path:
        """The directory holding this snapshot's own files."""
        return self._path(self._resolve(key_or_id)[0]) / "fs"

    def parents(self, key_or_id: str) -> list[str]:
        sid, _active = self._resolve(key_or_id)
        meta = json.loads((self._path(sid) / "meta.json").read_text())
        parents: list[str] = meta["parents"]
        return parents

    # -- lifecycle ----------------------------------------------------------

    def prepare(self, key: str, parents: Sequence[str] = ()) -> Mount:
        """Create a writable snapshot on top of ``parents`` (committed ids,
        bottom first; a parent's own ancestors are implied, so passing just
        the top one is enough) and return the mount that shows it."""
        with self._mutex:
            if key in self._active:
                raise _error(f"active snapshot {key!r} already exists",
                             "commit or remove it before preparing the key again")
            stack = self._expand(parents)
            if self.driver == "naive" and stack and self.stack(stack[-1]) != stack:
                raise _error("the naive snapshotter can only stack a single parent chain",
                             "use LAYERKIT_SNAPSHOTTER=overlayfs for merged parents")
            sid = self._new_dir()
            self._active[key] = sid
        path = self._path(sid)
        try:
            (path / "fs").mkdir()
            if self.driver == "overlayfs":
                (path / "work").mkdir()
            elif stack:
                copy_tree(self._path(stack[-1]) / "fs", path / "fs")
            meta = {"key": key, "parents": stack, "driver": self.driver}
            write_atomic(path / "meta.json", json.dumps(meta, sort_keys=True).encode())
            return self.mounts(key)
        except BaseException:
            self._drop(key)
            raise

    def _new_dir(self) -> str:
        # The directory appears under its id only once its lock is held: it is
        # made as a young ".new-*" directory (which collectors skip), locked,
        # then renamed (the flock follows the inode). Locking after creating it
        # under its final name let another process's collect_garbage see a free
        # lock in between and delete the snapshot being built.
        staging = create_dir(self.dir, ".new-")
        fd = os.open(staging / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            while True:
                sid = os.urandom(6).hex()
                if os.path.lexists(self._path(sid)):
                    continue
                os.rename(staging, self._path(sid))
                self._locks[sid] = fd
                return sid
        except BaseException:
            os.close(fd)
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _release(self, sid: str) -> None:
        fd = self._locks.pop(sid, None)
        if fd is not None:
            os.close(fd)

    def _drop(self, key: str) -> None:
        with self._mutex:
            sid = self._active.pop(key)
        shutil.rmtree(self._path(sid), ignore_errors=True)
        self._release(sid)

    def start_sync(self, key: str) -> PendingSync:
        """Begin making the active snapshot ``key``'s files durable, in the background
        (its writer is done: unmounted). Pass the result to :meth:`commit`, which waits
        for it; reading the files meanwhile (the layer diff) is fine."""
        if not self.volatile:
            return PendingSync(None)
        return PendingSync(self._path(self._id_for(key)))

    def commit(self, key: str, synced: PendingSync | None = None) -> str:
        """Freeze the active snapshot ``key`` (unmount it first); returns its id."""
        sid = self._id_for(key)
        path = self._path(sid)
        meta = json.loads((path / "meta.json").read_text())
        if self.volatile:
            # The upperdir was written with syncs ignored (a volatile mount): make it
            # durable before the marker says the snapshot is complete. One syncfs per
            # step replaces the sync a plain overlay does at unmount plus every fsync
            # the step's own programs asked for.
            if synced is not None and synced.path == path:
                synced.wait()
            else:
                syncfs(path)
        shutil.rmtree(path / "work", ignore_errors=True)
        marker = {"parents": meta["parents"], "driver": meta["driver"]}
        write_atomic(path / MARKER, json.dumps(marker, sort_keys=True).encode())
        with self._mutex:
            del self._active[key]
        self._release(sid)
        return sid

    def remove(self, key_or_id: str) -> None:
        """Remove an active snapshot, or a committed one without children."""
        if key_or_id in self._active:
            self._drop(key_or_id)
            return
        sid = key_or_id
        if not self.is_committed(sid):
            raise _error(f"snapshot {sid!r} does not exist", "nothing to remove")
        children = [c for c in self.committed() if c != sid and sid in self.stack(c)]
        if children:
            raise _error(f"snapshot {sid!r} is the parent of {', '.join(children)}",
                         "remove the children first")
        # Dropping the marker first makes a half-removed snapshot plain garbage.
        (self._path(sid) / MARKER).unlink()
        shutil.rmtree(self._path(sid), ignore_errors=True)
        for flat in self.dir.glob("flat-*"):
            if (flat / "stack").is_file() and sid in (flat / "stack").read_text().split():
                (flat / MARKER).unlink(missing_ok=True)
                shutil.rmtree(flat, ignore_errors=True)

    def collect_garbage(self) -> list[str]:
        """Remove uncommitted directories no live process holds; returns names."""
        removed: list[str] = []
        for path in sorted(self.dir.iterdir()):
            if (path / MARKER).is_file() or path.name in self._locks:
                continue
            try:
                mtime = path.lstat().st_mtime
            except FileNotFoundError:
                continue  # another process renamed or removed it meanwhile
            young = time.time() - mtime < _GRACE_SECONDS
            if path.name.startswith(".") and path.name != ".empty" and young:
                continue
            if not self._abandoned(path):
                continue
            if remove_tree(path):
                removed.append(path.name)
        return removed

    def _abandoned(self, path: Path) -> bool:
        if path.name == ".empty":
            return False

        def past_grace() -> bool:  # no lock yet: its creator may be about to take it
            try:
                return time.time() - path.lstat().st_mtime >= _GRACE_SECONDS
            except FileNotFoundError:
                return False  # renamed or removed by its owner meanwhile

        return lock_is_free(path / "lock", when_missing=past_grace)

    # -- mounts -------------------------------------------------------------

    def mounts(self, key: str) -> Mount:
        """The mount showing active snapshot ``key`` read-write."""
        sid = self._id_for(key)
        path = self._path(sid)
        parents = json.loads((path / "meta.json").read_text())["parents"]
        if self.driver == "naive" or not parents:
            return Mount("bind", str(path / "fs"), ("rbind", "rw"))
        return self._overlay(parents, upper=sid)

    def view(self, sid: str) -> Mount:
        """A read-only mount of committed snapshot ``sid`` (all its layers)."""
        stack = self.stack(sid)
        if self.driver == "naive":
            return Mount("bind", str(self._path(sid) / "fs"), ("rbind", "ro"))
        if len(stack) == 1:
            # overlay needs two lowers without an upperdir: add an empty one.
            empty = self.dir / ".empty"
            empty.mkdir(exist_ok=True)
            return Mount("overlay", "overlay", (
                "ro", *overlay_extra_options(),
                f"lowerdir={self._path(sid) / 'fs'}:{empty}"))
        return self._overlay(stack, upper=None)

    def _overlay(self, stack: list[str], upper: str | None) -> Mount:
        extra = overlay_extra_options()
        if upper is not None and self.volatile:
            extra = (*extra, "volatile")
        tail = "" if upper is None else f",upperdir={upper}/fs,workdir={upper}/work"
        flags = ("ro",) if upper is None else ()
        lowers = [f"{sid}/fs" for sid in reversed(stack)]
        absolute = [str(self.dir / p) for p in lowers]
        abs_tail = "" if upper is None else (
            f",upperdir={self.dir / upper}/fs,workdir={self.dir / upper}/work")
        data = ",".join(extra) + ",lowerdir=" + ":".join(absolute) + abs_tail
        if len(data) <= self.max_mount_data:
            return Mount("overlay", "overlay",
                         (*flags, *extra, "lowerdir=" + ":".join(absolute),
                          *_split_tail(abs_tail)))
        data = ",".join(extra) + ",lowerdir=" + ":".join(lowers) + tail
        if len(data) > self.max_mount_data:
            lowers = self._flattened_lowers(stack, budget=self.max_mount_data - len(data)
                                            + len(":".join(lowers)))
        return Mount("overlay", "overlay",
                     (*flags, *extra, "lowerdir=" + ":".join(lowers), *_split_tail(tail)),
                     chdir=str(self.dir))

    def _flattened_lowers(self, stack: list[str], budget: int) -> list[str]:
        """Relative lowerdir entries (top first) fitting in ``budget`` bytes:
        the top layers as they are, the rest merged into one flat copy."""
        top: list[str] = []
        used = 0
        reserve = len("flat-") + 24 + len("/fs") + 1
        for sid in reversed(stack):
            entry = f"{sid}/fs"
            if used + len(entry) + 1 + reserve > budget or len(top) == len(stack) - 1:
                break
            top.append(entry)
            used += len(entry) + 1
        if not top:
            raise _error("too many layers to mount even after flattening",
                         "the store root path is too long; use a shorter LAYERKIT_ROOT")
        bottom = stack[: len(stack) - len(top)]
        return [*top, self._flatten(bottom) + "/fs"]

    def _flatten(self, stack: list[str]) -> str:
        """A committed flat copy of the merged ``stack``; reused when it exists."""
        if len(stack) == 1:
            return stack[0]
        name = "flat-" + hashlib.sha256(" ".join(stack).encode()).hexdigest()[:24]
        path = self._path(name)
        if (path / MARKER).is_file():
            return name
        staging = create_dir(self.dir, ".flat-")
        # Held while copying, so another process's garbage collection keeps it.
        lock_fd = os.open(staging / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            (staging / "fs").mkdir()
            with mounted(self._overlay(stack, upper=None), staging / "m") as src:
                copy_tree(src, staging / "fs")
            (staging / "stack").write_text(" ".join(stack))
            write_atomic(staging / MARKER, b"{}")
            os.rmdir(staging / "m")
            try:
                os.rename(staging, path)
            except OSError:
                if not (path / MARKER).is_file():
                    raise
        finally:
            if staging.exists():
                remove_tree(staging)
            os.close(lock_fd)
        return name

    # -- content ------------------------------------------------------------

    def _lowers(self, stack: Sequence[str]) -> list[Path]:
        return [self._path(sid) / "fs" for sid in reversed(stack)]

    def apply(self, key: str, layer: Path | BinaryIO) -> ApplyResult:
        """Unpack a layer tar into active snapshot ``key`` (not mounted)."""
        from layerkit.snapshot.apply import apply_layer  # only to unpack base layers

        sid = self._id_for(key)
        parents = self.parents(key)
        fs = self._path(sid) / "fs"
        if self.driver == "naive":
            return apply_layer(layer, fs, whiteouts="delete")
        return apply_layer(layer, fs, whiteouts="overlay", lowers=self._lowers(parents))

    def diff(self, key_or_id: str, out: Path, *,
             source_date_epoch: int | None = None, reuse: LayerReuse | None = None,
             record_entries: bool = False) -> DiffResult:
        """Write the layer tar of this snapshot's own changes to ``out`` (``reuse``:
        see :class:`~layerkit.snapshot.tarwriter.LayerReuse`; overlay only)."""
        sid, _active = self._resolve(key_or_id)
        parents = self.parents(key_or_id)
        fs = self._path(sid) / "fs"
        if self.driver == "naive":
            old = self._path(parents[-1]) / "fs" if parents else None
            return diff_naive(fs, old, out, source_date_epoch=source_date_epoch)
        return diff_overlay(fs, self._lowers(parents), out, source_date_epoch=source_date_epoch,
                            reuse=reuse, record_entries=record_entries)


def _split_tail(tail: str) -> tuple[str, ...]:
    return tuple(t for t in tail.split(",") if t)
