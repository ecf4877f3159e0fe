"""Turns RUN ``--mount`` specs into OCI mount entries (plus env and cleanup).

Types, as in BuildKit:

* `CacheMount`: a persistent directory ``<root>/cachemounts/<sha256(id)>/data``.
  ``sharing`` is "shared" (flock LOCK_SH), "locked" (LOCK_EX, waits) or
  "private" (LOCK_EX if free, else a fresh throwaway directory).
* `BindMount`: a host directory or file, read-only unless ``readwrite``: then
  writes land in a throwaway overlay (or copy) and are discarded.
* `SecretMount`: the secret bytes in a file outside the rootfs (a tmpfs when
  one is available), bind-mounted read-only; and/or an env var.
* `TmpfsMount`: a fresh tmpfs.
* `SshMount`: the ssh-agent socket bound to ``/run/buildkit/ssh_agent.0`` with
  ``SSH_AUTH_SOCK`` set.

Every resource a mount takes (locks, overlay mounts, temp copies, secret
files) is released through the caller's ``ExitStack``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from layerkit.errors import BuildError
from layerkit.fastclass import dataclass, field
from layerkit.snapshot.driver import overlay_extra_options
from layerkit.snapshot.mount import Mount, mounted
from layerkit.snapshot.snapshotter import copy_tree

Sharing = Literal["shared", "private", "locked"]
SSH_TARGET = "/run/buildkit/ssh_agent.0"


@dataclass(frozen=True)
class CacheMount:
    target: str
    id: str = ""  # defaults to the target, as in BuildKit
    sharing: Sharing = "shared"
    readonly: bool = False
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    seed: Path | None = None  # initial contents (``from=``) on creation


@dataclass(frozen=True)
class BindMount:
    target: str
    source: Path
    readwrite: bool = False


@dataclass(frozen=True)
class SecretMount:
    id: str
    data: bytes = field(repr=False)
    target: str | None = None  # default /run/secrets/<id> unless env-only
    env: str | None = None
    mode: int = 0o400
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class TmpfsMount:
    target: str
    size: int | None = None  # bytes
    mode: int = 0o1777


@dataclass(frozen=True)
class SshMount:
    target: str = SSH_TARGET
    socket: Path | None = None  # default: $SSH_AUTH_SOCK
    id: str = "default"


MountSpec = CacheMount | BindMount | SecretMount | TmpfsMount | SshMount


@dataclass
class PreparedMounts:
    """OCI ``mounts`` entries and extra process env for the user's mounts."""

    oci: list[dict[str, Any]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def _bind(target: str, source: Path, readonly: bool, *extra: str) -> dict[str, Any]:
    return {"destination": target, "type": "bind", "source": str(source),
            "options": ["rbind", "ro" if readonly else "rw", *extra]}


def cache_dir(root: Path, cache_id: str) -> Path:
    return root / "cachemounts" / hashlib.sha256(cache_id.encode()).hexdigest()[:32]


def _fresh_dir(path: Path, spec: CacheMount) -> None:
    path.mkdir()
    if spec.seed is not None:
        copy_tree(spec.seed, path)
    os.chown(path, spec.uid, spec.gid)
    os.chmod(path, spec.mode)


def _lock(stack: contextlib.ExitStack, path: Path, how: int) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, how)
    except BlockingIOError:
        os.close(fd)
        return False
    stack.callback(os.close, fd)  # closing the fd drops the lock
    return True


def prepare_cache(spec: CacheMount, root: Path, scratch: Path,
                  stack: contextlib.ExitStack) -> dict[str, Any]:
    base = cache_dir(root, spec.id or spec.target)
    base.mkdir(parents=True, exist_ok=True)
    data = base / "data"
    if not data.exists():
        # Created aside and renamed, so a concurrent user never sees it half-made.
        staging = Path(tempfile.mkdtemp(prefix=".new-", dir=base))
        staging.rmdir()
        _fresh_dir(staging, spec)
        try:
            os.rename(staging, data)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    lock = base / "lock"
    if spec.sharing == "locked":
        _lock(stack, lock, fcntl.LOCK_EX)
    elif spec.sharing == "private":
        if not _lock(stack, lock, fcntl.LOCK_EX | fcntl.LOCK_NB):
            data = Path(tempfile.mkdtemp(prefix="cache-", dir=scratch))
            data.rmdir()
            _fresh_dir(data, spec)
            stack.callback(shutil.rmtree, data, True)
    else:
        _lock(stack, lock, fcntl.LOCK_SH)
    return _bind(spec.target, data, spec.readonly)


