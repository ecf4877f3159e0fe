"""The executor's data and bookkeeping parts: the OCI config as data, USER
resolution, mount-stub cleanup, cache-mount locking, runtime choice and
fallback, and reaping of containers left by dead processes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_executor_support import GROUP, PASSWD, require_root, require_runc

from layerkit.errors import BuildError
from layerkit.executor import runtime as rt
from layerkit.executor.mounts import CacheMount, SecretMount, prepare_mounts
from layerkit.executor.spec import DEFAULT_CAPS, SpecInputs, build_spec
from layerkit.executor.stubs import MountStubs
from layerkit.executor.user import ResolvedUser, resolve_user


def test_spec_is_deterministic_data() -> None:
    inputs = SpecInputs(rootfs="/r", args=("sh", "-c", "true"), env=("A=1",), cwd="/w",
                        user=ResolvedUser(1, 2, (3,)), hostname="h")
    spec = build_spec(inputs)
    assert json.dumps(spec, sort_keys=True) == json.dumps(build_spec(inputs), sort_keys=True)
    assert spec["ociVersion"] == "1.0.2"
    proc = spec["process"]
    assert proc["user"] == {"uid": 1, "gid": 2, "additionalGids": [3]}
    assert proc["env"][0].startswith("PATH=") and proc["env"][1] == "A=1"
    assert proc["cwd"] == "/w" and proc["args"] == ["sh", "-c", "true"]
    assert set(proc["capabilities"]["bounding"]) == set(DEFAULT_CAPS)
    assert "CAP_SYS_ADMIN" not in proc["capabilities"]["effective"]
    assert spec["root"] == {"path": "/r", "readonly": False}
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests[:6] == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"]
    assert "ro" in spec["mounts"][5]["options"]
    assert "/proc/kcore" in spec["linux"]["maskedPaths"]
    assert "/proc/sys" in spec["linux"]["readonlyPaths"]


@pytest.mark.parametrize(("network", "has_netns"),
                         [("none", True), ("default", False), ("host", False)])
def test_network_namespace_only_for_none(network: str, has_netns: bool) -> None:
    spec = build_spec(SpecInputs(rootfs="/r", args=("x",), network=network))
    kinds = [n["type"] for n in spec["linux"]["namespaces"]]
    assert {"pid", "ipc", "uts", "mount"} <= set(kinds)
    assert ("network" in kinds) is has_netns


def test_unknown_network_is_a_build_error() -> None:
    with pytest.raises(BuildError) as info:
        build_spec(SpecInputs(rootfs="/r", args=("x",), network="bridge"))
    assert info.value.hint and "none" in info.value.hint


def test_existing_path_is_kept() -> None:
    spec = build_spec(SpecInputs(rootfs="/r", args=("x",), env=("PATH=/only",)))
    assert spec["process"]["env"] == ["PATH=/only"]


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


@pytest.mark.parametrize(("user", "expected"), [
    ("", ResolvedUser(0, 0)),
    ("root", ResolvedUser(0, 0)),
    ("app", ResolvedUser(1234, 2345, (3456,))),
    ("1234", ResolvedUser(1234, 2345, (3456,))),
    ("app:extra", ResolvedUser(1234, 3456)),
    ("app:77", ResolvedUser(1234, 77)),
    ("4000", ResolvedUser(4000, 0)),
    ("4000:4001", ResolvedUser(4000, 4001)),
])
def test_resolve_user(rootfs: Path, user: str, expected: ResolvedUser) -> None:
    assert resolve_user(rootfs, user) == expected


@pytest.mark.parametrize("user", ["ghost", "app:nogroup"])
def test_unknown_user_or_group(rootfs: Path, user: str) -> None:
    with pytest.raises(BuildError) as info:
        resolve_user(rootfs, user)
    assert user.split(":")[-1] in info.value.message


def test_passwd_symlink_out_of_rootfs_is_not_followed(rootfs: Path, tmp_path: Path) -> None:
    (tmp_path / "host-passwd").write_text("evil:x:0:0::/:/bin/sh\n")
    (rootfs / "etc" / "passwd").unlink()
    (rootfs / "etc" / "passwd").symlink_to(tmp_path / "host-passwd")
    with pytest.raises(BuildError):
        resolve_user(rootfs, "evil")


def test_mount_stubs_are_removed_and_parent_mtime_restored(rootfs: Path) -> None:
    os.utime(rootfs / "etc", ns=(1_000_000_000, 1_000_000_000))
    stubs = MountStubs(rootfs, ["/proc", "/etc/hosts", "/deep/er/cache", "/etc/passwd"])
    # What the runtime would create as mount points, plus a file the step wrote.
    (rootfs / "proc").mkdir()
    (rootfs / "etc" / "hosts").touch()
    (rootfs / "deep" / "er" / "cache").mkdir(parents=True)
    (rootfs / "deep" / "er" / "kept").write_text("written by the step")
    removed = stubs.cleanup()
    assert not (rootfs / "proc").exists()
    assert not (rootfs / "etc" / "hosts").exists()
    assert (rootfs / "etc" / "passwd").exists()  # existed before: never a stub
    assert not (rootfs / "deep" / "er" / "cache").exists()
    assert (rootfs / "deep" / "er" / "kept").exists()
    assert os.stat(rootfs / "etc").st_mtime_ns == 1_000_000_000
    assert rootfs / "proc" in removed


def test_cache_sharing_modes(tmp_path: Path) -> None:
    require_root()
    root, scratch, secrets = tmp_path / "root", tmp_path / "scratch", tmp_path / "secrets"
    scratch.mkdir()
    secrets.mkdir()

    def source(spec: CacheMount) -> tuple[contextlib.ExitStack, str]:
        stack = contextlib.ExitStack()
        out = prepare_mounts([spec], root=root, scratch=scratch, secrets_dir=secrets,
                             stack=stack)
        return stack, out.oci[0]["source"]

    first, main = source(CacheMount("/c", id="x", sharing="private"))
    second, other = source(CacheMount("/c", id="x", sharing="private"))
    assert other != main and main.endswith("/data")  # busy: a fresh private dir
    second.close()
    assert not Path(other).exists()
    first.close()
    third, again = source(CacheMount("/c", id="x", sharing="private"))
    assert again == main
    third.close()
    shared_a, a = source(CacheMount("/c", id="x"))
    shared_b, b = source(CacheMount("/c", id="x"))
    assert a == b == main
    shared_a.close()
    shared_b.close()


def test_secret_file_mode_and_owner(tmp_path: Path) -> None:
    require_root()
    with contextlib.ExitStack() as stack:
        out = prepare_mounts([SecretMount("s", b"v", uid=5, gid=6, mode=0o440)],
                             root=tmp_path, scratch=tmp_path, secrets_dir=tmp_path,
                             stack=stack)
        entry = out.oci[0]
        st = os.stat(entry["source"])
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (5, 6, 0o440)
        assert entry["destination"] == "/run/secrets/s" and "ro" in entry["options"]


@pytest.fixture
def fresh_choice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(rt, "_chosen", None)
    monkeypatch.setattr(rt, "RECORD", tmp_path / "run" / "runtime.json")
    monkeypatch.delenv(rt.ENV, raising=False)


def test_broken_crun_falls_back_to_runc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_choice: None
) -> None:
    require_runc()
    fake = tmp_path / "bin"
    fake.mkdir()
    # Like crun on a cgroup-v1 host: --version works, running a container fails.
    (fake / "crun").write_text('#!/bin/sh\n[ "$1" = --version ] && exit 0\n'
                               'echo "crun: cannot set up cgroups" >&2\nexit 1\n')
    (fake / "crun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    chosen = rt.find_runtime()
    assert chosen.name == "runc"
    assert rt.find_runtime() is chosen  # probed once per process


def test_the_probe_answer_is_kept_until_a_candidate_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_choice: None
) -> None:
    require_runc()
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "crun").write_text('#!/bin/sh\necho "crun: cannot set up cgroups" >&2\nexit 1\n')
    (fake / "crun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    probed: list[str] = []
    real_probe = rt.probe

    def counting(runtime: rt.Runtime) -> bool:
        probed.append(runtime.name)
        return real_probe(runtime)

    monkeypatch.setattr(rt, "probe", counting)
    assert rt.find_runtime().name == "runc" and probed == ["crun", "runc"]
    monkeypatch.setattr(rt, "_chosen", None)  # another process, same boot
    assert rt.find_runtime().name == "runc" and probed == ["crun", "runc"]
    # crun upgraded (a new binary): probe again; it works now, so it is chosen.
    (fake / "crun").unlink()
    (fake / "crun").symlink_to(shutil.which("runc") or "/usr/bin/runc")
    monkeypatch.setattr(rt, "_chosen", None)
    assert rt.find_runtime().name == "crun" and probed == ["crun", "runc", "crun"]
    # A damaged record is never trusted.
    rt.RECORD.write_text('{"conditions": "x", "runtime": ["nope", "/nope"]}')
    monkeypatch.setattr(rt, "_chosen", None)
    assert rt.find_runtime().name == "crun" and len(probed) == 4


def test_missing_runtime_hints_at_apt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_choice: None
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BuildError) as info:
        rt.find_runtime()
    assert info.value.hint and "apt-get install runc" in info.value.hint


def test_forced_runtime_must_exist(monkeypatch: pytest.MonkeyPatch, fresh_choice: None) -> None:
    monkeypatch.setenv(rt.ENV, "no-such-runtime-xyz")
    with pytest.raises(BuildError):
        rt.find_runtime()


def test_container_ids_are_unique_and_owned() -> None:
    ids = {rt.new_container_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(rt.owner_alive(i) for i in ids)
    assert not rt.owner_alive("layerkit-999999999-1-abcdef")


def test_reap_deletes_containers_of_dead_processes(tmp_path: Path) -> None:
    require_runc()
    runtime = rt.find_runtime()
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    mounts = rt._probe_rootfs(bundle / "rootfs")
    sleep = os.path.realpath(subprocess.run(["sh", "-c", "command -v sleep"],
                                            capture_output=True, text=True).stdout.strip())
    spec = build_spec(SpecInputs(rootfs=str(bundle / "rootfs"), args=(sleep, "300"),
                                 mounts=tuple(mounts), nofile=1024))
    (bundle / "config.json").write_text(json.dumps(spec))
    stale = "layerkit-999999999-1-deadbeef0000"
    subprocess.run(runtime.cmd("run", "--detach", "--bundle", str(bundle), stale),
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    try:
        assert stale in [c.get("id") for c in rt.list_containers(runtime)]
        assert stale in rt.reap_stale(runtime)
        assert stale not in [c.get("id") for c in rt.list_containers(runtime)]
    finally:
        rt.delete(runtime, stale)


def test_reap_removes_bundles_and_mounts_of_dead_processes(tmp_path: Path) -> None:
    require_runc()
    from layerkit.executor import ExecutorConfig, reap
    from layerkit.snapshot.mount import Mount, mount, mount_points_under

    stale = tmp_path / "executor" / "layerkit-999999999-1-abcdef000000"
    (stale / "rootfs").mkdir(parents=True)
    source = tmp_path / "src"
    source.mkdir()
    mount(Mount("bind", str(source), ("rbind",)), stale / "rootfs")
    live = tmp_path / "executor" / rt.new_container_id()
    live.mkdir()
    removed = reap(ExecutorConfig(root=tmp_path))
    assert str(stale) in removed
    assert not stale.exists() and source.is_dir()
    assert mount_points_under(tmp_path) == []
    assert live.exists()


def test_public_interfaces_are_pinned() -> None:
    import layerkit.executor as executor
    import layerkit.snapshot as snapshot

    assert sorted(executor.__all__) == [
        "BindMount", "CacheMount", "ExecutorConfig", "MountSpec", "ProcessSpec",
        "ResolvedUser", "RunResult", "Runtime", "SecretMount", "SpecInputs", "SshMount",
        "TmpfsMount", "build_spec", "find_runtime", "reap", "resolve_user", "run_step",
    ]
    assert sorted(snapshot.__all__) == [
        "ApplyResult", "DiffResult", "Driver", "Mount", "Snapshotter", "apply_layer",
        "choose_driver", "diff_naive", "diff_overlay", "mount", "mounted", "unmount",
    ]
    assert all(hasattr(executor, n) for n in executor.__all__)
    assert all(hasattr(snapshot, n) for n in snapshot.__all__)
