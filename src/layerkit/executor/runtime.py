"""Finds the OCI runtime and runs one container to completion with it.

Choice: ``$LAYERKIT_RUNTIME`` (a name or path) forces a runtime; otherwise
``crun`` then ``runc`` from PATH. A runtime found on PATH must pass a probe —
running ``true`` in a tiny container with our usual spec — once per process,
because ``crun --version`` can succeed where running a container fails (crun on
a cgroup-v1/hybrid host). A runtime failing the probe is skipped: crun falls
back to runc.

Running: ``<runtime> run --bundle DIR ID`` in the foreground, stdout and
stderr merged into one pipe read line by line; on timeout, KeyboardInterrupt
or our own SIGTERM the container is killed and deleted (``delete -f``).
Container ids are ``layerkit-<pid>-<starttime>-<random>``, so `reap_stale`
can tell containers left behind by a dead layerkit process.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from layerkit.errors import BuildError
from layerkit.executor.spec import SpecInputs, build_spec, nofile_limit
from layerkit.fastclass import dataclass

ENV = "LAYERKIT_RUNTIME"
ID_PREFIX = "layerkit-"
CANDIDATES = ("crun", "runc")

_lock = threading.Lock()
_chosen: Runtime | None = None


@dataclass(frozen=True)
class Runtime:
    name: str
    path: str

    def cmd(self, *args: str) -> list[str]:
        return [self.path, *args]


@dataclass(frozen=True)
class ContainerExit:
    exit_code: int
    tail: tuple[str, ...]
    timed_out: bool = False


def _missing() -> BuildError:
    return BuildError(
        "no OCI runtime found to execute RUN steps (looked for crun and runc)",
        hint="apt-get install runc (or crun), or set LAYERKIT_RUNTIME to its path",
        reference="runtime-missing",
    )


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return None
    # Field 22 (starttime), counted after the ")" closing the command name.
    return text.rsplit(")", 1)[1].split()[19]


def new_container_id() -> str:
    pid = os.getpid()
    return f"{ID_PREFIX}{pid}-{_start_time(pid)}-{secrets.token_hex(6)}"


def owner_alive(container_id: str) -> bool:
    """Whether the layerkit process that named ``container_id`` still runs."""
    parts = container_id[len(ID_PREFIX):].split("-")
    if len(parts) != 3 or not parts[0].isdigit():
        return True  # not ours to judge
    return _start_time(int(parts[0])) == parts[1]


def _probe_rootfs(rootfs: Path) -> list[dict[str, object]]:
    """Bind the host's program directories read-only so ``true`` can run."""
    mounts: list[dict[str, object]] = []
    for name in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            os.symlink(os.readlink(host), rootfs / name)
        elif host.is_dir():
            mounts.append({"destination": f"/{name}", "type": "bind", "source": str(host),
                           "options": ["rbind", "ro"]})
    return mounts


def probe(runtime: Runtime) -> bool:
    """Run ``true`` in a throwaway container; True when it exits 0."""
    true = shutil.which("true")
    if true is None:
        return True  # nothing to probe with; trust the runtime
    with tempfile.TemporaryDirectory(prefix="layerkit-probe-") as tmp:
        bundle = Path(tmp)
        rootfs = bundle / "rootfs"
        rootfs.mkdir()
        mounts = _probe_rootfs(rootfs)
        spec = build_spec(SpecInputs(rootfs=str(rootfs), args=(os.path.realpath(true),),
                                     mounts=tuple(mounts), nofile=nofile_limit()))
        (bundle / "config.json").write_text(json.dumps(spec))
        cid = new_container_id()
        try:
            proc = subprocess.run(runtime.cmd("run", "--bundle", str(bundle), cid),
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                                  check=False)
            ok = proc.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        delete(runtime, cid)
        return ok


# Where the probe's answer is kept: /run is a tmpfs, so the record lasts one boot.
RECORD = Path(os.environ.get("LAYERKIT_RUNTIME_RECORD", "/run/layerkit/runtime.json"))


def _conditions(found: list[tuple[str, str]]) -> str:
    """What the probe's answer depends on: the candidates (an upgrade replaces the
    binary), the kernel, and who runs them."""
    described: list[object] = [os.uname().release, os.geteuid()]
    for name, path in found:
        st = os.stat(path)
        described.append([name, path, st.st_ino, st.st_size, st.st_mtime_ns])
    return json.dumps(described)


def _remembered(found: list[tuple[str, str]]) -> Runtime | None:
    try:
        record = json.loads(RECORD.read_text())
        if record.get("conditions") == _conditions(found):
            name, path = record["runtime"]
            if (name, path) in found:
                return Runtime(name, path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # absent, unreadable or stale: probe again
    return None


def _remember(found: list[tuple[str, str]], runtime: Runtime) -> None:
    tmp = RECORD.with_name(f".{RECORD.name}.{os.getpid()}-{threading.get_ident()}")
    with contextlib.suppress(OSError):
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"conditions": _conditions(found),
                                   "runtime": [runtime.name, runtime.path]}))
        os.replace(tmp, RECORD)  # whole or not at all, for concurrent builds
    with contextlib.suppress(OSError):
        tmp.unlink()


