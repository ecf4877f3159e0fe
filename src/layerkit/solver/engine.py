"""The step engine: walks one stage's vertices, computing keys, probing the cache and running.

Per keyed vertex (docs/cache-keys.md):

1. definition key = op base digest + one key per dep (parent key, source
   stage key, image digest, context checksum, URL content digest);
2. probe it in every cache source; a record whose result is gone is a miss;
3. on a miss, if the op reads paths from another stage's result, compute the
   content key (checksums of those paths) and probe it;
4. on a miss, explain it against the closest earlier record of the same step,
   run the op through the worker and record the key with its plain inputs.

With ``dry_run`` (``plan``) step 4 runs nothing: the step is predicted to run
and its key is assumed to be the definition key. Where a content key needs
the result of a stage that will rebuild, the prediction is marked uncertain.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from layerkit.cache.explain import explain_miss
from layerkit.cache.keys import (
    content_key,
    definition_key,
    forced_key,
    image_key,
)
from layerkit.cache.keystore import KeyStore, StepRecord
from layerkit.errors import BuildError, LayerkitError, Location
from layerkit.fastclass import dataclass, field
from layerkit.graph.model import (
    ContextInput,
    ImageInput,
    Input,
    ParentInput,
    StageDef,
    StageInput,
    Vertex,
)
from layerkit.graph.ops import ConfigOp, Dep, ExecOp, FileOp, SourceOp
from layerkit.progress.events import (
    ProgressSink,
    StepCached,
    StepCanceled,
    StepDone,
    StepError,
    StepOutput,
    StepRunning,
    StepStarted,
)
from layerkit.solver.cachesource import CacheSource
from layerkit.solver.imageconfig import (
    ImageConfig,
    apply_change,
    scratch_config,
    stage_start,
)
from layerkit.solver.result import StepOutcome
from layerkit.solver.worker import (
    BaseState,
    ExecContext,
    ExecFailed,
    InputValue,
    StepResult,
    Worker,
)

CONFIG_ONLY = "metadata only: changes the image config"


class Canceled(Exception):
    """Raised inside a stage when another stage failed first."""


@dataclass
class Prediction:
    """What ``plan`` expects of a step."""

    estimated_s: float | None = None
    uncertain: bool = False


@dataclass
class StageState:
    """A stage's final state as the engine leaves it."""

    key: str
    result: StepResult | None
    config: ImageConfig
    ran: bool  # its last keyed step ran (or, in a plan, will run)
    uncertain: bool = False
    layers: tuple[StepResult, ...] = ()
    number: int | None = None  # the #N of its last keyed step
    base: StepResult | None = None  # the root FROM's result: what ``layers[0]`` is a diff of


@dataclass
class _Out:
    key: str
    result: StepResult | None
    ran: bool
    number: int | None
    uncertain: bool = False


