"""Kill anywhere: SIGKILL ``layerkit build`` (cold, cached, no-cache, with exports)
and ``layerkit prune`` at random moments, then prove the store is intact.

After every kill:

* ``layerkit fsck`` finds nothing corrupt or broken (leftovers are allowed:
  they are what a crash legitimately leaves, and the next build or prune
  collects them);
* an export the killed build was writing is either absent or complete;
* the next, unkilled build succeeds and produces exactly the reference image
  (same image id as an unkilled build on a fresh store, SOURCE_DATE_EPOCH set);
* after it, no layerkit container of a dead process is left in the runtime and
  nothing is mounted under the store root.

Kill moments are seeded (``LAYERKIT_KILL_SEED``) and spread uniformly over the
measured duration of each kind of build. ``LAYERKIT_KILLS`` sets the number of
kills (CI: 50; ``make hardening-long``: 500).
"""

from __future__ import annotations

import collections
import json
import os
import random
import sys
import tarfile
import time
from pathlib import Path

import pytest
from buildharness import (
    build_cmd,
    fsck_cli,
    mounts_under,
    run,
    run_and_kill,
    stale_containers,
    write_project,
)
from figures import bump

KILLS = int(os.environ.get("LAYERKIT_KILLS", "50"))
SEED = int(os.environ.get("LAYERKIT_KILL_SEED", "20261124"))

PROJECT = {
    "Dockerfile": """\
FROM busybox
WORKDIR /app
COPY a.txt b.txt ./
RUN sleep 0.3 && cat a.txt b.txt > ab.txt && seq 1 30000 > numbers.txt
COPY sub/ ./sub/
RUN --mount=type=cache,target=/cache echo run >> /cache/log && md5sum ab.txt sub/* > sums.txt
ENV STAGE=final
RUN sleep 0.2 && dd if=/dev/zero of=/app/zeros bs=1024 count=4096 2>/dev/null
RUN echo "$STAGE" > stage.txt
CMD ["cat", "/app/ab.txt"]
""",
    "a.txt": "alpha\n" * 100,
    "b.txt": "bravo\n" * 100,
    **{f"sub/f{i}.txt": f"file {i}\n" * (i + 1) for i in range(12)},
}


def _load_busybox(root: Path, archive: Path) -> None:
    from support.buildenv import load_into, require_build_env

    require_build_env()
    load_into(root, archive, "busybox:latest")


def _last_step(stderr: str) -> str:
    """Where the build was when it died, from its plain progress output."""
    moment = "start-up (before any step)"
    for line in stderr.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0].startswith("#") and words[1].startswith("["):
            moment = f"during {words[1]} {words[2]}"
        elif len(words) >= 2 and words[0].startswith("#") and words[1] in ("DONE", "CACHED"):
            moment = moment.replace("during", "after")
        elif line.startswith(("built:", "exported")):
            moment = "commit / export"
        elif line.startswith("Deleted build cache") or line.startswith("waiting"):
            moment = "deleting"
    return moment


