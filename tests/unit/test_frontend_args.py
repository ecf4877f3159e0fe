"""Build-arg scoping and dispatch: global ARGs, predefined args, ARG/ENV precedence."""

from __future__ import annotations

import pytest

from layerkit.dockerfile.instructions import CopyInstruction, EnvInstruction, RunInstruction
from layerkit.dockerfile.parser import parse
from layerkit.errors import DockerfileError
from layerkit.frontend import (
    BaseImageConfig,
    Platform,
    StageGraph,
    Step,
    build_stage_graph,
    dispatch_stage,
)
from layerkit.frontend.dispatch import DEFAULT_PATH

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")


def graph(text: str, **kw: object) -> StageGraph:
    kw.setdefault("platform", AMD64)
    return build_stage_graph(parse(text), build_platform=AMD64, **kw)  # type: ignore[arg-type]


def env_of(step: Step) -> dict[str, str]:
    return dict(step.env)


def last_run_env(text: str, **kw: object) -> dict[str, str]:
    g = graph(text, **kw)
    steps = g.steps(g.target)
    runs = [s for s in steps if isinstance(s.instruction, RunInstruction)]
    return env_of(runs[-1])


def test_global_arg_in_from_and_build_arg_override() -> None:
    text = "ARG tag=nosuchtag\nFROM busybox:${tag}\n"
    assert graph(text).target.base == "busybox:nosuchtag"
    assert graph(text, build_args={"tag": "latest"}).target.base == "busybox:latest"


def test_global_arg_error_only_when_evaluated() -> None:
    text = 'ARG FOO=${FOO:?"custom error"}\nFROM busybox\n'
    with pytest.raises(DockerfileError) as info:
        graph(text)
    assert "custom error" in info.value.message
    assert graph(text, build_args={"FOO": "bar"}).meta_args[0].value == "bar"


def test_stage_arg_default_not_evaluated_when_build_arg_given() -> None:
    text = 'FROM busybox\nARG FOO\nARG BAR=${FOO:?"foo missing"}\nRUN true\n'
    with pytest.raises(DockerfileError):
        last_run_env(text)
    assert last_run_env(text, build_args={"FOO": "x"})["BAR"] == "x"
    assert last_run_env(text, build_args={"BAR": "given"})["BAR"] == "given"


def test_global_arg_needs_redeclaration_in_stage() -> None:
    text = "ARG V=1.0\nFROM alpine\nRUN echo $V\nARG V\nRUN echo $V\n"
    g = graph(text)
    first, _, second = g.steps(0)
    assert "V" not in env_of(first)
    assert env_of(second)["V"] == "1.0"
    assert second.used_args == {"V"}


def test_multi_args_with_quotes_and_references() -> None:
    text = (
        'ARG a1="foo bar" a2=box\n'
        "FROM busybox\n"
        "ARG a1\nARG a2\n"
        'ARG a3="$a2-foo" a4=123\n'
        "ARG a5='456'\n"
        "RUN echo -n $a1:$a3:$a4 $a5 > /out\n"
    )
    env = last_run_env(text)
    assert (env["a1"], env["a2"], env["a3"], env["a4"], env["a5"]) == (
        "foo bar", "box", "box-foo", "123", "456")


def test_quoted_meta_args() -> None:
    text = 'ARG a1="box"\nARG a2="$a1-foo"\nFROM busybox\nARG a2\nARG a3="bar-$a2"\nRUN x\n'
    assert last_run_env(text)["a3"] == "bar-box-foo"


def test_platform_args_global_and_after_declaration() -> None:
    text = "FROM --platform=$BUILDPLATFORM golang AS b\nRUN x\nARG TARGETARCH\nRUN y\n"
    g = graph(text, platform=ARM64)
    before, _, after = g.steps(0)
    assert "TARGETARCH" not in env_of(before)
    assert env_of(after)["TARGETARCH"] == "arm64"
    assert g.stages[0].platform == AMD64  # BUILDPLATFORM
    assert g.global_args["TARGETPLATFORM"] == "linux/arm64"
    assert g.global_args["BUILDOS"] == "linux"
    assert g.global_args["TARGETVARIANT"] == ""


