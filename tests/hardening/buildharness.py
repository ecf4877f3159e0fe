"""Running real ``layerkit build`` processes for the hardening suites: as a user
would (``python -m layerkit``), in their own process, so they can be killed.

Also: what a build may leave behind on the host (runtime containers, mounts,
stray processes), read the same way an operator would look for it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EPOCH = "1700000000"


def write_project(ctx: Path, files: Mapping[str, str]) -> Path:
    from support.buildenv import write_files

    return write_files(ctx, files)


def build_cmd(root: Path, ctx: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "layerkit", "build", "--root", str(root), "--progress",
            "plain", *args, str(ctx)]


def build_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH, "PYTHONUNBUFFERED": "1"}
    env.pop("LAYERKIT_ROOT", None)
    return {**env, **(extra or {})}


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def image_id(self) -> str:
        lines = self.stdout.strip().splitlines()
        return lines[-1].strip() if lines else ""


def run(cmd: Sequence[str], *, env: Mapping[str, str] | None = None,
        timeout: float = 600) -> Finished:
    start = time.monotonic()
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                          env=dict(env or build_env()), cwd=REPO, stdin=subprocess.DEVNULL)
    return Finished(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


def run_and_kill(cmd: Sequence[str], delay: float, workdir: Path, *,
                 env: Mapping[str, str] | None = None) -> Finished:
    """Start ``cmd`` and SIGKILL it (only it: its runtime children are left, as
    after an OOM kill) ``delay`` seconds later, unless it finished first."""
    out, err = workdir / "kill.out", workdir / "kill.err"
    start = time.monotonic()
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen(list(cmd), stdout=o, stderr=e, env=dict(env or build_env()),
                                cwd=REPO, stdin=subprocess.DEVNULL)
        try:
            code = proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            code = proc.wait()
    return Finished(code, out.read_text(errors="replace"), err.read_text(errors="replace"),
                    time.monotonic() - start)


def run_and_kill_after(cmd: Sequence[str], marker: str, delay: float, workdir: Path, *,
                       env: Mapping[str, str] | None = None) -> Finished:
    """Start ``cmd`` and SIGKILL it (only it) ``delay`` seconds after a line starting
    with ``marker`` shows on its stderr, unless it finished first."""
    return _run_watching(cmd, marker, delay, workdir, env=env)[0]


def time_phases(cmd: Sequence[str], marker: str, workdir: Path,
                watch: Callable[[], bool] = lambda: False, *,
                env: Mapping[str, str] | None = None) -> tuple[Finished, float, float | None]:
    """Run ``cmd`` to the end; return what it printed, the seconds from its start to
    the first stderr line starting with ``marker`` and to the first time ``watch()``
    held (None: never). The marker must show."""
    done, marked, watched = _run_watching(cmd, marker, math.inf, workdir, watch, env=env)
    if marked is None:
        raise AssertionError(f"no line starting with {marker!r}:\n{done.stderr}")
    return done, marked, watched


def _run_watching(cmd: Sequence[str], marker: str, delay: float, workdir: Path,
                  watch: Callable[[], bool] = lambda: False, *,
                  env: Mapping[str, str] | None = None,
                  timeout: float = 600) -> tuple[Finished, float | None, float | None]:
    out, err = workdir / "kill.out", workdir / "kill.err"
    start = time.monotonic()
    seen_at: float | None = None
    watched_at: float | None = None
    text = ""
    with open(out, "w") as o, open(err, "w") as e, open(err, errors="replace") as tail:
        proc = subprocess.Popen(list(cmd), stdout=o, stderr=e, env=dict(env or build_env()),
                                cwd=REPO, stdin=subprocess.DEVNULL)
        while proc.poll() is None:
            now = time.monotonic()
            if seen_at is None:
                text += tail.read()
                if text.startswith(marker) or "\n" + marker in text:
                    seen_at = now
            if watched_at is None and watch():
                watched_at = now
            if seen_at is not None and now >= seen_at + delay:
                os.kill(proc.pid, signal.SIGKILL)
                break
            if now - start > timeout:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                raise TimeoutError(f"{cmd} ran for more than {timeout}s")
            time.sleep(0.002)  # fine enough: a cached push lasts about 0.3 s
        code = proc.wait()
        end = time.monotonic()
        if seen_at is None and "\n" + marker in "\n" + text + tail.read():
            seen_at = end  # it showed and the process ended within one poll
        if watched_at is None and watch():
            watched_at = end
    finished = Finished(code, out.read_text(errors="replace"), err.read_text(errors="replace"),
                        end - start)
    return (finished, None if seen_at is None else seen_at - start,
            None if watched_at is None else watched_at - start)


def fsck_cli(root: Path, *args: str) -> tuple[int, dict[str, object]]:
    proc = run([sys.executable, "-m", "layerkit", "fsck", "--root", str(root), "--format",
                "json", *args])
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"fsck printed no JSON:\n{proc.stdout}\n{proc.stderr}") from None
    return proc.code, doc


# -- leftovers on the host ----------------------------------------------------------


def mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def stale_containers() -> list[str]:
    """layerkit containers the runtime still knows whose owning process is gone."""
    from layerkit.executor.runtime import ID_PREFIX, find_runtime, list_containers, owner_alive

    runtime = find_runtime()
    return [str(c.get("id")) for c in list_containers(runtime)
            if str(c.get("id", "")).startswith(ID_PREFIX)
            and not owner_alive(str(c.get("id")))]


def processes_with(marker: str) -> list[int]:
    """Pids whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and int(entry) != os.getpid():
            found.append(int(entry))
    return found
