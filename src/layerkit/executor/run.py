"""Runs one RUN step: the single narrow interface the solver calls.

`run_step` mounts the step's snapshot, resolves the user, writes the bundle
(config.json, /etc files, secrets), prepares the ``--mount``s, runs the
container and then undoes everything in reverse order: the container is
deleted, mount stubs are removed from the rootfs, locks and temp copies are
released and the snapshot is unmounted. It holds no cache logic: a non-zero
exit is a `RunResult`, not an exception.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from layerkit.executor.etcfiles import write_etc_files
from layerkit.executor.mounts import MountSpec, prepare_mounts
from layerkit.executor.runtime import (
    Runtime,
    find_runtime,
    new_container_id,
    owner_alive,
    reap_stale,
    run_container,
    sigterm_cleanup,
)
from layerkit.executor.spec import (
    SpecInputs,
    build_spec,
    check_network,
    default_mounts,
    nofile_limit,
)
from layerkit.executor.stubs import MountStubs
from layerkit.executor.user import ResolvedUser, resolve_user
from layerkit.fastclass import dataclass, field
from layerkit.snapshot.mount import Mount, mounted, remove_tree
from layerkit.snapshot.scope import resolve_in_root


@dataclass(frozen=True)
class ProcessSpec:
    """What to run: argv, ``KEY=value`` env, working dir and USER string."""

    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: str = ""
    hostname: str = "buildkitsandbox"
    no_new_privileges: bool = False


@dataclass(frozen=True)
class ExecutorConfig:
    """Where the executor keeps state and how it runs containers."""

    root: Path  # the layerkit store root: cachemounts/ and executor/ live here
    runtime: Runtime | None = None  # None: find_runtime()
    timeout: float | None = None  # seconds
    tail_lines: int = 50


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    output_tail: tuple[str, ...] = field(default=())
    timed_out: bool = False
    container_id: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def make_workdir(rootfs: Path, cwd: str, user: ResolvedUser) -> None:
    """Create a missing working directory owned by the step's user, as
    BuildKit does (it stays in the layer: the step ran there)."""
    missing: list[Path] = []
    path = resolve_in_root(rootfs, cwd, follow_final=True)
    while not os.path.lexists(path) and path != rootfs:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        os.mkdir(directory, 0o755)
        os.chown(directory, user.uid, user.gid)


def _secrets_dir(container_id: str, bundle: Path) -> Path:
    """A private directory on a tmpfs when possible, so secrets never touch disk."""
    for base in ("/run", "/dev/shm"):
        try:
            path = Path(tempfile.mkdtemp(prefix=f"{container_id}-", dir=base))
        except OSError:
            continue
        return path
    path = bundle / "secrets"
    path.mkdir(mode=0o700)
    return path


def run_step(
    rootfs_mount: Mount,
    process: ProcessSpec,
    mounts: Sequence[MountSpec],
    network: str,
    on_output: Callable[[str], None],
    *,
    config: ExecutorConfig,
) -> RunResult:
    """Run ``process`` in the snapshot ``rootfs_mount`` (writes land in it)."""
    with sigterm_cleanup():
        return _run_step(rootfs_mount, process, mounts, network, on_output, config)


def _run_step(
    rootfs_mount: Mount,
    process: ProcessSpec,
    mounts: Sequence[MountSpec],
    network: str,
    on_output: Callable[[str], None],
    config: ExecutorConfig,
) -> RunResult:
    check_network(network)
    runtime = config.runtime or find_runtime()
    container_id = new_container_id()
    bundle = config.root / "executor" / container_id
    bundle.mkdir(parents=True, mode=0o700)
    with contextlib.ExitStack() as stack:
        stack.callback(remove_tree, bundle)
        rootfs = stack.enter_context(mounted(rootfs_mount, bundle / "rootfs"))
        secrets_dir = _secrets_dir(container_id, bundle)
        stack.callback(shutil.rmtree, secrets_dir, True)
        user = resolve_user(rootfs, process.user)
        make_workdir(rootfs, process.cwd, user)
        etc = write_etc_files(bundle / "etc", process.hostname, network)
        prepared = prepare_mounts(list(mounts), root=config.root, scratch=bundle,
                                  secrets_dir=secrets_dir, stack=stack)
        etc_mounts = [{"destination": target, "type": "bind", "source": str(path),
                       "options": ["rbind", "ro"]} for target, path in etc.items()]
        oci_mounts = [*etc_mounts, *prepared.oci]
        destinations = [m["destination"] for m in (*default_mounts(), *oci_mounts)]
        stubs = MountStubs(rootfs, destinations)
        stack.callback(stubs.cleanup)  # runs after the container is gone
        env = (*process.env, *(f"{k}={v}" for k, v in prepared.env.items()))
        spec = build_spec(SpecInputs(
            rootfs=str(rootfs), args=process.args, env=env, cwd=process.cwd, user=user,
            hostname=process.hostname, network=network, mounts=tuple(oci_mounts),
            no_new_privileges=process.no_new_privileges, nofile=nofile_limit(),
        ))
        (bundle / "config.json").write_text(json.dumps(spec, indent=2))
        done = run_container(runtime, bundle, container_id, on_output,
                             timeout=config.timeout, tail_lines=config.tail_lines)
        return RunResult(done.exit_code, done.tail, done.timed_out, container_id)
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack re-raises


# Where a dead build's leftovers can be: its bundle, its staging dirs for secrets and
# ssh sockets, and the runtime's container state (runc's and crun's default roots).
_STATE_DIRS = (Path("/run"), Path("/dev/shm"), Path("/run/runc"), Path("/run/crun"))


def anything_to_reap(config: ExecutorConfig) -> bool:
    """Cheap (a few directory listings): did a dead layerkit process leave anything
    :func:`reap` would remove? ``reap`` itself asks the runtime (``runc list``, ~20 ms)."""
    executor_dir = config.root / "executor"
    for directory in (executor_dir, *_STATE_DIRS):
        try:
            entries = os.scandir(directory)
        except OSError:
            continue
        with entries:
            for entry in entries:
                if not entry.name.startswith("layerkit-"):
                    continue
                owner = entry.name if directory in (executor_dir, *_STATE_DIRS[2:]) \
                    else entry.name.rsplit("-", 1)[0]
                if not owner_alive(owner):
                    return True
    return False


def reap(config: ExecutorConfig) -> list[str]:
    """Clean up after layerkit processes that died mid-step: their containers,
    rootfs mounts, bundles and secret directories. Returns what was removed."""
    runtime = config.runtime or find_runtime()
    removed = reap_stale(runtime)
    executor_dir = config.root / "executor"
    candidates = list(executor_dir.iterdir()) if executor_dir.is_dir() else []
    for base in ("/run", "/dev/shm"):
        with contextlib.suppress(OSError):
            candidates += [p for p in Path(base).iterdir() if p.name.startswith("layerkit-")]
    for path in candidates:
        name = path.name.rsplit("-", 1)[0] if path.parent != executor_dir else path.name
        if owner_alive(name) or not name.startswith("layerkit-"):
            continue
        if path.is_dir() and remove_tree(path):
            removed.append(str(path))
    return removed
