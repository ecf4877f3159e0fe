"""Hostile build contexts and Dockerfiles, each as BuildKit's fixed versions behave.

A host directory beside the context holds a marker file. Every case tries to
read it into the image, or to write next to it, through: symlinks in the
context, ``..`` sources, bind mounts, a cache mount whose ``source=`` subpath
a concurrent build swaps for a symlink (CVE-2024-23651), WORKDIR and COPY
through a symlink to a host path, ``WORKDIR /proc/self/fd/N``
(CVE-2024-21626), and RUN steps that leave processes or hold descriptors.

Each case must be refused with a clear error or neutralised: the marker
never appears in any exported file, the host directory is unchanged, and no
process outlives its build.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from buildharness import Finished, build_cmd, processes_with, run, write_project
from figures import bump
from hostile import tree_state

MARK = "host-marker-" + secrets.token_hex(8)


@dataclass
class Env:
    root: Path
    tmp: Path
    host: Path  # the host directory the cases aim at

    def build(self, name: str, dockerfile: str, files: dict[str, str] | None = None,
              links: dict[str, str] | None = None, *args: str) -> tuple[Finished, Path]:
        ctx = write_project(self.tmp / f"ctx-{name}", {"Dockerfile": dockerfile,
                                                       **(files or {})})
        for rel, target in (links or {}).items():
            os.symlink(target.replace("{HOST}", str(self.host)), ctx / rel)
        dest = self.tmp / f"rootfs-{name}"
        done = run(build_cmd(self.root, ctx, "-o", f"type=local,dest={dest}", *args),
                   timeout=300)
        return done, dest


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, busybox_docker_archive: Path) -> Iterator[Env]:
    from support.buildenv import load_into, require_build_env

    require_build_env()
    tmp = tmp_path_factory.mktemp("hostile-df")
    host = tmp / "host-secret"
    host.mkdir()
    (host / "marker.txt").write_text(MARK + "\n")
    root = tmp / "store"
    load_into(root, busybox_docker_archive, "busybox:latest")
    yield Env(root, tmp, host)


def _leaked(dest: Path) -> list[str]:
    hits = []
    for dirpath, _dirs, names in os.walk(dest):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink() and MARK.encode() in path.read_bytes():
                hits.append(str(path.relative_to(dest)))
    return hits


def _judge(env: Env, name: str, done: Finished, dest: Path, before: object) -> str:
    """Refused (clear error) or neutralised (built, nothing leaked); never a leak."""
    assert tree_state(env.host) == before, f"{name}: the host directory changed"
    combined = done.stdout + done.stderr
    assert MARK not in combined, f"{name}: the host marker reached the build output"
    if done.code != 0:
        assert done.code == 2 and "error:" in done.stderr and "hint:" in done.stderr, \
            f"{name}: not a clear diagnostic:\n{done.stderr[-1500:]}"
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        bump("hostile dockerfiles refused")
        return "refused"
    assert not _leaked(dest), f"{name}: marker copied into the image: {_leaked(dest)}"
    bump("hostile dockerfiles neutralised")
    return "neutralised"


CASES: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {
    "copy-abs-symlink": ("FROM busybox\nCOPY abs /out/abs\n", {}, {"abs": "{HOST}/marker.txt"}),
    "copy-rel-symlink": ("FROM busybox\nCOPY rel /out/rel\n", {},
                         {"rel": "../host-secret/marker.txt"}),
    "copy-dir-with-links": ("FROM busybox\nCOPY . /out/\n", {"ok.txt": "ok\n"},
                            {"abs": "{HOST}/marker.txt", "dir": "{HOST}"}),
    "copy-through-dir-link": ("FROM busybox\nCOPY dir/marker.txt /out/\n", {},
                              {"dir": "{HOST}"}),
    "copy-dotdot": ("FROM busybox\nCOPY ../host-secret/marker.txt /out/\n", {}, {}),
    "add-dotdot": ("FROM busybox\nADD ../host-secret/marker.txt /out/\n", {}, {}),
    "copy-dotdot-wildcard": ("FROM busybox\nCOPY ../host-*/* /out/\n", {}, {}),
    "bind-dotdot": ("FROM busybox\nRUN --mount=type=bind,source=../host-secret,target=/m "
                    "cat /m/marker.txt > /leak || true\n", {}, {}),
    "bind-abs-link": ("FROM busybox\nRUN --mount=type=bind,source=hostdir,target=/m "
                      "cat /m/marker.txt > /leak || true\n", {}, {"hostdir": "{HOST}"}),
    "bind-rw-write": ("FROM busybox\nRUN --mount=type=bind,source=hostdir,target=/m,rw "
                      "sh -c 'echo pwned > /m/pwned; echo pwned > /m/marker.txt' || true\n",
                      {}, {"hostdir": "{HOST}"}),
    "workdir-through-symlink": ("FROM busybox\nRUN ln -s {HOST} /w\nWORKDIR /w/newdir\n"
                                "RUN echo hi > here.txt\n", {}, {}),
    "copy-dest-through-symlink": ("FROM busybox\nRUN ln -s {HOST} /d\nCOPY f.txt /d/\n"
                                  "COPY f.txt /d/marker.txt\n", {"f.txt": "overwrite\n"}, {}),
    "proc-self-fd-workdir": ("FROM busybox\nWORKDIR /proc/self/fd/7\n"
                             "RUN cat ../../../../../../../..{HOST}/marker.txt > /leak "
                             "2>/dev/null; true\n", {}, {}),
    "proc-self-fd-workdir-8": ("FROM busybox\nWORKDIR /proc/self/fd/8\n"
                               "RUN ls -la . > /listing.txt 2>&1; cat ../../../..{HOST}/marker.txt"
                               " > /leak 2>/dev/null; true\n", {}, {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_dockerfile(env: Env, name: str) -> None:
    dockerfile, files, links = CASES[name]
    before = tree_state(env.host)
    done, dest = env.build(name, dockerfile.replace("{HOST}", str(env.host)), files, links)
    outcome = _judge(env, name, done, dest, before)
    print(f"{name}: {outcome}: {done.stderr.strip().splitlines()[-3:] if done.code else ''}")
    if name in ("copy-dotdot", "add-dotdot"):
        assert outcome == "refused" and "outside" in done.stderr


def test_container_sees_no_host_descriptors(env: Env) -> None:
    """No descriptor of the builder (the store, the bundle, a lock) reaches the RUN."""
    df = ("FROM busybox\nRUN for f in /proc/self/fd/*; do echo \"$f $(readlink $f)\"; done "
          "> /fds.txt\n")
    done, dest = env.build("fds", df)
    assert done.code == 0, done.stderr
    lines = (dest / "fds.txt").read_text().splitlines()
    assert lines
    for line in lines:
        target = line.split(" ", 1)[1] if " " in line else ""
        assert not target.startswith(str(env.root)) and "layerkit" not in target, line
        assert not target.startswith(("/var/lib", "/tmp", "/work")), line
    bump("hostile dockerfiles neutralised")


def test_run_leaving_processes_does_not_hang_or_leak(env: Env) -> None:
    marker = str(90000 + secrets.randbelow(9000))
    df = (f"FROM busybox\nRUN sh -c 'sleep {marker} & echo started'\n"
          f"RUN sh -c 'exec 3>/tmp/held; (sleep {int(marker) + 1} <&3 &) ; echo held'\n")
    done, _ = env.build("background", df)
    assert done.code == 0, done.stderr
    assert done.seconds < 120, "a background process kept the step alive"
    assert not processes_with(f"sleep {marker}"), "a RUN's process outlived its build"
    assert not processes_with(f"sleep {int(marker) + 1}")
    bump("hostile dockerfiles neutralised")


def test_cache_mount_source_swapped_for_symlink(env: Env) -> None:
    """CVE-2024-23651: one build flips a cache mount's ``source=`` subpath between a
    directory and a symlink to a host directory while another mounts that subpath."""
    cid = "race-" + secrets.token_hex(4)
    flipper = (f"FROM busybox\nARG N\nRUN --mount=type=cache,id={cid},target=/c sh -c '"
               f"for i in $(seq 1 200); do rm -rf /c/sub; ln -s {env.host} /c/sub; "
               "rm -f /c/sub; mkdir -p /c/sub; done; rm -rf /c/sub; "
               f"ln -s {env.host} /c/sub'\n")
    reader = (f"FROM busybox\nARG N\nRUN --mount=type=cache,id={cid},target=/x,source=sub "
              "sh -c 'cat /x/marker.txt > /leak 2>/dev/null; echo pwned > /x/pwned "
              "2>/dev/null; ls /x > /listing.txt; true'\n")
    before = tree_state(env.host)
    results: list[tuple[Finished, Path]] = []
    for n in range(4):
        threads = []
        for which, df in (("flip", flipper), ("read", reader)):
            name = f"race-{which}-{n}"

            def go(name: str = name, df: str = df, n: int = n) -> None:
                results.append(env.build(name, df, None, None, "--build-arg", f"N={n}",
                                         "--no-cache"))

            threads.append(threading.Thread(target=go))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # And once more with the symlink certainly in place.
    results.append(env.build("race-read-final", reader, None, None, "--no-cache"))
    for done, dest in results:
        _judge(env, dest.name, done, dest, before)
    assert not (env.host / "pwned").exists()


def test_background_process_in_host_namespace_is_not_possible(env: Env) -> None:
    """A RUN cannot see host processes (its own PID namespace)."""
    df = "FROM busybox\nRUN ps -o pid,args > /ps.txt\n"
    done, dest = env.build("ps", df)
    assert done.code == 0, done.stderr
    listing = (dest / "ps.txt").read_text()
    assert "python" not in listing and "pytest" not in listing, listing
    bump("hostile dockerfiles neutralised")