def _export_is_absent_or_complete(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        with tarfile.open(path) as tf:
            names = set(tf.getnames())
            index = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
    except (tarfile.TarError, KeyError, ValueError, TypeError) as e:
        return f"{path.name} exists but is not a complete OCI archive: {e}"
    blobs = {f"blobs/{m['digest'].replace(':', '/')}" for m in index.get("manifests", [])}
    if not blobs <= names:
        return f"{path.name} names manifests it does not hold"
    return None


@pytest.mark.timeout(3600)
def test_kill_anywhere(tmp_path: Path, busybox_docker_archive: Path) -> None:
    rng = random.Random(SEED)
    ctx = write_project(tmp_path / "ctx", PROJECT)

    # The reference: an unkilled build on a fresh store.
    ref_root = tmp_path / "ref-store"
    _load_busybox(ref_root, busybox_docker_archive)
    ref = run(build_cmd(ref_root, ctx, "-t", "kill:ref"))
    assert ref.code == 0, ref.stderr
    reference = ref.image_id
    assert reference.startswith("sha256:")

    root = tmp_path / "store"
    _load_busybox(root, busybox_docker_archive)
    out = tmp_path / "out"
    out.mkdir()
    export = out / "image.tar"
    local = out / "rootfs"
    scenarios = {
        "cold": [],
        "cached": [],
        "no-cache": ["--no-cache"],
        "export": ["-o", f"type=oci,dest={export}", "-o", f"type=local,dest={local}"],
    }
    # How long each kind of build takes, unkilled, on this machine.
    durations: dict[str, float] = {}
    prune_cmd = [*build_cmd(root, ctx)[:3], "prune", "--all", "-f", "--root", str(root)]
    for name, extra in scenarios.items():
        if name == "cold":
            run(prune_cmd)
        done = run(build_cmd(root, ctx, "-t", "kill:latest", *extra))
        assert done.code == 0, done.stderr
        assert done.image_id == reference, f"{name} build differs from the reference"
        durations[name] = done.seconds
    run(build_cmd(root, ctx))  # a full cache, then time how long pruning it takes
    durations["prune"] = max(0.3, run(prune_cmd).seconds)
    run(build_cmd(root, ctx, "-t", "kill:latest"))

    startup = run([sys.executable, "-m", "layerkit", "--version"]).seconds
    failures: list[str] = []
    where: collections.Counter[str] = collections.Counter()
    kinds = [*scenarios, "prune"]
    started = time.monotonic()
    for i in range(KILLS):
        kind = kinds[i % len(kinds)]
        if kind == "cold":
            run(prune_cmd)
        # A quarter of the kills anywhere in the run, the rest after start-up
        # (Python and imports take a good part of a cached build).
        low = 0.05 if rng.random() < 0.25 else min(startup, durations[kind] * 0.9)
        delay = rng.uniform(low, durations[kind] * 1.05)
        if kind == "prune":
            cmd = prune_cmd
        else:
            cmd = build_cmd(root, ctx, "-t", "kill:latest", *scenarios[kind])
        killed = run_and_kill(cmd, delay, tmp_path)
        moment = _last_step(killed.stderr) if killed.code < 0 else "finished first"
        where[f"{kind}: {moment}"] += 1

        code, report = fsck_cli(root)
        if code != 0:
            problems: list[dict[str, object]] = report["problems"]  # type: ignore[assignment]
            bad = [p for p in problems if p["severity"] != "garbage"]
            failures.append(f"kill {i} ({kind} at {delay:.2f}s): fsck found {bad}")
            fsck_cli(root, "--repair")
        if kind == "export":
            problem = _export_is_absent_or_complete(export)
            if problem:
                failures.append(f"kill {i} ({kind} at {delay:.2f}s): {problem}")

        # What the kill left on the host: the next build must clean it up.
        left_containers, left_mounts = stale_containers(), mounts_under(root)
        bump("kill-anywhere: runtime containers left by a kill", len(left_containers))
        bump("kill-anywhere: mounts left by a kill", len(left_mounts))
        after = run(build_cmd(root, ctx, "-t", "kill:latest"))
        if after.code != 0:
            failures.append(f"kill {i} ({kind} at {delay:.2f}s): next build failed:\n"
                            f"{after.stderr[-2000:]}")
        elif after.image_id != reference:
            failures.append(f"kill {i} ({kind} at {delay:.2f}s): next build gave "
                            f"{after.image_id}, expected {reference}")
        leftovers = stale_containers()
        if leftovers:
            failures.append(f"kill {i}: containers of dead builds left after the next build: "
                            f"{leftovers}")
        mounted = mounts_under(root)
        if mounted:
            failures.append(f"kill {i}: mounts left under the store after the next build: "
                            f"{mounted}")
        if killed.code < 0:
            bump("kill-anywhere: builds/prunes killed")
        bump("kill-anywhere: iterations")
    elapsed = time.monotonic() - started
    summary = "\n".join(f"  {n:4d}  {w}" for w, n in sorted(where.items()))
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in durations.items())
    print(f"\n{KILLS} kill iterations in {elapsed:.0f}s (seed {SEED}; unkilled: {timing}, "
          f"start-up {startup:.1f}s); killed at:\n{summary}")
    kinds_of_failure = collections.Counter(
        f.split(": ", 1)[1].split(":")[0].split(" gave ")[0][:60] for f in failures)
    print("failures by kind:", dict(kinds_of_failure) or "none")
    assert not failures, "\n".join(failures[:20])
    final_code, final = fsck_cli(root)
    assert final_code == 0, final
