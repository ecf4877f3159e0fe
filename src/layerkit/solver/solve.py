"""solve and plan: from a frontend stage graph to built stages (or to predictions).

1. resolve every external image the needed stages use (tag → digest + config);
2. dispatch each needed stage (frontend, pure) and lower it to vertices (graph);
3. number the steps as the progress output prints them;
4. run the stages through the :mod:`~layerkit.solver.scheduler` and the
   :mod:`~layerkit.solver.engine` (``plan``: the same walk with ``dry_run``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from layerkit.cache.keystore import KeyStore
from layerkit.errors import LayerkitError, Location
from layerkit.fastclass import dataclass
from layerkit.graph.model import BuildDef, ImageInput
from layerkit.graph.ops import SourceOp
from layerkit.progress.events import BuildDone, NullSink, ProgressSink
from layerkit.solver.cachesource import CacheSource, LocalCache
from layerkit.solver.engine import Engine
from layerkit.solver.plan import Plan, StepPlan
from layerkit.solver.result import SolveResult, StageResult
from layerkit.solver.scheduler import run_stages
from layerkit.solver.worker import BaseState, Worker

if TYPE_CHECKING:
    from layerkit.frontend.stages import Stage, StageGraph

__all__ = ["LoweredBuild", "SolveOptions", "lower_build", "plan", "solve", "solve_build"]


@dataclass(frozen=True)
class SolveOptions:
    """What the user chose. ``dockerfile`` is the absolute path (part of step identity)."""

    dockerfile: str = "Dockerfile"
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()  # stage names (or indices) whose steps must run
    jobs: int = 4


@dataclass(frozen=True)
class LoweredBuild:
    build: BuildDef
    bases: Mapping[str, BaseState]


def lower_build(graph: StageGraph, worker: Worker, *, dockerfile: str) -> LoweredBuild:
    """Resolve the images the needed stages use, dispatch and lower every needed stage."""
    # Here, not at the top: a build given a kept lowered build (worker/memo.py) runs
    # solve_build without importing the frontend, the lowering or the parser.
    from layerkit.frontend.dispatch import BaseImageConfig
    from layerkit.graph.lower import lower_stage

    bases: dict[str, BaseState] = {}
    for stage in graph.needed_stages:
        platform = str(stage.platform or graph.target_platform)
        refs = list(stage.external_images)
        if stage.base_stage is None and not stage.is_scratch:
            refs.insert(0, stage.base)
        for ref in refs:
            if ref not in bases:
                try:
                    bases[ref] = worker.resolve_base(ref, platform)
                except LayerkitError as exc:
                    if exc.location is None:  # name the FROM (or --from) line that wants it
                        line = next((d.line for d in stage.dependencies if d.image == ref),
                                    stage.location.line)
                        exc.location = Location(dockerfile, line, text=_line_text(stage, line))
                    raise
    configs = {
        ref: BaseImageConfig(b.config.env, b.config.working_dir, b.config.user, b.config.shell)
        for ref, b in bases.items()
    }
    digests = {ref: b.digest for ref, b in bases.items()}
    stages = {}
    for stage in graph.needed_stages:
        steps = graph.steps(stage, base_configs=configs)
        stages[stage.index] = lower_stage(graph, stage, steps, base_digests=digests)
    return LoweredBuild(BuildDef(dockerfile, stages, graph.target.index), bases)


def _line_text(stage: Stage, line: int) -> str:
    for instr in (stage.from_instruction, *stage.instructions):
        if instr.location.line == line:
            return instr.location.text or ""
    return ""


def _numbering(build: BuildDef) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], str]]:
    """``#N`` for every keyed step, and its ``[stage i/n] TEXT`` label, fixed up front."""
    numbers: dict[tuple[int, int], int] = {}
    labels: dict[tuple[int, int], str] = {}
    n = 0
    multi = len(build.stages) > 1
    for index in build.order():
        stage = build.stages[index]
        keyed = [v for v in stage.vertices if v.makes_layer]
        prefix = stage.name or (f"stage-{stage.index}" if multi else "")
        for i, v in enumerate(keyed, start=1):
            if isinstance(v.op, SourceOp) and v.op.kind == "stage":
                continue  # nothing runs for FROM <stage>: not printed, as in BuildKit
            n += 1
            numbers[(v.stage, v.index)] = n
            where = f"{prefix} {i}/{len(keyed)}" if prefix else f"{i}/{len(keyed)}"
            labels[(v.stage, v.index)] = f"[{where}] {v.expanded}"
    return numbers, labels