def find_runtime() -> Runtime:
    """The runtime to use for this process.

    Each candidate is probed by running ``true`` in a container (crun is installed
    but broken on some hosts, e.g. cgroup hybrid mode): ~40 ms, so the answer is
    kept in :data:`RECORD` until the candidates, the kernel or the boot change."""
    global _chosen
    forced = os.environ.get(ENV, "").strip()
    if forced:
        path = shutil.which(forced)
        if path is None:
            raise BuildError(f"${ENV}={forced!r} is not an executable on PATH",
                             hint="apt-get install runc, or fix the variable",
                             reference="runtime-missing")
        return Runtime(Path(forced).name, path)
    with _lock:
        if _chosen is not None:
            return _chosen
        found = [(n, p) for n in CANDIDATES if (p := shutil.which(n)) is not None]
        if not found:
            raise _missing()
        remembered = _remembered(found)
        if remembered is not None:
            _chosen = remembered
            return remembered
        for name, path in found:
            runtime = Runtime(name, path)
            if probe(runtime):
                _chosen = runtime
                _remember(found, runtime)
                return runtime
        names = ", ".join(n for n, _ in found)
        raise BuildError(
            f"the OCI runtime ({names}) cannot run containers on this host",
            hint="run layerkit as root; check `runc run` works (cgroups, namespaces); "
            "apt-get install runc",
            reference="runtime-broken",
        )


def _state_left(runtime: Runtime, container_id: str) -> bool:
    """Whether the runtime may still hold state for the container: its default state
    directory for root (``/run/runc``, ``/run/crun``) has an entry, or we cannot tell."""
    state_root = Path("/run") / runtime.name
    if os.geteuid() != 0 or not state_root.is_dir():
        return True
    return (state_root / container_id).exists()


def delete(runtime: Runtime, container_id: str) -> None:
    """Force-delete a container; quiet when it is already gone."""
    subprocess.run(runtime.cmd("delete", "-f", container_id), stdin=subprocess.DEVNULL,
                   capture_output=True, check=False, timeout=60)


def _kill(runtime: Runtime, container_id: str, proc: subprocess.Popen[bytes]) -> None:
    subprocess.run(runtime.cmd("kill", container_id, "KILL"), stdin=subprocess.DEVNULL,
                   capture_output=True, check=False, timeout=60)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    delete(runtime, container_id)


class Terminated(BaseException):
    """Our SIGTERM, raised in the main thread so that cleanup code runs."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_cleanup() -> Iterator[None]:
    """Within the block SIGTERM raises `Terminated` (main thread only), so the
    ``finally`` clauses inside run; then the signal is delivered again with the
    caller's own disposition (by default: the process ends, status 143)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    previous = signal.SIG_DFL if old is None else old
    try:
        yield
    except Terminated:
        signal.signal(signal.SIGTERM, previous)
        signal.raise_signal(signal.SIGTERM)
        raise BuildError("interrupted by SIGTERM", reference="interrupted") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_container(
    runtime: Runtime,
    bundle: Path,
    container_id: str,
    on_output: Callable[[str], None],
    *,
    timeout: float | None = None,
    tail_lines: int = 50,
) -> ContainerExit:
    """Run the bundle in the foreground; output lines go to ``on_output``.
    Any exception (KeyboardInterrupt, `Terminated`...) kills and deletes the
    container before it propagates."""
    tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
    try:
        proc = subprocess.Popen(
            runtime.cmd("run", "--bundle", str(bundle), container_id),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C reaches us, and we clean up
        )
    except OSError as exc:
        raise BuildError(f"cannot start {runtime.name}: {exc}", hint="apt-get install runc",
                         reference="runtime-missing") from exc
    try:
        timed_out = _pump(proc, on_output, tail, timeout)
        if timed_out:
            _kill(runtime, container_id, proc)
            return ContainerExit(proc.returncode, tuple(tail), True)
        code = proc.wait()
        # `run` (not --detach/--keep) deletes the container once its process exits;
        # ask the runtime only if its state is somehow still there (~20 ms a call).
        if _state_left(runtime, container_id):
            delete(runtime, container_id)
        return ContainerExit(code, tuple(tail))
    except BaseException:
        _kill(runtime, container_id, proc)
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()


def _pump(
    proc: subprocess.Popen[bytes],
    on_output: Callable[[str], None],
    tail: collections.deque[str],
    timeout: float | None,
) -> bool:
    """Forward output lines until EOF; True when the deadline passed first."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = None if timeout is None else time.monotonic() + timeout
    pending = b""

    def emit(raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        tail.append(line)
        on_output(line)

    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not sel.select(wait):
                if deadline is not None and time.monotonic() >= deadline:
                    return True
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                emit(raw)
    if pending:
        emit(pending)
    return False


def list_containers(runtime: Runtime) -> list[dict[str, object]]:
    proc = subprocess.run(runtime.cmd("list", "--format", "json"), capture_output=True,
                          text=True, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    data = json.loads(proc.stdout)
    return [c for c in data or [] if isinstance(c, dict)]


def reap_stale(runtime: Runtime) -> list[str]:
    """Delete containers left by dead layerkit processes; returns their ids."""
    reaped = []
    for container in list_containers(runtime):
        cid = str(container.get("id", ""))
        if cid.startswith(ID_PREFIX) and not owner_alive(cid):
            delete(runtime, cid)
            reaped.append(cid)
    return reaped
