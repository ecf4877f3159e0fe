"""Dispatch: walks one stage's instructions, turning each into an expanded :class:`Step`.

"Decide, then do": this is the decide half. For each instruction it computes
what BuildKit's dispatcher computes before it emits an op, with no I/O:

- the instruction with its variables expanded
  (:func:`~layerkit.dockerfile.expand.expand_instruction`) using the
  environment in effect at that point;
- that environment: the base image's ENV (plus a default PATH when the image
  has none), then every ENV and every ARG with a value, the later one winning;
- the ARGs declared so far in the stage (BuildKit ``buildArgs``) and which
  of them the step uses, and the names it referenced that are not set;
- WORKDIR, USER and SHELL in effect.

ARG rules (dockerfile2llb ``dispatchArg``): a ``--build-arg`` value wins over
the default, and the default is then not evaluated; a bare ``ARG NAME`` takes
its value from the global scope (global ARGs and the predefined platform
args) if there is one there; an ARG without any value is declared but absent
from the environment. A stage built ``FROM`` an earlier stage starts from that
stage's final state, ARG values included, as BuildKit's LLB state does.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from layerkit.dockerfile.expand import expand_instruction
from layerkit.dockerfile.instructions import (
    ArgDecl,
    ArgInstruction,
    EnvInstruction,
    Instruction,
    RunInstruction,
    ShellInstruction,
    UserInstruction,
    WorkdirInstruction,
)
from layerkit.dockerfile.shell import ShellLex
from layerkit.fastclass import dataclass, field, replace
from layerkit.frontend.platform import Platform
from layerkit.frontend.stages import Stage, StageGraph

__all__ = ["DEFAULT_PATH", "BaseImageConfig", "StageState", "Step", "dispatch_stage"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ("/bin/sh", "-c")


@dataclass(frozen=True)
class BaseImageConfig:
    """What dispatch needs from a base image's config (the solver supplies it)."""

    env: tuple[tuple[str, str], ...] = ()
    working_dir: str = ""
    user: str = ""
    shell: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One instruction of a stage, decided: expanded, with its scope."""

    stage: int
    index: int  # position in the stage, ONBUILD triggers first
    instruction: Instruction  # expanded
    original: Instruction  # as typed, unexpanded
    env: tuple[tuple[str, str], ...]  # in effect when the instruction runs
    args_in_scope: tuple[tuple[str, str | None], ...]  # ARGs declared so far, in order
    used_args: frozenset[str]  # build args this step depends on
    undefined: frozenset[str] = frozenset()  # referenced variables that are not set
    workdir: str = "/"
    user: str = ""
    shell: tuple[str, ...] = DEFAULT_SHELL
    platform: Platform | None = None
    is_onbuild: bool = False
    proxy_env: tuple[tuple[str, str], ...] = ()  # RUN only: passed outside the cache key


@dataclass
class StageState:
    """The mutable state threaded through one stage's dispatch."""

    env: dict[str, str] = field(default_factory=dict)
    args: list[tuple[str, str | None]] = field(default_factory=list)
    workdir: str = "/"
    user: str = ""
    shell: tuple[str, ...] = DEFAULT_SHELL

    def copy(self) -> StageState:
        return StageState(dict(self.env), list(self.args), self.workdir, self.user, self.shell)

    def set_env(self, key: str, value: str) -> None:
        # llb.EnvList.AddOrReplace: the key moves to the end.
        self.env.pop(key, None)
        self.env[key] = value

    def arg_names(self) -> set[str]:
        return {name for name, _ in self.args}


def _initial_state(
    graph: StageGraph, stage: Stage, base_configs: Mapping[str, BaseImageConfig],
    cache: dict[int, StageState],
) -> StageState:
    if stage.base_stage is not None:
        return _final_state(graph, graph.stages[stage.base_stage], base_configs, cache).copy()
    config = base_configs.get(stage.base, BaseImageConfig())
    state = StageState()
    for key, value in config.env:
        state.set_env(key, value)
    if "PATH" not in state.env:  # BuildKit always sets PATH
        state.env["PATH"] = DEFAULT_PATH
    state.workdir = _join_workdir("/", config.working_dir) if config.working_dir else "/"
    state.user = config.user
    state.shell = config.shell or DEFAULT_SHELL
    return state


