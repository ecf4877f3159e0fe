"""RUN steps through a real OCI runtime (runc here) on overlay snapshots of a
busybox rootfs: diffs, user/env/cwd, network, every --mount type, stray
processes, failures, timeouts and cleanup. Needs root and runc."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_executor_support import busybox_layer, layer_names, require_runc

from layerkit.errors import BuildError
from layerkit.executor import (
    BindMount,
    CacheMount,
    ExecutorConfig,
    MountSpec,
    ProcessSpec,
    RunResult,
    SecretMount,
    SshMount,
    TmpfsMount,
    find_runtime,
    run_step,
)
from layerkit.executor.runtime import list_containers
from layerkit.snapshot import Snapshotter

_keys = itertools.count()
STUB_NAMES = {"proc", "dev", "sys", "etc/hosts", "etc/resolv.conf", "etc/hostname", "run"}


@dataclass
class Env:
    root: Path
    snap: Snapshotter
    base: str
    config: ExecutorConfig


@dataclass
class Step:
    result: RunResult
    lines: list[str]
    snapshot: str
    layer: dict[str, object]


def make_env(root: Path, driver: str) -> Env:
    require_runc()
    snap = Snapshotter(root, driver=driver)  # type: ignore[arg-type]
    snap.prepare("base")
    snap.apply("base", busybox_layer(root.parent / f"base-{driver}.tar"))
    return Env(root, snap, snap.commit("base"), ExecutorConfig(root=root, timeout=60))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return make_env(tmp_path_factory.mktemp("exec") / "root", "overlayfs")


def run(env: Env, script: str, *, parent: str | None = None, mounts: Sequence[MountSpec] = (),
        network: str = "default", user: str = "", envs: tuple[str, ...] = (), cwd: str = "/",
        config: ExecutorConfig | None = None) -> Step:
    key = f"step{next(_keys)}"
    mount = env.snap.prepare(key, [parent or env.base])
    lines: list[str] = []
    result = run_step(mount, ProcessSpec(("/bin/sh", "-c", script), envs, cwd, user),
                      list(mounts), network, lines.append, config=config or env.config)
    sid = env.snap.commit(key)
    diff = env.snap.diff(sid, env.root / f"{key}.tar")
    return Step(result, lines, sid, dict(layer_names(diff.path)))


def test_basic_step_diff_has_changes_and_no_mount_stubs(env: Env) -> None:
    step = run(env, "echo hi > /a; rm /etc/x; mkdir /d")
    assert step.result.exit_code == 0, step.lines
    assert {"a", "etc/.wh.x", "d"} <= set(step.layer)
    assert not STUB_NAMES & set(step.layer)
    assert (env.snap.fs(step.snapshot) / "a").read_text() == "hi\n"
    # A second step stacked on the first sees its files and its deletion.
    second = run(env, "cat /a && test ! -e /etc/x && echo ok", parent=step.snapshot)
    assert second.result.ok and second.lines == ["hi", "ok"]


def test_opaque_directory_from_rm_and_mkdir(env: Env) -> None:
    step = run(env, "rm -rf /var/lib/data && mkdir /var/lib/data && touch /var/lib/data/n")
    assert step.result.ok, step.lines
    assert "var/lib/data/.wh..wh..opq" in step.layer
    assert "var/lib/data/n" in step.layer


def test_user_env_and_cwd(env: Env) -> None:
    step = run(env, 'id -u; id -g; id -G; pwd; echo "$FOO"', user="app",
               envs=("FOO=bar baz",), cwd="/tmp")
    assert step.lines == ["1234", "2345", "2345 3456", "/tmp", "bar baz"]
    numeric = run(env, "id -u; id -g", user="4000:5")
    assert numeric.lines == ["4000", "5"]
    with pytest.raises(BuildError) as info:
        run(env, "true", user="nobody-here")
    assert "nobody-here" in info.value.message


def test_missing_workdir_is_created_for_the_user_and_hostname_is_set(env: Env) -> None:
    step = run(env, "pwd; stat -c '%u %g' .; hostname; cat /etc/hostname", user="app",
               cwd="/srv/app")
    assert step.lines == ["/srv/app", "1234 2345", "buildkitsandbox", "buildkitsandbox"]
    assert {"srv", "srv/app"} <= set(step.layer)


def test_network_none_has_only_loopback(env: Env) -> None:
    none = run(env, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", network="none")
    assert none.lines == ["lo"]
    host_ifaces = {line.split(":")[0].strip()
                   for line in Path("/proc/net/dev").read_text().splitlines()[2:]}
    shared = run(env, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")
    assert set(shared.lines) == host_ifaces


def test_cache_mount_persists_and_stays_out_of_the_layer(env: Env) -> None:
    cache = CacheMount("/root/.cache/pkg", id="pkgcache", uid=1234, gid=2345, mode=0o750)
    first = run(env, "stat -c '%u %g %a' /root/.cache/pkg; echo one > /root/.cache/pkg/f",
                mounts=[cache])
    assert first.result.ok, first.lines
    assert first.lines == ["1234 2345 750"]
    assert not any(name.startswith("root") for name in first.layer)
    second = run(env, "cat /root/.cache/pkg/f", mounts=[cache])
    assert second.lines == ["one"]
    locked = run(env, "cat /root/.cache/pkg/f", mounts=[
        CacheMount("/root/.cache/pkg", id="pkgcache", sharing="locked", readonly=True)])
    assert locked.lines == ["one"]


def test_secret_mount_and_secret_env(env: Env) -> None:
    step = run(env, 'cat /run/secrets/tok; echo; stat -c %a /run/secrets/tok; echo "$TOKEN"',
               mounts=[SecretMount("tok", b"s3cret"),
                       SecretMount("e", b"from-env", env="TOKEN")])
    assert step.lines == ["s3cret", "400", "from-env"]
    assert not any(name.startswith("run") for name in step.layer)
    assert not any(p.name.startswith(step.result.container_id) for p in Path("/run").iterdir())


def test_tmpfs_mount(env: Env) -> None:
    step = run(env, "echo x > /scratch/f && grep ' /scratch ' /proc/mounts | cut -d' ' -f3",
               mounts=[TmpfsMount("/scratch", size=1 << 20)])
    assert step.lines == ["tmpfs"]
    assert not any(name.startswith("scratch") for name in step.layer)


def test_bind_mount_read_only_and_throwaway_read_write(env: Env, tmp_path: Path) -> None:
    src = tmp_path / "ctx"
    src.mkdir()
    (src / "file").write_text("from context\n")
    ro = run(env, "cat /ctx/file; touch /ctx/new", mounts=[BindMount("/ctx", src)])
    assert ro.result.exit_code != 0
    # stdout and stderr arrive on separate pipes, so only membership is certain.
    assert "from context" in ro.lines
    assert "Read-only file system" in " ".join(ro.lines)
    rw = run(env, "touch /ctx/new && echo changed > /ctx/file && cat /ctx/file",
             mounts=[BindMount("/ctx", src, readwrite=True)])
    assert rw.result.ok and rw.lines == ["changed"]
    assert sorted(os.listdir(src)) == ["file"]
    assert (src / "file").read_text() == "from context\n"
    assert not any(name.startswith("ctx") for name in rw.layer)


def test_ssh_agent_socket_is_bound_and_exported(env: Env, tmp_path: Path) -> None:
    import socket

    path = tmp_path / "agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    try:
        step = run(env, 'test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK"',
                   mounts=[SshMount(socket=path)])
    finally:
        server.close()
    assert step.lines == ["/run/buildkit/ssh_agent.0"]
    assert not any(name.startswith("run") for name in step.layer)


def _sleepers(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in cmd:
            found.append(int(pid))
    return found


def test_background_process_neither_blocks_nor_survives(env: Env) -> None:
    started = time.monotonic()
    step = run(env, "sleep 987654 & echo started")
    assert step.result.ok and step.lines == ["started"]
    assert time.monotonic() - started < 30
    assert _sleepers("987654") == []


def test_failing_command_gives_exit_code_and_last_lines(env: Env) -> None:
    step = run(env, "for i in 1 2 3 4 5; do echo line$i; done; echo err >&2; exit 3",
               config=ExecutorConfig(root=env.root, tail_lines=3))
    assert step.result.exit_code == 3 and not step.result.ok
    # runc relays stdout and stderr separately: their relative order is not kept.
    assert sorted(step.lines) == ["err", "line1", "line2", "line3", "line4", "line5"]
    assert step.result.output_tail == tuple(step.lines[-3:])
    assert [x for x in step.lines if x != "err"] == [f"line{i}" for i in range(1, 6)]


def test_timeout_kills_and_deletes_the_container(env: Env) -> None:
    started = time.monotonic()
    step = run(env, "echo begin; sleep 600", config=ExecutorConfig(root=env.root, timeout=2))
    assert step.result.timed_out and not step.result.ok
    assert time.monotonic() - started < 30
    ids = [c.get("id") for c in list_containers(find_runtime())]
    assert step.result.container_id not in ids
    assert not (env.root / "executor" / step.result.container_id).exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_clean_up_the_container(env: Env, signum: int) -> None:
    key = f"sig{signum}"
    env.snap.prepare(key, [env.base])
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from layerkit.snapshot import Snapshotter
        from layerkit.executor import run_step, ProcessSpec, ExecutorConfig
        snap = Snapshotter(Path({str(env.root)!r}), driver="overlayfs")
        m = snap.prepare("child{signum}", [{env.base!r}])
        def out(line):
            print(line, flush=True)
        run_step(m, ProcessSpec(("/bin/sh", "-c", "echo ready; sleep 600")), [], "default",
                 out, config=ExecutorConfig(root=Path({str(env.root)!r})))
    """)
    env.snap.remove(key)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    cids = [str(c["id"]) for c in list_containers(find_runtime())
            if str(c.get("id", "")).startswith(f"layerkit-{proc.pid}-")]
    assert len(cids) == 1
    proc.send_signal(signum)
    assert proc.wait(timeout=60) == -signum
    ids = [c.get("id") for c in list_containers(find_runtime())]
    assert cids[0] not in ids
    assert not (env.root / "executor" / cids[0]).exists()


def test_naive_snapshotter_basic_step(tmp_path: Path) -> None:
    naive = make_env(tmp_path / "root", "naive")
    step = run(naive, "echo hi > /a; rm /etc/x; mkdir /d")
    assert step.result.ok, step.lines
    assert {"a", "etc/.wh.x", "d"} <= set(step.layer)
    assert not STUB_NAMES & set(step.layer)
    assert "bin/busybox" not in step.layer
