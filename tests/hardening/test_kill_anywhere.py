"""Kill anywhere: SIGKILL ``layerkit build`` (cold, cached, no-cache, with exports,
with ``--push``, with ``--cache-to``) and ``layerkit prune`` at random moments, then
prove the store and what the build was writing elsewhere are intact.

After every kill:

* ``layerkit fsck`` finds nothing corrupt or broken (leftovers are allowed:
  they are what a crash legitimately leaves, and the next build or prune
  collects them);
* an export the killed build was writing is either absent or complete;
* a push or a cache export it was writing (registry or local directory) is
  either absent or complete: its manifest or ``index.json`` never names a blob
  the destination lacks, which tests/hardening/remotecheck.py checks by
  fetching and re-hashing every blob, without layerkit code;
* the next, unkilled build succeeds and produces exactly the reference image
  (same image id as an unkilled build on a fresh store, SOURCE_DATE_EPOCH set);
  after a killed push that next build pushes to the same reference, which must
  then hold the complete reference image;
* after a killed cache export, a build on a fresh store with ``--cache-from``
  that destination succeeds with the reference image, taking every step from
  the cache when the export is there (a half export is never trusted);
* after it, no layerkit container of a dead process is left in the runtime and
  nothing is mounted under the store root.

Kill moments are seeded (``LAYERKIT_KILL_SEED``) and spread uniformly over the
measured duration of each kind of build; for pushes and cache exports most of
them are instead spread over the measured time between the ``built:`` line and
the end (where the uploads happen). ``LAYERKIT_KILLS`` sets the number of kills
(CI: 50; ``make hardening-long``: 500).
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
import shutil
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from buildharness import (
    Finished,
    build_cmd,
    fsck_cli,
    mounts_under,
    run,
    run_and_kill,
    run_and_kill_after,
    stale_containers,
    time_phases,
    write_project,
)
from figures import bump
from remotecheck import (
    RETRIED,
    Found,
    delete_blob,
    layout_blob_count,
    layout_state,
    registry_has_blobs,
    registry_state,
)

from support.registry import RunningRegistry

KILLS = int(os.environ.get("LAYERKIT_KILLS", "50"))
SEED = int(os.environ.get("LAYERKIT_KILL_SEED", "20261124"))
KINDS = ("cold", "cached", "no-cache", "export", "prune", "push", "cache-export")
# The progress line after the last step: commit, exports, push and cache export follow.
BUILT = "built:"
# Share of push / cache-export kills aimed at the time after BUILT (the rest: anywhere).
AFTER_BUILT = 0.75

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
        elif line.startswith("pushed "):
            moment = "after the push (before exit)"
        elif line.startswith("exported cache"):
            moment = "after the cache export (before exit)"
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


# -- pushes and cache exports: where each iteration writes --------------------------


@dataclass
class Destination:
    """Where one push or cache export writes, and how to read it back without layerkit."""

    timing: str  # "push", "cache-registry" or "cache-local": which measurement applies
    variant: str  # for the summary: a new repository / directory or one written before
    args: tuple[str, ...]  # the build flags that write there
    state: Callable[[], Found]
    # How many of the named blobs are already there (for saying where a kill landed).
    blobs_there: Callable[[list[str]], int]
    # True once the build started writing there (for timing, on a new destination).
    writing: Callable[[], bool]
    push_ref: str | None = None  # the -t NAME of a push
    cache_from: str | None = None  # the --cache-from that reads an exported cache
    local_dir: Path | None = None

    def index_identity(self) -> tuple[int, int] | None:
        """(inode, mtime) of a local cache's index.json: it is replaced, never edited."""
        if self.local_dir is None or not (self.local_dir / "index.json").exists():
            return None
        st = (self.local_dir / "index.json").stat()
        return st.st_ino, st.st_mtime_ns


def _push_to(registry: RunningRegistry, name: str, new_repo: bool) -> Destination:
    # A new repository uploads every blob; a new tag in a known one (once that holds
    # them) uploads none: only the manifest is new.
    repo, tag = (f"kill/app-{name}", "latest") if new_repo else ("kill/app", f"t{name}")
    ref = f"{registry.address}/{repo}:{tag}"
    return Destination(
        "push", "new repo" if new_repo else "known repo", ("-t", ref, "--push"),
        lambda: registry_state(registry.url, repo, tag),
        lambda blobs: registry_has_blobs(registry.url, repo, blobs),
        _repository_exists(registry, repo), push_ref=ref)


