"""Concurrency: four builds at once on one store (two of the same project, two
different ones) while ``layerkit prune`` runs in a loop beside them.

Every build must succeed with exactly the image an isolated build of the same
project gives, no output may mention "database is locked", nothing a build
uses may be removed under it, and ``fsck`` finds the store intact afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from buildharness import REPO, Finished, build_cmd, build_env, fsck_cli, run, write_project
from figures import bump

ROUNDS = int(os.environ.get("LAYERKIT_CONCURRENCY_ROUNDS", "3"))


def _project(name: str, lines: int) -> dict[str, str]:
    return {
        "Dockerfile": f"""\
FROM busybox
WORKDIR /{name}
COPY . .
RUN --mount=type=cache,target=/cache,sharing=shared sh -c 'echo {name} >> /cache/seen' \\
    && seq 1 {lines} > numbers.txt && sleep 0.3
RUN --mount=type=cache,id=locked-{name},target=/l,sharing=locked wc -l numbers.txt > count.txt
RUN cat count.txt src/*.txt | md5sum > sum.txt
CMD ["cat", "/{name}/sum.txt"]
""",
        **{f"src/{i}.txt": f"{name} {i}\n" * (i + 3) for i in range(8)},
    }


def _load(root: Path, archive: Path) -> None:
    from support.buildenv import load_into, require_build_env

    require_build_env()
    load_into(root, archive, "busybox:latest")


@pytest.mark.timeout(1800)
def test_four_builds_and_prune_at_once(tmp_path: Path, busybox_docker_archive: Path) -> None:
    projects = {"a": _project("a", 5000), "b": _project("b", 7000), "c": _project("c", 9000)}
    contexts = {n: write_project(tmp_path / f"ctx-{n}", files) for n, files in projects.items()}
    # The same project twice: a copy in another directory has the same cache keys.
    contexts["a2"] = tmp_path / "ctx-a2"
    shutil.copytree(contexts["a"], contexts["a2"])
    expected = {}
    for name in ("a", "b", "c"):
        solo = tmp_path / f"solo-{name}"
        _load(solo, busybox_docker_archive)
        done = run(build_cmd(solo, contexts[name]))
        assert done.code == 0, done.stderr
        expected[name] = done.image_id
    expected["a2"] = expected["a"]

    root = tmp_path / "shared"
    _load(root, busybox_docker_archive)
    outputs: list[str] = []
    failures: list[str] = []
    builds = 0
    prunes = 0
    for round_no in range(ROUNDS):
        stop = threading.Event()
        prune_results: list[Finished] = []

        def prune_loop(stop: threading.Event = stop,
                       prune_results: list[Finished] = prune_results) -> None:
            modes = [["prune", "-f"], ["prune", "--all", "-f"], ["prune", "-f", "--filter",
                                                                 "until=1s"]]
            i = 0
            while not stop.is_set():
                cmd = [sys.executable, "-m", "layerkit", *modes[i % len(modes)],
                       "--root", str(root)]
                prune_results.append(run(cmd))
                i += 1
                time.sleep(0.05)

        pruner = threading.Thread(target=prune_loop)
        procs = {
            name: subprocess.Popen(build_cmd(root, ctx, "-t", f"{name}:latest"),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=build_env(), cwd=REPO, stdin=subprocess.DEVNULL)
            for name, ctx in contexts.items()
        }
        pruner.start()
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=900)
            builds += 1
            outputs += [out, err]
            image = out.strip().splitlines()[-1] if out.strip() else ""
            if proc.returncode != 0:
                failures.append(f"round {round_no} build {name} failed:\n{err[-2000:]}")
            elif image != expected[name]:
                failures.append(f"round {round_no} build {name}: {image} != {expected[name]}")
        stop.set()
        pruner.join()
        prunes += len(prune_results)
        for p in prune_results:
            outputs += [p.stdout, p.stderr]
            if p.code != 0:
                failures.append(f"round {round_no}: prune failed: {p.stderr[-1000:]}")
        code, report = fsck_cli(root)
        if code != 0:
            failures.append(f"round {round_no}: fsck after concurrent builds: {report}")
    locked = [o for o in outputs if "database is locked" in o.lower()]
    assert not locked, locked[0][-2000:]
    assert not failures, "\n".join(failures)
    bump("concurrency: builds run 4 at a time", builds)
    bump("concurrency: prunes run beside them", prunes)
