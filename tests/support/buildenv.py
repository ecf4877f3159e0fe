"""Helpers for real-build tests: a store with busybox loaded, builds through the API or
the CLI, and reading files back out of built images.

Real builds need root (overlayfs, mounts) and an OCI runtime (runc or crun);
without them every test that asks for ``build_env`` is skipped with the reason.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def require_build_env() -> None:
    if os.geteuid() != 0:
        pytest.skip("real builds need root (overlayfs snapshots and runc): run as root")
    if not (shutil.which("runc") or shutil.which("crun")):
        pytest.skip("real builds need an OCI runtime: apt-get install runc")


def load_into(root: Path, archive: Path, *extra_names: str) -> str:
    """Load a docker-archive into the store at ``root``; returns the image id."""
    from layerkit.content.images import ImageIndex
    from layerkit.content.store import ContentStore
    from layerkit.exporter import load_archive

    store = ContentStore(root)
    with store.lease(), ImageIndex(root) as index:
        images = load_archive(archive, store)
        for image in images:
            for name in (*image.repo_tags, *extra_names):
                index.tag(name, image.config_digest)
    return images[0].config_digest


@dataclass
class Built:
    """A finished API build and the progress text it printed."""

    result: Any  # layerkit.worker.session.BuildResult
    progress: str

    def statuses(self) -> list[tuple[str, str]]:
        """(instruction, status) of every keyed step, in order."""
        return [(o.text, o.status) for o in self.result.solve.steps if o.number is not None]

    def ran(self) -> list[str]:
        return [t for t, s in self.statuses() if s == "ran"]

    def reason(self, needle: str) -> str:
        for o in self.result.solve.steps:
            if needle in o.text:
                return str(o.reason)
        raise AssertionError(f"no step {needle!r}")


@dataclass
class BuildEnv:
    """A store root with ``busybox:latest`` in it, and a scratch directory."""

    root: Path
    tmp: Path

    def context(self, files: Mapping[str, str], name: str = "ctx") -> Path:
        return write_files(self.tmp / name, files)

    def build(self, context: Path, **kw: Any) -> Built:
        import layerkit

        stream = io.StringIO()
        kw.setdefault("root", str(self.root))
        kw.setdefault("progress", "plain")
        result = layerkit.build(context, stream=stream, **kw)
        return Built(result, stream.getvalue())

    def plan(self, context: Path, **kw: Any) -> list[tuple[str, str]]:
        import layerkit

        kw.setdefault("root", str(self.root))
        p = layerkit.plan(context, **kw)
        return [(s.text, "cached" if s.action == "cached" else "ran") for s in p.steps]

    def rootfs(self, context: Path, **kw: Any) -> tuple[Built, Path]:
        """Build and export the final filesystem; returns the build and the directory."""
        dest = self.tmp / f"rootfs-{len(list(self.tmp.glob('rootfs-*')))}"
        outputs = (*kw.pop("outputs", ()), f"type=local,dest={dest}")
        return self.build(context, outputs=outputs, **kw), dest


def write_files(ctx: Path, files: Mapping[str, str]) -> Path:
    """Write ``files`` (relative path -> text) under ``ctx``; returns ``ctx``."""
    ctx.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = ctx / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ctx


def make_build_env(tmp_path: Path, busybox_archive: Path) -> BuildEnv:
    """For a test module's ``build_env`` fixture: skips without root/runc."""
    require_build_env()
    root = tmp_path / "store"
    load_into(root, busybox_archive, "busybox:latest")
    return BuildEnv(root, tmp_path)


def cli(*args: str, root: Path | None = None, env: Mapping[str, str] | None = None,
        check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m layerkit ARGS`` as a user would."""
    full_env = {**os.environ, **(env or {})}
    if root is not None:
        full_env["LAYERKIT_ROOT"] = str(root)
    proc = subprocess.run([sys.executable, "-m", "layerkit", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"layerkit {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc
