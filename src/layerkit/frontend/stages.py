"""The stage graph: turns a parsed Dockerfile into stages, dependencies and build waves.

What BuildKit's ``dockerfile2llb.toDispatchState`` decides before building
anything, without I/O:

- global ARGs and the predefined platform args form the global scope; FROM
  lines (image and ``--platform``) are expanded with it;
- a stage is named by ``AS name`` (case-insensitive) or by its index;
- a stage depends on the earlier stage its FROM names, on the stages named by
  ``COPY --from`` (name or index) and ``RUN --mount=from=`` (name), and on
  those named by ONBUILD triggers it inherits from a stage it is built on;
  any other ``--from`` value is an external image;
- a reference to a later stage or to itself is an error; so is a duplicate
  stage name (BuildKit only lints it; see docs/frontend.md);
- the target (``--target``, else the last stage) and what it needs
  transitively are ``needed``; the rest is pruned;
- needed stages are ordered in waves: every stage in a wave depends only on
  earlier waves, so a wave's stages can run in parallel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from layerkit.dockerfile.ast import ParseResult
from layerkit.dockerfile.instructions import (
    ArgInstruction,
    CopyInstruction,
    Dockerfile,
    FromInstruction,
    Instruction,
    OnbuildInstruction,
    RunInstruction,
    parse_dockerfile,
)
from layerkit.dockerfile.shell import ShellLex
from layerkit.errors import FrontendError, LayerkitError, Location
from layerkit.fastclass import dataclass, field
from layerkit.frontend.args import (
    MetaArg,
    default_args,
    is_builtin_arg,
    proxy_env,
    resolve_meta_args,
)
from layerkit.frontend.platform import Platform, host_platform, parse_platform

if TYPE_CHECKING:
    from layerkit.frontend.dispatch import BaseImageConfig, Step

__all__ = ["Dependency", "Stage", "StageGraph", "build_stage_graph"]


@dataclass(frozen=True)
class Dependency:
    """Why a stage needs something: a stage index or an external image."""

    kind: str  # "from" | "copy" | "mount" | "onbuild-copy" | "onbuild-mount"
    stage: int | None  # index of the stage depended on; None for an image
    image: str | None  # external image reference when stage is None
    line: int


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` and its instructions, placed in the graph."""

    index: int
    name: str | None  # lower-cased ``AS`` name
    base: str  # the FROM image or stage name, after expanding global args
    base_stage: int | None  # index of the stage FROM names, if it names one
    platform: Platform | None  # from ``FROM --platform``
    from_instruction: FromInstruction
    instructions: tuple[Instruction, ...]
    onbuild_triggers: tuple[Instruction, ...]  # inherited from base_stage, run first
    deps: tuple[int, ...]  # stage indices, sorted
    dependencies: tuple[Dependency, ...]
    needed: bool
    used_args: frozenset[str] = frozenset()  # global args the FROM line used

    @property
    def display_name(self) -> str:
        return self.name or f"stage-{self.index}"

    @property
    def is_scratch(self) -> bool:
        return self.base_stage is None and self.base.lower() == "scratch"

    @property
    def external_images(self) -> tuple[str, ...]:
        return tuple(d.image for d in self.dependencies if d.image is not None)

    @property
    def location(self) -> Location:
        return self.from_instruction.location


@dataclass(frozen=True)
class StageGraph:
    """Stages, what the target needs, and the order to build it in."""

    stages: list[Stage]
    build_order: list[list[int]]  # waves of stage indices; a wave can run in parallel
    target: Stage
    unused_build_args: list[str]
    meta_args: list[MetaArg]
    global_args: dict[str, str]  # the global scope after the global ARGs
    build_args: dict[str, str]
    target_platform: Platform
    build_platform: Platform
    proxy_env: tuple[tuple[str, str], ...] = ()
    escape_token: str = "\\"
    filename: str = "Dockerfile"
    dockerfile: Dockerfile | None = field(default=None, repr=False, compare=False)

    def stage(self, ref: str | int) -> Stage:
        """A stage by index or (case-insensitive) name."""
        if isinstance(ref, int):
            return self.stages[ref]
        found = _find_by_name(self.stages, ref)
        if found is None:
            raise KeyError(ref)
        return found

    @property
    def needed_stages(self) -> list[Stage]:
        return [s for s in self.stages if s.needed]

    def steps(
        self, stage: Stage | int | str, *, base_configs: Mapping[str, BaseImageConfig] | None = None
    ) -> list[Step]:
        """Dispatch ``stage``: each instruction expanded, with the env and args in scope."""
        from layerkit.frontend.dispatch import dispatch_stage

        return dispatch_stage(self, stage, base_configs=base_configs)


