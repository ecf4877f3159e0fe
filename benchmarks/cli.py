"""``python -m benchmarks``: builds the sample projects with every builder, side by side.

Input: command-line options, the loopback registry and wheel folder prepared
by ``scripts/bench-setup.sh``. Output: a table of median seconds per scenario
and builder, PASS/FAIL target lines and optionally a JSON file. Builders are
interleaved within each repetition because the machine is noisy, in orders
that spread who runs right after whom (`schedule`), and each timed build
starts after a sync(2), so no builder pays for another's writeback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from benchmarks.builders import (
    CommandBuilder,
    make_buildah,
    make_docker,
    make_layerkit,
    stores_dir,
)
from benchmarks.measure import python_startup_seconds, run_timed, stat_walk_seconds
from benchmarks.projects import PROJECT_NAMES, Project, generate
from benchmarks.report import UNSUPPORTED, Cell, Results, rss_lines, table, targets, to_json
from benchmarks.schedule import balanced_orders

SCENARIOS = ("cold", "noop", "code", "touch", "requirements", "export")
DEFAULT_CACHE = Path(os.environ.get("LAYERKIT_BENCH_CACHE", "/var/cache/layerkit-bench"))
SETUP_HINT = "run `sudo scripts/bench-setup.sh` first"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--reps", type=int, default=5, help="repetitions per scenario (median)")
    p.add_argument("--quick", action="store_true",
                   help="CI-sized smoke run: 1 rep, small big-context, no naive twin")
    p.add_argument("--builders", default="layerkit,docker,buildah",
                   help="comma-separated: layerkit, docker, buildah and any --builder-cmd names")
    p.add_argument("--projects", default=",".join(PROJECT_NAMES))
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--registry", default="127.0.0.1:5000", help="serves the base images")
    p.add_argument("--wheels", type=Path, default=DEFAULT_CACHE / "wheels")
    p.add_argument("--workdir", type=Path, help="scratch dir (default: a new temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the scratch dir")
    p.add_argument("--big-files", type=int, default=20_000)
    p.add_argument("--big-mb", type=int, default=200)
    p.add_argument("--layerkit-python", default=sys.executable,
                   help="interpreter that runs `-m layerkit` (default: this one)")
    p.add_argument("--layerkit-args", default="", help="extra args for `layerkit build`")
    p.add_argument("--builder-cmd", action="append", default=[], metavar="NAME=TEMPLATE",
                   help="add a builder: build template with {tag} {dockerfile} {context}")
    p.add_argument("--baseline", default="layerkit",
                   help="ratios are builder/baseline (falls back to the first available)")
    return p


def _registry_has(registry: str, repo: str, tag: str) -> bool:
    request = urllib.request.Request(
        f"http://{registry}/v2/{repo}/manifests/{tag}", method="HEAD",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                           "application/vnd.oci.image.index.v1+json, "
                           "application/vnd.docker.distribution.manifest.v2+json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _preflight(args: argparse.Namespace) -> str | None:
    for repo, tag in (("busybox", "1.35"), ("python", "3.11-slim-bookworm")):
        if not _registry_has(args.registry, repo, tag):
            return f"{args.registry}/{repo}:{tag} is not served: {SETUP_HINT}"
    if not list(args.wheels.glob("*.whl")):
        return f"no wheels in {args.wheels}: {SETUP_HINT}"
    return None


def _builders(args: argparse.Namespace, stores: Path) -> list[CommandBuilder]:
    bases = [f"{args.registry}/busybox:1.35", f"{args.registry}/python:3.11-slim-bookworm"]
    known: dict[str, CommandBuilder] = {
        "layerkit": make_layerkit(args.layerkit_python, stores, args.layerkit_args),
        "docker": make_docker(bases),
        "buildah": make_buildah(stores),
    }
    for spec in args.builder_cmd:
        name, _, template = spec.partition("=")
        known[name] = CommandBuilder(name=name, build=template, note="from --builder-cmd")
    chosen = []
    for name in args.builders.split(","):
        if name not in known:
            raise SystemExit(f"unknown builder {name!r}; known: {', '.join(known)}")
        chosen.append(known[name])
    return chosen


def _mutate(project: Project, scenario: str, counter: int) -> None:
    if scenario == "code":
        project.edit_code(counter)
    elif scenario == "touch":
        project.touch()
    elif scenario == "requirements":
        project.edit_requirements(counter)


def _settle(builder: CommandBuilder, project: Project, scratch: Path) -> None:
    log = scratch / "logs" / f"{builder.name}.log"
    for argv in builder.build_argvs(project):
        run_timed(argv, log=log, env=builder.full_env(), cwd=project.context)


def _measure(builder: CommandBuilder, project: Project, scenario: str, scratch: Path,
             cell: Cell, projects: list[Project]) -> str:
    if scenario == "cold":
        # Every project's images go, so no other project's image keeps the base layers
        # alive (docker's did, making its "cold" build skip unpacking the base).
        builder.reset(projects)
    if scenario == "export":
        dest = scratch / "exports" / f"{builder.name}-{project.name}.tar"
        dest.parent.mkdir(exist_ok=True)
        dest.unlink(missing_ok=True)
        argvs = builder.export_argvs(project, dest)
        if argvs is None:
            cell.error = UNSUPPORTED
            return "n/a"
    else:
        argvs = builder.build_argvs(project)
    log = scratch / "logs" / f"{builder.name}.log"
    seconds, rss = 0.0, 0
    os.sync()  # untimed: the previous build's dirty pages are not this one's to write
    for argv in argvs:
        run = run_timed(argv, log=log, env=builder.full_env(), cwd=project.context)
        seconds += run.seconds
        rss = max(rss, run.peak_rss_kib)
        if run.returncode != 0:
            tail = log.read_text(errors="replace").splitlines()[-12:]
            cell.error = f"exit {run.returncode}"
            print(f"  {builder.name} FAILED ({cell.error}); last log lines:", file=sys.stderr)
            for line in tail:
                print(f"    | {line}", file=sys.stderr)
            return "FAIL"
    cell.seconds.append(seconds)
    cell.peak_rss_kib.append(rss)
    return f"{seconds:.2f}s"


def _machine() -> dict[str, object]:
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) // 1024} MiB"
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "mem_total": mem, "kernel": platform.release(),
            "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        args.reps = 1
        args.big_files, args.big_mb = min(args.big_files, 2000), min(args.big_mb, 20)
        if args.projects == ",".join(PROJECT_NAMES):
            args.projects = "python,big-context,multistage"
    problem = _preflight(args)
    if problem:
        print(f"benchmarks: {problem}", file=sys.stderr)
        return 2
    scratch = args.workdir or Path(tempfile.mkdtemp(prefix="lkbench-", dir="/var/tmp"))
    (scratch / "logs").mkdir(parents=True, exist_ok=True)
    stores, stores_note = stores_dir(scratch)
    if stores_note:
        print(f"note: {stores_note}")
    builders = _builders(args, stores)
    for b in builders:
        reason = b.unavailable or b.check()
        print(f"{b.name}: " + (f"not available ({reason})" if reason else "available"))
    ready = [b for b in builders if not b.unavailable]
    if not ready:
        print("benchmarks: no builder is available", file=sys.stderr)
        return 2
    names = [b.name for b in ready]
    baseline = args.baseline if args.baseline in names else names[0]
    print(f"scratch: {scratch}  reps: {args.reps}  ratios vs {baseline}")
    projects = generate(scratch / "projects", tuple(args.projects.split(",")),
                        registry=args.registry, wheels=args.wheels,
                        big_files=args.big_files, big_mb=args.big_mb)
    scenarios = [s for s in args.scenarios.split(",") if s]
    results: Results = {}
    failed = False
    counter = 0
    by_name = {b.name: b for b in ready}
    last_ran: str | None = None
    for project in projects:
        results[project.name] = {
            scenario: {b.name: Cell() for b in ready} for scenario in scenarios
            if not (scenario == "requirements" and project.requirements is None)}
    # Every project's cached scenarios first, then every project's cold scenario. A cold
    # reset deletes a builder's store or images, and on ext4 creating files near freshly
    # freed inodes is several times slower for a while (docs/benchmarks.md, "Fairness"):
    # that cost belongs to the cold builds, not to cached scenarios measured after them.
    runs = [(p, s) for p in projects for s in results[p.name] if s != "cold"]
    runs += [(p, "cold") for p in projects if "cold" in results[p.name]]
    shown_project = None
    for project, scenario in runs:
        if project is not shown_project:
            print(f"== {project.name}: {project.file_count} files")
            shown_project = project
        cells = results[project.name][scenario]
        if scenario != "cold":
            # One unmeasured build per builder first, so the first repetition starts
            # from the state the scenario names (the previous scenario's image
            # built from the current files), whatever ran before it.
            for b in ready:
                _settle(b, project, scratch)
            last_ran = ready[-1].name
        orders = balanced_orders([b.name for b in ready], args.reps, before=last_ran)
        for rep, order_names in enumerate(orders):
            counter += 1
            _mutate(project, scenario, counter)
            order = [by_name[name] for name in order_names]
            last_ran = order_names[-1]
            shown = []
            for b in order:
                if cells[b.name].error:
                    continue
                took = _measure(b, project, scenario, scratch, cells[b.name], projects)
                shown.append(f"{b.name} {took}")
                failed = failed or cells[b.name].error not in (None, UNSUPPORTED)
            print(f"  {scenario:<12} rep {rep + 1}/{args.reps}: " + "  ".join(shown))
    layerkit = "layerkit" if "layerkit" in names else None
    budgets: dict[str, float] = {}
    if layerkit:
        startup = python_startup_seconds(args.layerkit_python)
        for project in projects:
            walk, _ = stat_walk_seconds(project.context)
            budgets[project.name] = startup + walk
    print()
    print(table(results, names, baseline))
    print()
    for line in rss_lines(results, names):
        print(line)
    for target in targets(results, layerkit, budgets):
        print(target.line())
    for b in builders:
        if b.note and not b.unavailable:
            print(f"note {b.name}: {b.note}")
    if args.json:
        meta = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "machine": _machine(), "reps": args.reps, "quick": args.quick,
                "builders": {b.name: b.unavailable or "available" for b in builders},
                "baseline": baseline, "noop_floor_s": budgets,
                "big_context": {"files": args.big_files, "mb": args.big_mb}}
        args.json.write_text(json.dumps(to_json(results, meta), indent=2))
        print(f"wrote {args.json}")
    if not args.keep and not failed:
        for b in ready:
            if b.name == "buildah":  # its overlay store lives in scratch: empty it first
                b.reset([])
        shutil.rmtree(scratch, ignore_errors=True)
    elif failed:
        print(f"some builds failed: logs kept in {scratch / 'logs'}")
    return 1 if failed else 0