def _cache_to_registry(registry: RunningRegistry, name: str, new_repo: bool) -> Destination:
    repo, tag = (f"kill/cache-{name}", "c") if new_repo else ("kill/cache", f"c{name}")
    ref = f"{registry.address}/{repo}:{tag}"
    return Destination(
        "cache-registry", "registry, new repo" if new_repo else "registry, known repo",
        ("-t", "kill:latest", "--cache-to", f"type=registry,ref={ref},mode=max"),
        lambda: registry_state(registry.url, repo, tag),
        lambda blobs: registry_has_blobs(registry.url, repo, blobs),
        _repository_exists(registry, repo), cache_from=f"type=registry,ref={ref}")


def _cache_to_dir(where: Path, new_dir: bool) -> Destination:
    return Destination(
        "cache-local", "local, new dir" if new_dir else "local, reused dir",
        ("-t", "kill:latest", "--cache-to", f"type=local,dest={where},mode=max"),
        lambda: layout_state(where), lambda blobs: layout_blob_count(where),
        where.exists, cache_from=f"type=local,src={where}", local_dir=where)


def _repository_exists(registry: RunningRegistry, repo: str) -> Callable[[], bool]:
    # The registry's filesystem storage makes a repository's directory on its first
    # upload: the moment a push starts to write.
    path = registry.root / "data" / "docker" / "registry" / "v2" / "repositories" / repo
    return path.exists


def _destination(kind: str, n: int, registry: RunningRegistry, out: Path) -> Destination:
    """The n-th push or cache export: mostly fresh destinations (every blob travels),
    sometimes known ones (only the manifest or index is new)."""
    if kind == "push":
        return _push_to(registry, str(n), new_repo=n % 3 != 2)
    if n % 2 == 0:
        return _cache_to_registry(registry, str(n), new_repo=n % 4 == 0)
    new_dir = n % 4 == 1
    return _cache_to_dir(out / (f"lcache-{n}" if new_dir else "lcache"), new_dir)


def _remote_moment(dest: Destination, found: Found, expected: list[str],
                   index_before: tuple[int, int] | None) -> str:
    """Where a kill after the build's last step landed, read from the destination."""
    if dest.local_dir is not None and "reused" in dest.variant:
        replaced = dest.index_identity() != index_before
        return "index.json replaced" if replaced else "before index.json was replaced"
    if found.top is not None:
        return "manifest written (before exit)" if dest.local_dir is None else \
            "index.json written (before exit)"
    there = dest.blobs_there(expected)
    last, verb, doing = ("manifest", "upload", "uploading") if dest.local_dir is None else \
        ("index.json", "write", "writing")
    if there == 0:
        # Blobs count once complete; the destination shows an upload begun before that.
        return f"{doing} (no blob complete yet)" if dest.writing() else \
            "commit / compress (nothing written yet)"
    if there < len(expected):
        return f"mid-{verb} (some blobs there, no {last})"
    return f"every blob there, no {last} yet"


_STEP = re.compile(r"^#\d+ \[", re.M)
_FROM_CACHE = re.compile(r"^#\d+ CACHED \(from ", re.M)


# -- the test -------------------------------------------------------------------------


