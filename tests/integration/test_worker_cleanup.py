"""worker/cleanup.py: what a killed build left under the store is removed by the
next build, and what a live process is using is left alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from layerkit.worker.cleanup import clean_leftovers, has_leftovers


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _tmpfs(target: Path) -> None:
    target.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(target)], check=True)


@pytest.fixture(autouse=True)
def _root_only() -> None:
    if os.geteuid() != 0:
        pytest.skip("mount cleanup needs root (mounts): run as root")


def test_a_dead_builds_overlay_probe_is_unmounted_and_removed(tmp_path: Path) -> None:
    dead = tmp_path / f".probe-{_dead_pid()}-abc"
    live = tmp_path / f".probe-{os.getpid()}-def"
    _tmpfs(dead / "m")
    _tmpfs(live / "m")
    try:
        assert has_leftovers(tmp_path)
        clean_leftovers(tmp_path)
        assert not dead.exists()
        assert os.path.ismount(live / "m")  # a live process's probe is not touched
    finally:
        for point in (dead / "m", live / "m"):
            if os.path.ismount(point):
                subprocess.run(["umount", str(point)], check=False)


def test_nothing_left_means_nothing_to_do(tmp_path: Path) -> None:
    (tmp_path / "snapshots").mkdir()
    assert not has_leftovers(tmp_path)
    clean_leftovers(tmp_path)
    assert (tmp_path / "snapshots").is_dir()