def _find_by_name(stages: list[Stage], name: str) -> Stage | None:
    lowered = name.lower()
    for s in stages:
        if s.name == lowered:
            return s
    return None


def _error(message: str, location: Location | None, hint: str | None = None) -> FrontendError:
    return FrontendError(message, location=location, hint=hint)


@dataclass
class _Draft:
    index: int
    name: str | None
    base: str
    base_stage: int | None
    platform: Platform | None
    from_: FromInstruction
    instructions: tuple[Instruction, ...]
    used_args: frozenset[str]
    triggers: tuple[Instruction, ...] = ()
    deps: list[Dependency] = field(default_factory=list)


def build_stage_graph(
    result: ParseResult,
    *,
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
    platform: Platform | None = None,
    build_platform: Platform | None = None,
) -> StageGraph:
    """Build the stage graph of a parsed Dockerfile (pure: no file or network I/O)."""
    args = dict(build_args or {})
    dockerfile = parse_dockerfile(result)
    if not dockerfile.stages:
        raise _error(
            "dockerfile contains no stages to build", None,
            "add a FROM line; only ARG may come before the first FROM",
        )
    host = build_platform or host_platform()
    target_platform = platform or host
    lex = ShellLex(dockerfile.escape_token)

    last = dockerfile.stages[-1].from_
    target_stage_name = target or last.stage_name or "default"
    scope = default_args(target_platform, host, target_stage_name, args)
    meta = resolve_meta_args(dockerfile.meta_args, scope, args, lex)

    drafts = _draft_stages(dockerfile, scope, lex, host)
    for draft in drafts:
        _collect_deps(draft, drafts)

    if target is None:
        target_index = len(drafts) - 1
    else:
        named = [d for d in drafts if d.name == target.lower()]
        if not named:
            names = [d.name for d in drafts if d.name]
            hint = (
                "the stages are: " + ", ".join(names) if names
                else "this Dockerfile has no named stages; name one with FROM <image> AS <name>"
            )
            raise _error(f"target stage {target!r} could not be found", None, hint)
        target_index = named[0].index

    needed = _reachable(drafts, target_index)
    stages = [
        Stage(
            index=d.index, name=d.name, base=d.base, base_stage=d.base_stage,
            platform=d.platform, from_instruction=d.from_, instructions=d.instructions,
            onbuild_triggers=d.triggers,
            deps=tuple(sorted({x.stage for x in d.deps if x.stage is not None})),
            dependencies=tuple(d.deps), needed=d.index in needed, used_args=d.used_args,
        )
        for d in drafts
    ]
    return StageGraph(
        stages=stages,
        build_order=_waves(stages),
        target=stages[target_index],
        unused_build_args=_unused_build_args(args, meta, stages),
        meta_args=meta,
        global_args=dict(scope),
        build_args=args,
        target_platform=target_platform,
        build_platform=host,
        proxy_env=proxy_env(args),
        escape_token=dockerfile.escape_token,
        filename=dockerfile.filename,
        dockerfile=dockerfile,
    )


def _draft_stages(
    dockerfile: Dockerfile, scope: dict[str, str], lex: ShellLex, host: Platform
) -> list[_Draft]:
    drafts: list[_Draft] = []
    seen: dict[str, int] = {}
    for index, st in enumerate(dockerfile.stages):
        fr = st.from_
        res = lex.process_word_with_matches(fr.base_name, scope, location=fr.location)
        used = set(res.matched)
        if not res.result:
            raise _error(f"base name ({fr.base_name}) should not be blank", fr.location,
                         _unset_hint(res.unmatched))
        plat: Platform | None = None
        if fr.platform:
            pres = lex.process_word_with_matches(fr.platform, scope, location=fr.location)
            used |= pres.matched
            if not pres.result:
                raise _error(f"empty platform value from expression {fr.platform}", fr.location,
                             _unset_hint(pres.unmatched))
            try:
                plat = parse_platform(pres.result, host=host)
            except LayerkitError as exc:
                raise _error(f"failed to parse platform {fr.platform}: {exc.message}",
                             fr.location, exc.hint) from None
        if fr.stage_name is not None:
            if fr.stage_name in seen:
                raise _error(
                    f"duplicate stage name {fr.stage_name!r} (first defined as stage "
                    f"{seen[fr.stage_name]})", fr.location, "give each stage a unique AS name",
                )
            seen[fr.stage_name] = index
        base_stage = seen.get(res.result.lower())
        if base_stage == index:  # FROM x AS x: the name refers to an image, not itself
            base_stage = None
        if base_stage is None and res.result.lower() in _later_names(dockerfile, index):
            raise _error(
                f"FROM {res.result}: stage {res.result!r} is defined later in the Dockerfile",
                fr.location, "move that stage above this one; a stage can only build on an "
                "earlier stage",
            )
        drafts.append(_Draft(index, fr.stage_name, res.result, base_stage, plat, fr,
                             st.instructions, frozenset(used)))
    return drafts