def test_target_stage_arg() -> None:
    text = "FROM a AS foo\nARG TARGETSTAGE\nRUN x\nFROM b AS final\nARG TARGETSTAGE\nRUN y\n"
    assert last_run_env(text)["TARGETSTAGE"] == "final"
    g = graph(text, target="foo")
    assert env_of(g.steps("foo")[-1])["TARGETSTAGE"] == "foo"
    unnamed = "FROM a\nARG TARGETSTAGE\nRUN x\n"
    assert last_run_env(unnamed)["TARGETSTAGE"] == "default"


def test_arg_without_value_absent_empty_default_present() -> None:
    env = last_run_env("FROM busybox\nARG FOO\nARG BAR=\nRUN env\n")
    assert "FOO" not in env
    assert env["BAR"] == ""


def test_env_after_arg_overrides() -> None:
    text = "FROM a\nARG V=arg\nENV V=env\nRUN x\n"
    assert last_run_env(text, build_args={"V": "cli"})["V"] == "env"


def test_arg_after_env_wins_like_buildkit_llb_state() -> None:
    # BuildKit adds each ARG value to the LLB state's env, so the later one wins.
    assert last_run_env("FROM a\nENV V=env\nARG V=arg\nRUN x\n")["V"] == "arg"


def test_env_expands_with_state_before_the_instruction() -> None:
    steps = graph("FROM a\nENV A=1\nENV A=2 B=$A\nRUN x\n").steps(0)
    assert env_of(steps[-1])["B"] == "1"


def test_default_env_with_empty_build_arg() -> None:
    text = 'FROM busybox\nARG my_arg\nENV my_arg "my_arg=${my_arg:-def_val}"\nRUN x\n'
    assert last_run_env(text)["my_arg"] == "my_arg=def_val"
    assert last_run_env(text, build_args={"my_arg": ""})["my_arg"] == "my_arg=def_val"
    assert last_run_env(text, build_args={"my_arg": "override"})["my_arg"] == "my_arg=override"


def test_prefix_removal_in_from() -> None:
    text = "ARG image=idlebox\nFROM busy${image#idle}\n"
    assert graph(text).target.base == "busybox"


def test_proxy_args_usable_without_declaration_and_outside_env() -> None:
    args = {"HTTP_PROXY": "http://p:3128", "no_proxy": "local"}
    g = graph("FROM a\nRUN curl x\n", build_args=args)
    run = g.steps(0)[-1]
    assert "HTTP_PROXY" not in env_of(run)
    assert dict(run.proxy_env) == args
    assert run.used_args == frozenset()
    assert g.unused_build_args == []


def test_declared_proxy_arg_enters_env_and_key() -> None:
    g = graph("FROM a\nARG HTTP_PROXY\nRUN curl x\n", build_args={"HTTP_PROXY": "http://p"})
    run = g.steps(0)[-1]
    assert env_of(run)["HTTP_PROXY"] == "http://p"
    assert "HTTP_PROXY" in run.used_args
    assert run.proxy_env == ()


def test_unused_build_args_reported_sorted() -> None:
    text = "ARG GLOBAL\nFROM a AS pruned\nARG ONLY_PRUNED\nFROM b\nARG USED\nRUN x\n"
    g = graph(text, build_args={"USED": "1", "GLOBAL": "1", "ONLY_PRUNED": "1", "ZZ": "1",
                                "AA": "2", "BUILDKIT_INLINE_CACHE": "1", "TARGETARCH": "x"})
    assert g.unused_build_args == ["AA", "ONLY_PRUNED", "ZZ"]