def _final_state(
    graph: StageGraph, stage: Stage, base_configs: Mapping[str, BaseImageConfig],
    cache: dict[int, StageState],
) -> StageState:
    if stage.index not in cache:
        state = _initial_state(graph, stage, base_configs, cache)
        _run(graph, stage, state, None)
        cache[stage.index] = state
    return cache[stage.index]


def _join_workdir(current: str, path: str) -> str:
    return posixpath.normpath(posixpath.join("/", current or "/", path))


def dispatch_stage(
    graph: StageGraph,
    stage: Stage | int | str,
    *,
    base_configs: Mapping[str, BaseImageConfig] | None = None,
) -> list[Step]:
    """Decide every step of ``stage``; pure, and cheap enough for ``plan``."""
    st = stage if isinstance(stage, Stage) else graph.stage(stage)
    configs = base_configs or {}
    state = _initial_state(graph, st, configs, {})
    steps: list[Step] = []
    _run(graph, st, state, steps)
    return steps


def _run(graph: StageGraph, stage: Stage, state: StageState, steps: list[Step] | None) -> None:
    lex = ShellLex(graph.escape_token)
    instructions = [(i, True) for i in stage.onbuild_triggers]
    instructions += [(i, False) for i in stage.instructions]
    platform = stage.platform or graph.target_platform
    for index, (instr, onbuild) in enumerate(instructions):
        env_before = tuple(state.env.items())
        args_before = tuple(state.args)
        workdir, user, shell = state.workdir, state.user, state.shell
        if isinstance(instr, ArgInstruction):
            expanded, used, undefined = _dispatch_arg(instr, state, graph, lex)
        else:
            exp = expand_instruction(instr, state.env, escape_token=graph.escape_token)
            expanded, undefined = exp.instruction, set(exp.unmatched)
            used = set(exp.matched & state.arg_names())
            _apply(expanded, state)
        proxies: tuple[tuple[str, str], ...] = ()
        if isinstance(expanded, RunInstruction):
            # Every ARG with a value is in the RUN's environment, so it is used.
            used = used | {name for name, value in state.args if value is not None}
            proxies = tuple((k, v) for k, v in graph.proxy_env if k not in state.env)
        if steps is not None:
            steps.append(Step(
                stage=stage.index, index=index, instruction=expanded, original=instr,
                env=env_before, args_in_scope=args_before, used_args=frozenset(used),
                undefined=frozenset(undefined), workdir=workdir, user=user, shell=shell,
                platform=platform, is_onbuild=onbuild, proxy_env=proxies,
            ))


def _apply(instr: Instruction, state: StageState) -> None:
    if isinstance(instr, EnvInstruction):
        for pair in instr.pairs:
            state.set_env(pair.key, pair.value)
    elif isinstance(instr, WorkdirInstruction):
        state.workdir = _join_workdir(state.workdir, instr.path)
    elif isinstance(instr, UserInstruction):
        state.user = instr.user
    elif isinstance(instr, ShellInstruction):
        state.shell = instr.shell


def _dispatch_arg(
    instr: ArgInstruction, state: StageState, graph: StageGraph, lex: ShellLex
) -> tuple[Instruction, set[str], set[str]]:
    """``ARG name[=default]``: see the module docstring for the rules."""
    used: set[str] = set()
    undefined: set[str] = set()
    decls: list[ArgDecl] = []
    for decl in instr.args:
        value: str | None
        if decl.name in graph.build_args:
            value = graph.build_args[decl.name]
            used.add(decl.name)
        elif decl.default is not None:
            res = lex.process_word_with_matches(decl.default, state.env, location=instr.location)
            value = res.result
            used |= res.matched & state.arg_names()
            undefined |= res.unmatched
        else:
            value = graph.global_args.get(decl.name)
            if value is not None:
                used.add(decl.name)
        if value is not None:
            state.set_env(decl.name, value)
        state.args.append((decl.name, value))
        decls.append(ArgDecl(decl.name, value))
    return replace(instr, args=tuple(decls)), used, undefined