def _later_names(dockerfile: Dockerfile, index: int) -> set[str]:
    return {s.from_.stage_name for s in dockerfile.stages[index + 1:] if s.from_.stage_name}


def _unset_hint(unmatched: frozenset[str]) -> str | None:
    if unmatched:
        names = ", ".join(sorted(unmatched))
        return (f"{names} is not set: declare it with ARG before the first FROM or pass "
                "--build-arg")
    return None


def _resolve_ref(
    ref: str, draft: _Draft, drafts: list[_Draft], instr: Instruction, *, allow_index: bool
) -> int | None:
    """The stage index ``ref`` names, or None for an external image."""
    if allow_index and ref.isdigit():
        idx = int(ref)
        if idx >= len(drafts):
            raise _error(f"invalid stage index {idx}", instr.location,
                         f"this Dockerfile has stages 0 to {len(drafts) - 1}")
        target: _Draft | None = drafts[idx]
    else:
        target = next((d for d in drafts if d.name is not None and d.name == ref.lower()), None)
    if target is None:
        return None
    if target.index == draft.index:
        raise _error(f"circular dependency detected on stage: {draft.name or draft.index}",
                     instr.location, "a stage cannot copy or mount from itself")
    if target.index > draft.index:
        current = draft.name or f"stage-{draft.index}"
        raise _error(
            f"cannot copy from stage {ref!r}, it needs to be defined before current stage "
            f"{current!r}", instr.location, "move the stage it names above this one",
        )
    return target.index


def _instruction_deps(
    instr: Instruction, draft: _Draft, drafts: list[_Draft], prefix: str
) -> list[Dependency]:
    out: list[Dependency] = []
    if isinstance(instr, CopyInstruction) and instr.from_:
        idx = _resolve_ref(instr.from_, draft, drafts, instr, allow_index=True)
        out.append(Dependency(prefix + "copy", idx, None if idx is not None else instr.from_,
                              instr.start_line))
    elif isinstance(instr, RunInstruction):
        for ref in instr.mount_sources():
            idx = _resolve_ref(ref, draft, drafts, instr, allow_index=False)
            out.append(Dependency(prefix + "mount", idx, None if idx is not None else ref,
                                  instr.start_line))
    return out


def _collect_deps(draft: _Draft, drafts: list[_Draft]) -> None:
    if draft.base_stage is not None:
        draft.deps.append(Dependency("from", draft.base_stage, None, draft.from_.start_line))
        base = drafts[draft.base_stage]
        draft.triggers = tuple(
            i.trigger for i in base.instructions if isinstance(i, OnbuildInstruction)
        )
    for trig in draft.triggers:
        draft.deps.extend(_instruction_deps(trig, draft, drafts, "onbuild-"))
    for instr in draft.instructions:
        draft.deps.extend(_instruction_deps(instr, draft, drafts, ""))


def _reachable(drafts: list[_Draft], start: int) -> set[int]:
    seen: set[int] = set()
    todo = [start]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        todo.extend(d.stage for d in drafts[i].deps if d.stage is not None)
    return seen


def _waves(stages: list[Stage]) -> list[list[int]]:
    remaining = {s.index for s in stages if s.needed}
    placed: set[int] = set()
    waves: list[list[int]] = []
    while remaining:
        wave = sorted(i for i in remaining if all(d in placed for d in stages[i].deps))
        if not wave:  # cannot happen: deps always point to earlier stages
            raise _error("circular dependency between stages", None)
        waves.append(wave)
        placed.update(wave)
        remaining.difference_update(wave)
    return waves


def _declared_args(instrs: tuple[Instruction, ...]) -> set[str]:
    names: set[str] = set()
    for i in instrs:
        if isinstance(i, ArgInstruction):
            names.update(a.name for a in i.args)
    return names


def _unused_build_args(
    build_args: Mapping[str, str], meta: list[MetaArg], stages: list[Stage]
) -> list[str]:
    """Build args no global ARG and no ARG of a needed stage declares."""
    consumed = {m.name for m in meta}
    for s in stages:
        if s.needed:
            consumed |= _declared_args(s.instructions) | _declared_args(s.onbuild_triggers)
    return sorted(k for k in build_args if k not in consumed and not is_builtin_arg(k))