def prepare_bind(spec: BindMount, scratch: Path, stack: contextlib.ExitStack) -> dict[str, Any]:
    if not spec.source.exists():
        raise BuildError(
            f"bind mount source {spec.source} does not exist",
            hint="check the --mount=type=bind source= path (relative to the context or stage)",
            reference="run-mount",
        )
    if not spec.readwrite:
        return _bind(spec.target, spec.source, True)
    work = Path(tempfile.mkdtemp(prefix="bind-", dir=scratch))
    stack.callback(shutil.rmtree, work, True)
    if spec.source.is_dir():
        (work / "upper").mkdir()
        (work / "work").mkdir()
        overlay = Mount("overlay", "overlay", (
            *overlay_extra_options(), f"lowerdir={spec.source}",
            f"upperdir={work / 'upper'}", f"workdir={work / 'work'}"))
        try:
            merged = stack.enter_context(mounted(overlay, work / "merged"))
            return _bind(spec.target, merged, False)
        except BuildError:
            (work / "merged").rmdir()
        copy = work / "copy"
        copy.mkdir()
        copy_tree(spec.source, copy)
        return _bind(spec.target, copy, False)
    copy = work / spec.source.name
    shutil.copy2(spec.source, copy)
    return _bind(spec.target, copy, False)


def prepare_secret(spec: SecretMount, secrets_dir: Path, out: PreparedMounts) -> None:
    if spec.env:
        out.env[spec.env] = spec.data.decode("utf-8", "surrogateescape")
        if spec.target is None:
            return
    target = spec.target or f"/run/secrets/{spec.id}"
    name = hashlib.sha256(target.encode()).hexdigest()[:16]
    path = secrets_dir / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(spec.data)
    os.chown(path, spec.uid, spec.gid)
    os.chmod(path, spec.mode)
    out.oci.append(_bind(target, path, True, "nosuid", "nodev", "noexec"))


def prepare_ssh(spec: SshMount, out: PreparedMounts) -> None:
    sock = spec.socket or (Path(os.environ["SSH_AUTH_SOCK"])
                           if os.environ.get("SSH_AUTH_SOCK") else None)
    if sock is None or not sock.exists():
        raise BuildError(
            f"ssh mount {spec.id!r}: no ssh-agent socket"
            + (f" at {sock}" if sock is not None else " (SSH_AUTH_SOCK is not set)"),
            hint="start ssh-agent and ssh-add your key, or pass --ssh default=<socket path>",
            reference="run-mount",
        )
    out.oci.append(_bind(spec.target, sock, False))
    out.env["SSH_AUTH_SOCK"] = spec.target


def prepare_mounts(
    specs: list[MountSpec],
    *,
    root: Path,
    scratch: Path,
    secrets_dir: Path,
    stack: contextlib.ExitStack,
) -> PreparedMounts:
    """Prepare every spec; resources are released when ``stack`` closes."""
    out = PreparedMounts()
    for spec in specs:
        if isinstance(spec, CacheMount):
            out.oci.append(prepare_cache(spec, root, scratch, stack))
        elif isinstance(spec, BindMount):
            out.oci.append(prepare_bind(spec, scratch, stack))
        elif isinstance(spec, SecretMount):
            prepare_secret(spec, secrets_dir, out)
        elif isinstance(spec, TmpfsMount):
            opts = ["nosuid", "nodev", f"mode={spec.mode:o}"]
            if spec.size:
                opts.append(f"size={spec.size}")
            out.oci.append({"destination": spec.target, "type": "tmpfs",
                            "source": "tmpfs", "options": opts})
        else:
            prepare_ssh(spec, out)
    return out