@dataclass
class Engine:
    """Shared state of one solve (or plan); ``run_stage`` is called once per stage."""

    worker: Worker
    store: KeyStore
    sources: Sequence[CacheSource]
    dockerfile: str
    sink: ProgressSink
    numbers: Mapping[tuple[int, int], int]  # (stage, index) → #N
    labels: Mapping[tuple[int, int], str]  # (stage, index) → "[name i/n] TEXT"
    bases: Mapping[str, BaseState]
    no_cache: bool = False
    no_cache_filter: frozenset[str] = frozenset()
    dry_run: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)
    predictions: dict[tuple[int, int], Prediction] = field(default_factory=dict)
    _images: dict[str, StepResult | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the stage walk ------------------------------------------------------------

    def run_stage(
        self, stage: StageDef, states: Mapping[int, StageState]
    ) -> tuple[StageState, list[StepOutcome]]:
        outcomes: list[StepOutcome] = []
        forced = self.no_cache or self._filtered(stage)
        parent: _Out | None = None
        config = ImageConfig()
        layers: list[StepResult] = []
        base: StepResult | None = None
        for v in stage.vertices:
            if self.cancelled.is_set():
                raise Canceled
            if isinstance(v.op, SourceOp):
                config = self._start_config(v.op, v.inputs, states)
            if isinstance(v.op, ConfigOp):
                outcomes.append(StepOutcome(stage.label, stage.index, v.index, v.text,
                                            "cached", CONFIG_ONLY, 0.0))
            else:
                try:
                    parent, outcome = self._step(stage, v, parent, states, config, forced)
                except LayerkitError as exc:
                    # e.g. a COPY source missing from the context (found while keying):
                    # say which Dockerfile line asked for it.
                    if exc.location is None:
                        exc.location = Location(self.dockerfile, v.line, text=v.text)
                    raise
                outcomes.append(outcome)
                if isinstance(v.op, SourceOp):
                    base = parent.result
                elif parent.result is not None:
                    layers.append(parent.result)
            for change in v.config:
                config = apply_change(config, change)
            config = config.with_history(v.history)
        assert parent is not None  # every stage starts with a FROM
        if stage.base_stage is not None:
            from_state = states[stage.base_stage]
            layers = [*from_state.layers, *layers]
            base = from_state.base
        return StageState(parent.key, parent.result, config, parent.ran, parent.uncertain,
                          tuple(layers), parent.number, base), outcomes

    def _filtered(self, stage: StageDef) -> bool:
        names = {str(stage.index), stage.label}
        if stage.name:
            names.add(stage.name)
        return bool(names & {n.lower() for n in self.no_cache_filter})

    def _start_config(
        self, op: SourceOp, inputs: Sequence[Input], states: Mapping[int, StageState]
    ) -> ImageConfig:
        if op.kind == "image":
            return stage_start(self.bases[op.ref].config)
        if op.kind == "stage" and inputs and isinstance(inputs[0], StageInput):
            return stage_start(states[inputs[0].stage].config)
        return scratch_config()

    # -- one step ------------------------------------------------------------------

    def _step(
        self, stage: StageDef, v: Vertex, parent: _Out | None,
        states: Mapping[int, StageState], config: ImageConfig, forced: bool,
    ) -> tuple[_Out, StepOutcome]:
        if isinstance(v.op, SourceOp) and v.op.kind == "stage":
            return self._from_stage(stage, v, states)
        number = self.numbers[(v.stage, v.index)]
        label = self.labels[(v.stage, v.index)]
        step_id = f"{self.dockerfile}#{stage.name or stage.index}#{v.index}"
        if not self.dry_run:
            self.sink.emit(StepStarted(number, label, stage.label, v.index))
        assert not isinstance(v.op, ConfigOp)
        cm = v.op.cache_map()
        files: dict[str, str] = {}
        uncertain: list[str] = []
        dep_keys = [self._dep_key(v.inputs[d.input], d, parent, states, files, uncertain)
                    for d in cm.deps]
        def_key = definition_key(cm, dep_keys)
        inputs: dict[str, Any] = dict(v.record)
        if parent is not None:
            inputs["parent"] = parent.key
            inputs["parent_label"] = f"step {parent.number}"
        if files:
            inputs["files"] = files
        # FROM never re-pulls for --no-cache: the digest already pins its content.
        forced = forced and not isinstance(v.op, SourceOp)

        hit: tuple[StepRecord, CacheSource] | None = None
        ckey: str | None = None
        if not forced:
            hit = self._probe(def_key, by_content=False)
        stage_deps = [d for d in cm.deps
                      if d.by_content and isinstance(v.inputs[d.input], StageInput)]
        if hit is None and stage_deps:
            values = [self._content_value(v.inputs[d.input], d, k, states, files, uncertain)
                      for d, k in zip(cm.deps, dep_keys, strict=True)]
            if files:
                inputs["files"] = files
            if not any(x is None for x in values):
                ckey = content_key(cm, [x for x in values if x is not None])
                if not forced:
                    hit = self._probe(ckey, by_content=True)

        if hit is not None:
            return self._cached(v, stage, number, step_id, def_key, ckey, inputs, hit)

        parent_ran = parent is not None and parent.ran
        inputs_for_explain = {**inputs, "parent_ran": parent_ran}
        if forced:
            reason = "--no-cache" if self.no_cache else f"--no-cache-filter {stage.label}"
        elif uncertain:
            reason = uncertain[0]
        else:
            closest = self.store.closest(step_id)
            reason = explain_miss(closest.inputs if closest else None, inputs_for_explain)
        out_key = forced_key(def_key, os.urandom(16).hex()) if forced else def_key
        is_uncertain = bool(uncertain) or (parent is not None and parent.uncertain)

        if self.dry_run:
            closest = self.store.closest(step_id)
            self.predictions[(v.stage, v.index)] = Prediction(
                closest.duration_s if closest else None, is_uncertain)
            out = _Out(out_key, None, True, number, is_uncertain)
            return out, StepOutcome(stage.label, stage.index, v.index, v.text, "ran", reason,
                                    0.0, number, def_key)

        self.sink.emit(StepRunning(number, reason))
        start = time.monotonic()
        result = self._execute(v, label, parent, states, config, forced, number)
        duration = time.monotonic() - start
        self.store.put(
            key=def_key, content_key=ckey, step_id=step_id, inputs=inputs,
            result={"result": result.to_json() if result else None, "origin": out_key},
            duration_s=duration,
        )
        self.sink.emit(StepDone(number, duration))
        out = _Out(out_key, result, True, number)
        return out, StepOutcome(stage.label, stage.index, v.index, v.text, "ran", reason,
                                duration, number, def_key)

    def _from_stage(
        self, stage: StageDef, v: Vertex, states: Mapping[int, StageState]
    ) -> tuple[_Out, StepOutcome]:
        """``FROM <stage>``: nothing to do; the step is that stage's result, unnumbered."""
        inp = v.inputs[0]
        assert isinstance(inp, StageInput)
        st = states[inp.stage]
        out = _Out(st.key, st.result, st.ran, st.number, st.uncertain)
        reason = f"stage {inp.label} was rebuilt" if st.ran else ""
        return out, StepOutcome(stage.label, stage.index, v.index, v.text,
                                "ran" if st.ran else "cached", reason, 0.0, None, st.key)

    def _cached(
        self, v: Vertex, stage: StageDef, number: int, step_id: str, def_key: str,
        ckey: str | None, inputs: Mapping[str, Any], hit: tuple[StepRecord, CacheSource],
    ) -> tuple[_Out, StepOutcome]:
        rec, source = hit
        origin = str(rec.result.get("origin") or rec.key)
        raw = rec.result.get("result")
        result = StepResult.from_json(raw) if raw else None
        via_content = rec.key != def_key
        if not self.dry_run:
            self.store.touch(rec.key, step_id)
            if via_content:
                # Remember the new definition key too, so the next build hits directly.
                self.store.put(key=def_key, content_key=ckey, step_id=step_id, inputs=inputs,
                               result=dict(rec.result), duration_s=rec.duration_s)
            self.sink.emit(StepCached(number, source.name))
        else:
            self.predictions[(v.stage, v.index)] = Prediction(0.0, False)
        reason = "same source content as before" if via_content else ""
        out = _Out(origin, result, False, number)
        return out, StepOutcome(stage.label, stage.index, v.index, v.text, "cached", reason,
                                0.0, number, rec.key, source.name)

    def _probe(self, key: str, *, by_content: bool) -> tuple[StepRecord, CacheSource] | None:
        for source in self.sources:
            rec = source.get_by_content(key) if by_content else source.get(key)
            if rec is None:
                continue
            raw = rec.result.get("result")
            if raw is None or self.worker.has_result(StepResult.from_json(raw)):
                return rec, source
        return None

    # -- key parts -----------------------------------------------------------------

    def _dep_key(
        self, inp: Input, dep: Dep, parent: _Out | None, states: Mapping[int, StageState],
        files: dict[str, str], uncertain: list[str],
    ) -> str:
        if isinstance(inp, ParentInput):
            if parent is None:
                raise BuildError("internal: a step has no parent", reference="solver-bug")
            return parent.key
        if isinstance(inp, StageInput):
            state = states[inp.stage]
            if state.uncertain:
                uncertain.append(f"source stage {inp.label} may rebuild")
            return state.key
        if isinstance(inp, ImageInput):
            return image_key(self.bases[inp.ref].digest)
        if isinstance(inp, ContextInput):
            cs = self.worker.checksum_context(
                dep.selectors or (".",), dep.excludes, follow_links=dep.follow_links,
                context=inp.name,
            )
            files.update(cs.files)
            return cs.digest
        # UrlInput
        if inp.checksum:
            files[inp.url] = inp.checksum
            return inp.checksum
        if self.dry_run:
            uncertain.append(f"remote file {inp.url} may have changed")
            return "unknown:" + inp.url
        digest = self.worker.checksum_url(inp.url)
        files[inp.url] = digest
        return digest

    def _content_value(
        self, inp: Input, dep: Dep, key: str, states: Mapping[int, StageState],
        files: dict[str, str], uncertain: list[str],
    ) -> str | None:
        if not (dep.by_content and isinstance(inp, StageInput)):
            return key
        state = states[inp.stage]
        if self.dry_run and state.ran:
            uncertain.append(
                f"source stage {inp.label} will rebuild (may still hit if its output is "
                "unchanged)"
            )
            return None
        cs = self.worker.checksum_paths(state.result, dep.selectors or ("/",), dep.excludes)
        files.update({f"{inp.label}:{p}": d for p, d in cs.files.items()})
        return cs.digest

    # -- execution -----------------------------------------------------------------

    def _input_values(
        self, v: Vertex, parent: _Out | None, states: Mapping[int, StageState]
    ) -> list[InputValue]:
        values: list[InputValue] = []
        for inp in v.inputs:
            if isinstance(inp, ParentInput):
                values.append(parent.result if parent else None)
            elif isinstance(inp, StageInput):
                values.append(states[inp.stage].result)
            elif isinstance(inp, ImageInput):
                values.append(self._image_result(inp))
            else:
                values.append(inp)
        return values

    def _image_result(self, inp: ImageInput) -> StepResult | None:
        with self._lock:
            if inp.ref not in self._images:
                base = self.bases[inp.ref]
                op = SourceOp("image", ref=inp.ref, digest=base.digest, platform=inp.platform)
                self._images[inp.ref] = self.worker.load_source(op)
            return self._images[inp.ref]

    def _execute(
        self, v: Vertex, label: str, parent: _Out | None, states: Mapping[int, StageState],
        config: ImageConfig, forced: bool, number: int,
    ) -> StepResult | None:
        start = time.monotonic()
        ctx = ExecContext(
            label=label, config=config, cancelled=self.cancelled, no_cache=forced,
            on_output=lambda line: self.sink.emit(
                StepOutput(number, line, time.monotonic() - start)),
        )
        try:
            if isinstance(v.op, SourceOp):
                if v.op.kind == "stage" and v.inputs and isinstance(v.inputs[0], StageInput):
                    return states[v.inputs[0].stage].result
                return self.worker.load_source(v.op)
            values = self._input_values(v, parent, states)
            parent_result = parent.result if parent else None
            if isinstance(v.op, ExecOp):
                return self.worker.run_exec(parent_result, v.op, values, ctx)
            if isinstance(v.op, FileOp):
                return self.worker.run_file(parent_result, v.op, values, ctx)
        except ExecFailed as exc:
            if self.cancelled.is_set():
                self.sink.emit(StepCanceled(number))
                raise Canceled from exc
            self.sink.emit(StepError(number, exc.message, exc.command, exc.exit_code,
                                     tuple(exc.output_tail)))
            raise _located(exc, v, self.dockerfile, label) from exc
        except BuildError as exc:
            self.sink.emit(StepError(number, exc.message))
            raise _located(exc, v, self.dockerfile, label) from exc
        except Exception as exc:
            # A worker bug or an OS error: still say which step it happened in.
            self.sink.emit(StepError(number, f"{type(exc).__name__}: {exc}"))
            raise
        raise BuildError(f"internal: no way to run {type(v.op).__name__}",
                         reference="solver-bug")


def _located(exc: BuildError, v: Vertex, dockerfile: str, label: str) -> BuildError:
    """The same error, now saying which step failed and where it is in the Dockerfile."""
    loc = Location(dockerfile, v.line, text=v.text)
    if isinstance(exc, ExecFailed):
        new: BuildError = ExecFailed(
            f"{label}: {exc.message}", command=exc.command, exit_code=exc.exit_code,
            output_tail=exc.output_tail, hint=exc.hint,
        )
    else:
        new = BuildError(f"{label}: {exc.message}", hint=exc.hint, reference=exc.reference)
    new.location = exc.location or loc
    return new