@pytest.mark.timeout(3600)
def test_kill_anywhere(tmp_path: Path, busybox_docker_archive: Path,
                       registry: RunningRegistry) -> None:
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

    # Pushes and cache exports, unkilled: how long they take, how long after BUILT
    # they end and start writing (most of the time between: compression and
    # imports), and every blob a complete one names.
    windows: dict[str, float] = {}
    writes: dict[str, float] = {}
    expected: dict[str, list[str]] = {}
    measured = (_push_to(registry, "measure", new_repo=True),
                _cache_to_registry(registry, "measure", new_repo=True),
                _cache_to_dir(out / "lcache-measure", new_dir=True))
    for m in measured:
        done, built_at, wrote_at = time_phases(build_cmd(root, ctx, *m.args), BUILT,
                                               tmp_path, m.writing)
        assert done.code == 0, done.stderr
        assert done.image_id == reference, f"{m.timing} build differs from the reference"
        assert wrote_at is not None, f"{m.timing}: nothing was written"
        durations[m.timing] = done.seconds
        windows[m.timing] = max(0.02, done.seconds - built_at)
        writes[m.timing] = min(max(0.0, wrote_at - built_at), windows[m.timing])
        result = m.state()
        assert result.complete, f"an unkilled {m.timing} left {result}"
        assert m.local_dir is not None or len(result.blobs) >= 2, result
        if m.timing == "push":
            assert result.configs == [reference], result
        expected[m.timing] = result.blobs
    _the_checker_sees_damage(registry, measured[0], measured[2], expected)

    startup = run([sys.executable, "-m", "layerkit", "--version"]).seconds
    failures: list[str] = []
    where: collections.Counter[str] = collections.Counter()
    per_kind: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    for i in range(KILLS):
        kind = KINDS[i % len(KINDS)]
        n = per_kind[kind]
        per_kind[kind] += 1
        if kind == "cold":
            run(prune_cmd)
        dest = _destination(kind, n, registry, out) if kind in ("push", "cache-export") \
            else None
        timing = dest.timing if dest else kind
        label = f"{kind} ({dest.variant})" if dest else kind
        if kind == "prune":
            cmd = prune_cmd
        elif dest is not None:
            cmd = build_cmd(root, ctx, *dest.args)
        else:
            cmd = build_cmd(root, ctx, "-t", "kill:latest", *scenarios[kind])
        index_before = dest.index_identity() if dest else None
        if dest is not None and rng.random() < AFTER_BUILT:
            # Half of them over the whole time after BUILT, half while it writes.
            low = 0.0 if rng.random() < 0.5 else writes[timing]
            delay = rng.uniform(low, windows[timing] * 1.05)
            when = f"{delay:.3f}s after {BUILT!r}"
            killed = run_and_kill_after(cmd, BUILT, delay, tmp_path)
        else:
            # A quarter of the kills anywhere in the run, the rest after start-up
            # (Python and imports take a good part of a cached build).
            low = 0.05 if rng.random() < 0.25 else min(startup, durations[timing] * 0.9)
            delay = rng.uniform(low, durations[timing] * 1.05)
            when = f"{delay:.2f}s"
            killed = run_and_kill(cmd, delay, tmp_path)
        at = f"kill {i} ({label} at {when})"
        moment = _last_step(killed.stderr) if killed.code < 0 else "finished first"
        found = dest.state() if dest else None
        if dest is not None and found is not None and moment == "commit / export":
            landed = _remote_moment(dest, found, expected[timing], index_before)
            moment = f"after the build: {landed}"
        where[f"{label}: {moment}"] += 1

        code, report = fsck_cli(root)
        if code != 0:
            problems: list[dict[str, object]] = report["problems"]  # type: ignore[assignment]
            bad = [p for p in problems if p["severity"] != "garbage"]
            failures.append(f"{at}: fsck found {bad}")
            fsck_cli(root, "--repair")
        if kind == "export":
            problem = _export_is_absent_or_complete(export)
            if problem:
                failures.append(f"{at}: {problem}")
        if dest is not None and found is not None:
            failures += _check_killed_destination(at, kind, dest, found, killed, moment,
                                                  reference)

        # What the kill left on the host: the next build must clean it up.
        left_containers, left_mounts = stale_containers(), mounts_under(root)
        bump("kill-anywhere: runtime containers left by a kill", len(left_containers))
        bump("kill-anywhere: mounts left by a kill", len(left_mounts))
        # After a killed push the next build pushes again, to the same reference.
        again = dest.args if dest is not None and dest.push_ref else ("-t", "kill:latest")
        after = run(build_cmd(root, ctx, *again))
        if after.code != 0:
            failures.append(f"{at}: next build failed:\n{after.stderr[-2000:]}")
        elif after.image_id != reference:
            failures.append(f"{at}: next build gave {after.image_id}, expected {reference}")
        elif dest is not None and dest.push_ref:
            pushed = dest.state()
            if not pushed.complete or pushed.configs != [reference]:
                failures.append(f"{at}: the push after it left {dest.push_ref} as {pushed}")
        leftovers = stale_containers()
        if leftovers:
            failures.append(f"kill {i}: containers of dead builds left after the next build: "
                            f"{leftovers}")
        mounted = mounts_under(root)
        if mounted:
            failures.append(f"kill {i}: mounts left under the store after the next build: "
                            f"{mounted}")
        if dest is not None and dest.cache_from:
            failures += _build_from_cache(at, dest, found, tmp_path / f"fresh-{i}",
                                          busybox_docker_archive, ctx, reference)
        if killed.code < 0:
            bump("kill-anywhere: builds/prunes killed")
        bump("kill-anywhere: iterations")
    elapsed = time.monotonic() - started
    bump("kill-anywhere: registry 5xx retried after a kill", len(RETRIED))
    summary = "\n".join(f"  {n:4d}  {w}" for w, n in sorted(where.items()))
    timing_text = ", ".join(f"{k} {v:.1f}s" for k, v in durations.items())
    window_text = ", ".join(f"{k} {v:.2f}s (writing from {writes[k]:.2f}s)"
                            for k, v in windows.items())
    print(f"\n{KILLS} kill iterations in {elapsed:.0f}s (seed {SEED}; unkilled: {timing_text}, "
          f"start-up {startup:.1f}s; after {BUILT!r}: {window_text}); killed at:\n{summary}")
    kinds_of_failure = collections.Counter(
        f.split(": ", 1)[1].split(":")[0].split(" gave ")[0][:60] for f in failures)
    print("failures by kind:", dict(kinds_of_failure) or "none")
    if RETRIED:
        print("registry 5xx answers retried:", *RETRIED[:5], sep="\n  ")
    assert not failures, "\n".join(failures[:20])
    final_code, final = fsck_cli(root)
    assert final_code == 0, final


