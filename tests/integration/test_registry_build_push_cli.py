"""``layerkit push``, ``login`` and ``logout`` against the real registry: the pushed manifest
is what skopeo reads back, a Basic-auth registry needs the login, logout forgets it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from support.buildenv import cli, load_into
from support.registry import RunningRegistry


def _skopeo_digest(ref: str, tool: object, *creds: str) -> str:
    skopeo = tool("skopeo")  # type: ignore[operator]
    out = subprocess.run([str(skopeo), "inspect", "--tls-verify=false", *creds,
                          f"docker://{ref}"], capture_output=True, text=True, check=True)
    return str(json.loads(out.stdout)["Digest"])


def test_push_from_the_store_is_read_back_by_skopeo(
    tmp_path: Path, registry: RunningRegistry, busybox_docker_archive: Path, tool: object,
) -> None:
    root = tmp_path / "store"
    load_into(root, busybox_docker_archive)
    dest = registry.ref("pushed/busybox", "v1")
    proc = cli("push", "busybox:1.35", dest, root=root)
    digest = proc.stdout.strip()
    assert digest.startswith("sha256:")
    assert "uploaded" in proc.stderr
    assert _skopeo_digest(dest, tool) == digest
    # a second push uploads nothing: every blob is HEAD-checked first
    again = cli("push", "busybox:1.35", dest, root=root)
    assert again.stdout.strip() == digest
    assert "(0 uploaded" in again.stderr


def test_login_then_push_then_logout(
    tmp_path: Path, basic_auth_registry: RunningRegistry, busybox_docker_archive: Path,
    tool: object,
) -> None:
    root = tmp_path / "store"
    load_into(root, busybox_docker_archive)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "DOCKER_CONFIG": str(tmp_path / "dk")}
    host = basic_auth_registry.address
    dest = basic_auth_registry.ref("private/busybox", "v1")

    bad = subprocess.run(
        [".venv/bin/python", "-m", "layerkit", "login", "-u", "tester", "--password-stdin",
         host], input="wrong\n", capture_output=True, text=True, env={**_env(), **env},
        cwd=Path(__file__).resolve().parents[2])
    assert bad.returncode == 2
    good = subprocess.run(
        [".venv/bin/python", "-m", "layerkit", "login", "-u", "tester", "--password-stdin",
         host], input="s3cret-pass\n", capture_output=True, text=True,
        env={**_env(), **env}, cwd=Path(__file__).resolve().parents[2])
    assert good.returncode == 0, good.stderr
    auth = tmp_path / "cfg" / "layerkit" / "auth.json"
    assert oct(auth.stat().st_mode & 0o777) == "0o600"
    assert "s3cret-pass" not in good.stderr

    digest = cli("push", "busybox:1.35", dest, root=root, env=env).stdout.strip()
    assert _skopeo_digest(dest, tool, "--creds", "tester:s3cret-pass") == digest

    out = cli("logout", host, env=env)
    assert "Removing" in out.stderr
    assert cli("push", "busybox:1.35", dest, root=root, env=env, check=False).returncode != 0


def test_push_without_login_says_unauthorized(
    tmp_path: Path, basic_auth_registry: RunningRegistry, busybox_docker_archive: Path,
) -> None:
    root = tmp_path / "store"
    load_into(root, busybox_docker_archive)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "DOCKER_CONFIG": str(tmp_path / "dk")}
    dest = basic_auth_registry.ref("private/busybox", "v1")
    denied = cli("push", "busybox:1.35", dest, root=root, env=env, check=False)
    assert denied.returncode == 2
    assert "401 unauthorized" in denied.stderr
    assert "credentials tried" in denied.stderr


def _env() -> dict[str, str]:
    import os
    import sys

    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


@pytest.mark.parametrize("args", [["login", "--password-stdin", "-p", "x", "-u", "u", "h"]])
def test_login_flag_conflicts_are_clear(args: list[str]) -> None:
    proc = cli(*args, check=False)
    assert proc.returncode == 2
    assert "mutually exclusive" in proc.stderr