def _engine(
    lowered: LoweredBuild, worker: Worker, store: KeyStore, options: SolveOptions,
    sink: ProgressSink, sources: Sequence[CacheSource] | None, dry_run: bool,
) -> Engine:
    numbers, labels = _numbering(lowered.build)
    return Engine(
        worker=worker, store=store,
        sources=list(sources) if sources is not None else [LocalCache(store)],
        dockerfile=lowered.build.dockerfile, sink=sink, numbers=numbers, labels=labels,
        bases=lowered.bases, no_cache=options.no_cache,
        no_cache_filter=frozenset(options.no_cache_filter), dry_run=dry_run,
    )


def solve_build(
    lowered: LoweredBuild, worker: Worker, store: KeyStore, *,
    options: SolveOptions | None = None, sink: ProgressSink | None = None,
    sources: Sequence[CacheSource] | None = None,
) -> SolveResult:
    """Build an already lowered graph."""
    options = options or SolveOptions(dockerfile=lowered.build.dockerfile)
    sink = sink or NullSink()
    engine = _engine(lowered, worker, store, options, sink, sources, dry_run=False)
    start = time.monotonic()
    try:
        states, outcomes = run_stages(lowered.build, engine.run_stage, jobs=options.jobs,
                                      cancelled=engine.cancelled)
    except BaseException as exc:
        sink.emit(BuildDone(False, time.monotonic() - start, error=str(exc)))
        raise
    steps = tuple(o for i in sorted(outcomes) for o in outcomes[i])
    keyed = [s for s in steps if s.number is not None]
    duration = time.monotonic() - start
    sink.emit(BuildDone(True, duration, len(keyed), sum(s.status == "cached" for s in keyed)))
    results = {
        i: StageResult(i, lowered.build.stages[i].name, s.key, s.result, s.config, s.layers,
                       s.base)
        for i, s in states.items()
    }
    return SolveResult(lowered.build.target, results, steps, duration)


def solve(
    graph: StageGraph, worker: Worker, store: KeyStore, *,
    options: SolveOptions | None = None, sink: ProgressSink | None = None,
    sources: Sequence[CacheSource] | None = None,
) -> SolveResult:
    """Build the target of ``graph``: every needed stage, cached steps reused."""
    options = options or SolveOptions()
    lowered = lower_build(graph, worker, dockerfile=options.dockerfile)
    return solve_build(lowered, worker, store, options=options, sink=sink, sources=sources)


def plan(
    graph: StageGraph, worker: Worker, store: KeyStore, *,
    options: SolveOptions | None = None, sources: Sequence[CacheSource] | None = None,
) -> Plan:
    """Predict, without running anything, which steps a build would reuse or run and why."""
    options = options or SolveOptions()
    lowered = lower_build(graph, worker, dockerfile=options.dockerfile)
    engine = _engine(lowered, worker, store, options, NullSink(), sources, dry_run=True)
    _, outcomes = run_stages(lowered.build, engine.run_stage, jobs=1,
                             cancelled=threading.Event())
    labels = _numbering(lowered.build)[1]
    steps = []
    for i in sorted(outcomes):
        for o in outcomes[i]:
            if o.number is None:
                continue
            pred = engine.predictions.get((i, o.index))
            steps.append(StepPlan(
                number=o.number, stage=o.stage, index=o.index, text=o.text,
                label=labels[(i, o.index)],
                action="cached" if o.status == "cached" else "run", reason=o.reason,
                estimated_s=pred.estimated_s if pred else None,
                uncertain=pred.uncertain if pred else False,
            ))
    return Plan(tuple(steps))


def image_inputs(build: BuildDef) -> list[ImageInput]:
    """Every external image a build copies or mounts from (for the CLI's pre-pull)."""
    out: list[ImageInput] = []
    for stage in build.stages.values():
        for v in stage.vertices:
            out.extend(i for i in v.inputs if isinstance(i, ImageInput))
    return out