def _check_killed_destination(at: str, kind: str, dest: Destination, found: Found,
                              killed: Finished, moment: str, reference: str) -> list[str]:
    """A killed push or cache export left nothing, or something complete."""
    failures = []
    where = dest.push_ref or dest.cache_from
    if found.problems:
        failures.append(f"{at}: {where} names what it does not hold: {found.problems[:3]}")
    if dest.push_ref and found.top is not None and found.configs != [reference]:
        failures.append(f"{at}: {where} holds image {found.configs}, expected {reference}")
    bump("kill-anywhere: blobs re-hashed at a push/cache destination", len(found.blobs))
    if found.top is None and "some blobs there" in moment:  # a half push / export
        bump("kill-anywhere: destinations left with blobs but no manifest/index")
    if killed.code < 0:
        what = "pushes" if kind == "push" else "cache exports"
        bump(f"kill-anywhere: {what} killed")
        if moment.startswith("after the build"):
            bump(f"kill-anywhere: {what} killed after the build (commit/upload/write)")
    return failures


def _build_from_cache(at: str, dest: Destination, found: Found | None, fresh: Path,
                      archive: Path, ctx: Path, reference: str) -> list[str]:
    """A build on a fresh store from what the killed export left: it never trusts a
    half export, and a complete one gives every step."""
    assert dest.cache_from is not None
    _load_busybox(fresh, archive)
    built = run(build_cmd(fresh, ctx, "-t", "kill:latest", "--cache-from", dest.cache_from))
    failures = []
    if built.code != 0:
        failures.append(f"{at}: --cache-from {dest.cache_from} on a fresh store failed:\n"
                        f"{built.stderr[-2000:]}")
    elif built.image_id != reference:
        failures.append(f"{at}: --cache-from {dest.cache_from} gave {built.image_id}, "
                        f"expected {reference}")
    else:
        steps = len(_STEP.findall(built.stderr))
        reused = len(_FROM_CACHE.findall(built.stderr))
        bump("kill-anywhere: --cache-from builds on a fresh store after a kill")
        if found is not None and found.complete:
            bump("kill-anywhere: --cache-from builds from a complete export")
            if reused != steps or steps == 0:
                failures.append(f"{at}: the complete cache at {dest.cache_from} gave only "
                                f"{reused} of {steps} steps:\n{built.stderr[-2000:]}")
    if mounts_under(fresh):
        failures.append(f"{at}: the fresh-store build left mounts {mounts_under(fresh)}")
    else:
        shutil.rmtree(fresh, ignore_errors=True)
    return failures


def _the_checker_sees_damage(registry: RunningRegistry, pushed: Destination,
                             local: Destination, expected: dict[str, list[str]]) -> None:
    """remotecheck must be able to fail: a registry blob removed, a local blob removed
    and another one changed are all reported."""
    layers = expected["push"][1:]  # [0] is the config
    assert pushed.push_ref is not None
    repo = pushed.push_ref.split("/", 1)[1].rsplit(":", 1)[0]
    delete_blob(registry.url, repo, layers[-1])
    damaged = pushed.state()
    assert damaged.top is not None and any(layers[-1] in p for p in damaged.problems), damaged
    assert local.local_dir is not None
    copy = local.local_dir.with_name("lcache-damaged")
    shutil.copytree(local.local_dir, copy)
    blobs = sorted((copy / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    blobs[-1].unlink()
    blobs[-2].write_bytes(blobs[-2].read_bytes() + b"x")
    problems = layout_state(copy).problems
    assert any(blobs[-1].name in p and "missing" in p for p in problems), problems
    assert any(blobs[-2].name in p for p in problems), problems
    shutil.rmtree(copy)