def test_used_args_per_step() -> None:
    text = "FROM a\nARG SRC=app DST=/opt VERSION=1\nCOPY $SRC $DST\nENV X=1\nRUN make\n"
    steps = graph(text).steps(0)
    copy, env, run = steps[1], steps[2], steps[3]
    assert isinstance(copy.instruction, CopyInstruction)
    assert copy.instruction.sources == ("app",) and copy.instruction.dest == "/opt"
    assert copy.used_args == {"SRC", "DST"}
    assert env.used_args == frozenset()
    assert run.used_args == {"SRC", "DST", "VERSION"}
    assert run.args_in_scope == (("SRC", "app"), ("DST", "/opt"), ("VERSION", "1"))


def test_undefined_variables_reported() -> None:
    steps = graph("FROM a\nCOPY $NOPE /x\n").steps(0)
    assert steps[0].undefined == {"NOPE"}


def test_path_default_and_base_config() -> None:
    g = graph("FROM scratch\nRUN x\n")
    assert env_of(g.steps(0)[0])["PATH"] == DEFAULT_PATH
    cfg = BaseImageConfig(env=(("PATH", "/custom"), ("LANG", "C.UTF-8")), working_dir="/srv",
                          user="app", shell=("/bin/bash", "-c"))
    g2 = graph("FROM python:3.12\nWORKDIR sub\nRUN x\n")
    run = dispatch_stage(g2, 0, base_configs={"python:3.12": cfg})[-1]
    assert env_of(run) == {"PATH": "/custom", "LANG": "C.UTF-8"}
    assert (run.workdir, run.user, run.shell) == ("/srv/sub", "app", ("/bin/bash", "-c"))


def test_workdir_user_shell_tracked() -> None:
    text = 'FROM a\nWORKDIR /test1\nWORKDIR test2\nUSER 1000\nSHELL ["/bin/ash", "-c"]\nRUN x\n'
    run = graph(text).steps(0)[-1]
    assert (run.workdir, run.user, run.shell) == ("/test1/test2", "1000", ("/bin/ash", "-c"))


def test_child_stage_inherits_env_and_arg_values() -> None:
    text = "FROM a AS base\nENV E=1\nARG A=2\nFROM base\nRUN x\n"
    run = graph(text).steps(1)[-1]
    assert env_of(run)["E"] == "1" and env_of(run)["A"] == "2"
    assert run.args_in_scope == (("A", "2"),)


def test_args_do_not_cross_to_unrelated_stage() -> None:
    text = "FROM a AS one\nARG A=2\nFROM b\nRUN x\n"
    assert "A" not in last_run_env(text)


def test_onbuild_triggers_dispatched_first() -> None:
    text = "FROM a AS base\nONBUILD RUN echo trigger\nRUN echo base\nFROM base\nRUN echo child\n"
    steps = graph(text).steps(1)
    assert [s.is_onbuild for s in steps] == [True, False]
    assert isinstance(steps[0].instruction, RunInstruction)
    assert steps[0].instruction.command == ("echo trigger",)


def test_mount_expansion_uses_stage_env() -> None:
    text = "FROM a\nENV SOME_PATH=/mycache\nRUN --mount=type=cache,target=$SOME_PATH ls\n"
    run = graph(text).steps(0)[-1]
    assert isinstance(run.instruction, RunInstruction)
    assert run.instruction.mounts is not None
    assert run.instruction.mounts[0].id == "/mycache"


def test_escape_directive_applies_to_expansion() -> None:
    text = "# escape=`\nFROM a\nENV A=1\nENV B=`$A C=$A\nRUN x\n"
    env = last_run_env(text)
    assert env["B"] == "$A" and env["C"] == "1"


def test_steps_expanded_env_instruction_type() -> None:
    step = graph("FROM a\nARG V=9\nENV X=$V\n").steps(0)[-1]
    assert isinstance(step.instruction, EnvInstruction)
    assert step.instruction.pairs[0].value == "9" and step.used_args == {"V"}
