"""Runs one timed command and returns its wall time and peak RSS.

Input: an argv, environment and log file. Output: a ``Run``. The RSS comes
from ``wait4``'s rusage, which on Linux covers the child and the descendants
it waited for; for a daemon client (docker) it is the client's alone.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_kib: int
    returncode: int


def run_timed(argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None,
              cwd: Path | None = None) -> Run:
    """Run ``argv`` to completion, appending its output to ``log``."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None, cwd=cwd,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # we reaped it ourselves
    return Run(elapsed, usage.ru_maxrss, proc.returncode)


def run_quiet(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """An untimed helper command (cleanup, probes); output captured."""
    return subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=dict(env) if env is not None else None, timeout=timeout)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def python_startup_seconds(python: str, reps: int = 5) -> float:
    """Median wall time of ``python -c pass``: the floor under any Python CLI."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return median(times)


def stat_walk_seconds(root: Path, reps: int = 3) -> tuple[float, int]:
    """Median time to lstat every file under ``root`` (warm dentry cache), and the count."""
    times, count = [], 0
    for _ in range(reps):
        start = time.perf_counter()
        count = 0
        for dirpath, _, files in os.walk(root):
            for name in files:
                os.lstat(os.path.join(dirpath, name))
                count += 1
        times.append(time.perf_counter() - start)
    return median(times), count
