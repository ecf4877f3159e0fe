"""``layerkit build`` when things go wrong: clear diagnostics (line and fix), concurrent
builds sharing one store, and a SIGKILLed build leaving nothing a later build trusts."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.buildenv import REPO, BuildEnv, cli, make_build_env


@pytest.fixture
def build_env(tmp_path: Path, busybox_docker_archive: Path) -> BuildEnv:
    return make_build_env(tmp_path, busybox_docker_archive)



def _fails(build_env: BuildEnv, *args: str, env: dict[str, str] | None = None) -> str:
    proc = cli("build", "--progress", "plain", *args, root=build_env.root, env=env,
               check=False)
    assert proc.returncode == 2, proc.stderr
    return proc.stderr


def test_failed_run_shows_command_exit_code_and_last_lines(build_env: BuildEnv) -> None:
    ctx = build_env.context({"Dockerfile": (
        "FROM busybox\nRUN echo prepared > /p\n"
        "RUN echo 'compiling'; echo 'error: it broke' >&2; exit 7\n")})
    err = _fails(build_env, str(ctx))
    assert "error: it broke" in err
    assert "exit code: 7" in err
    assert f"{ctx / 'Dockerfile'}:3" in err
    assert "hint:" in err
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo prepared > /p\nRUN true\n")
    meta = build_env.tmp / "m.json"
    cli("build", "--metadata-file", str(meta), str(ctx), root=build_env.root)
    steps = {s["instruction"]: s["status"] for s in json.loads(meta.read_text())["steps"]}
    assert steps["RUN echo prepared > /p"] == "cached"
    assert steps["RUN true"] == "ran"


@pytest.mark.parametrize(("dockerfile", "files", "expected"), [
    ("FROM busybox\nCOPY nothere.txt /x\n", {}, ("copy-source-missing", "Dockerfile:2")),
    ("FROM busybox\nCOPY ../outside /x\n", {}, ("outside the build context", "Dockerfile:2")),
    ("FROM no-such-image:1\n", {}, ("not in the local image store", "layerkit load",
                                    "Dockerfile:1")),
    ("FROM busybox\nRUN --mount=type=secret,id=tok,required cat /run/secrets/tok\n", {},
     ("secret 'tok' is required", "--secret id=tok")),
])
def test_diagnostics_name_the_line_and_the_fix(
    build_env: BuildEnv, dockerfile: str, files: dict[str, str], expected: tuple[str, ...],
) -> None:
    ctx = build_env.context({"Dockerfile": dockerfile, **files})
    err = _fails(build_env, str(ctx))
    for text in expected:
        assert text in err
    assert "hint:" in err


@pytest.mark.parametrize(("flags", "expected"), [
    (("--platform", "linux/s390x"), "only the host platform"),
    (("-o", "type=registry"), "needs name="),
    (("-o", "type=oci"), "needs dest="),
    (("--secret", "id=x,src=/no/such/file"), "does not exist"),
    (("-t", "Bad:Name"), "invalid image name"),
])
def test_bad_flags_are_clear_errors(build_env: BuildEnv, flags: tuple[str, ...],
                                    expected: str) -> None:
    ctx = build_env.context({"Dockerfile": "FROM busybox\n"})
    assert expected in _fails(build_env, *flags, str(ctx))


def test_missing_runtime_is_a_diagnostic(build_env: BuildEnv) -> None:
    ctx = build_env.context({"Dockerfile": "FROM busybox\nRUN true\n"})
    err = _fails(build_env, str(ctx), env={"LAYERKIT_RUNTIME": "/nonexistent/runc"})
    assert "Dockerfile:2" in err and "apt-get install runc" in err


def test_concurrent_builds_share_one_store(build_env: BuildEnv) -> None:
    procs = []
    for i in range(3):
        ctx = build_env.context({
            "Dockerfile": ("FROM busybox\nRUN echo common > /common\n"
                           f"COPY f /f\nRUN sleep 1; cat /f > /g{i}\n"),
            "f": f"file {i}\n",
        }, name=f"c{i}")
        env = {**os.environ, "LAYERKIT_ROOT": str(build_env.root)}
        procs.append((ctx, subprocess.Popen(
            [sys.executable, "-m", "layerkit", "build", "-t", f"c:{i}", "--progress", "plain",
             str(ctx)], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)))
    for _, proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    for i, (ctx, _) in enumerate(procs):
        meta = build_env.tmp / f"c{i}.json"
        out_dir = build_env.tmp / f"c{i}-fs"
        cli("build", "--metadata-file", str(meta), "-o", f"type=local,dest={out_dir}",
            str(ctx), root=build_env.root)
        assert {s["status"] for s in json.loads(meta.read_text())["steps"]} == {"cached"}
        assert (out_dir / f"g{i}").read_text() == f"file {i}\n"


def test_sigkill_during_run_leaves_nothing_trusted(build_env: BuildEnv) -> None:
    ctx = build_env.context({"Dockerfile": (
        "FROM busybox\n"
        "RUN --mount=type=cache,target=/c "
        "if [ ! -f /c/slept ]; then touch /c/slept; echo sleeping; sleep 120; fi; "
        "echo done > /done\n")})
    env = {**os.environ, "LAYERKIT_ROOT": str(build_env.root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "layerkit", "build", "--progress", "plain", str(ctx)],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    seen = ""
    # Wait for the RUN's own output ("#2 0.123 sleeping"), not the step's title line.
    while not re.search(r"^#\d+ [\d.]+ sleeping$", seen, re.M):
        line = proc.stderr.readline()
        assert line and time.monotonic() < deadline, f"the RUN never started:\n{seen}"
        seen += line
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    out_dir = build_env.tmp / "after-kill"
    meta = build_env.tmp / "after-kill.json"
    cli("build", "--metadata-file", str(meta), "-o", f"type=local,dest={out_dir}", str(ctx),
        root=build_env.root)
    steps = {s["instruction"].split()[0]: s for s in json.loads(meta.read_text())["steps"]}
    assert steps["RUN"]["status"] == "ran"  # the killed step was not recorded
    assert (out_dir / "done").read_text() == "done\n"
    # The killed build's container and mounts were cleaned up, nothing is left running.
    leftovers = subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout
    assert "layerkit-" + str(proc.pid) not in leftovers
    mounts = Path("/proc/self/mounts").read_text()
    assert str(build_env.root / "executor") not in mounts
