"""Lowering: frontend steps → vertices (ops, inputs, records), checked per instruction."""

from __future__ import annotations

from layerkit.dockerfile.parser import parse
from layerkit.frontend import BaseImageConfig, build_stage_graph
from layerkit.graph import (
    AddUrlAction,
    ConfigOp,
    ContextInput,
    CopyAction,
    ExecOp,
    FileOp,
    ImageInput,
    MkdirAction,
    MkfileAction,
    SourceOp,
    StageDef,
    StageInput,
    UrlInput,
    lower_stage,
)
from layerkit.graph.lower import go_duration


def lower(text: str, stage: int = -1, **kw: object) -> StageDef:
    graph = build_stage_graph(parse(text), **kw)  # type: ignore[arg-type]
    st = graph.stages[stage]
    steps = graph.steps(st, base_configs={"busybox": BaseImageConfig()})
    return lower_stage(graph, st, steps, base_digests={"busybox": "sha256:b"})


def test_from_image_scratch_and_stage() -> None:
    sd = lower("FROM busybox AS a\nFROM scratch AS b\nFROM a\n", stage=0)
    assert sd.vertices[0].op == SourceOp("image", ref="busybox", digest="sha256:b",
                                          platform=sd.platform)
    assert sd.vertices[0].record["base"] == "busybox@sha256:b"
    assert isinstance(lower("FROM scratch\n").vertices[0].op, SourceOp)
    child = lower("FROM busybox AS a\nFROM a\n")
    assert child.vertices[0].inputs == (StageInput(0, "a"),)
    assert child.base_stage == 0


def test_run_shell_env_cwd_user() -> None:
    sd = lower("FROM busybox\nARG V=1\nENV E=x\nUSER app\nWORKDIR /w\nRUN make $V\n",
               build_args={"HTTP_PROXY": "p"})
    run = sd.vertices[-1]
    assert isinstance(run.op, ExecOp)
    assert run.op.args == ("/bin/sh", "-c", "make $V")
    assert ("V", "1") in run.op.env and ("E", "x") in run.op.env
    assert (run.op.cwd, run.op.user) == ("/w", "app")
    assert run.op.proxy_env == (("HTTP_PROXY", "p"),)
    assert run.index == 5 and run.text == "RUN make $V"


def test_exec_form_and_heredocs() -> None:
    assert lower('FROM busybox\nRUN ["ls", "-l"]\n').vertices[-1].op.args == (  # type: ignore[union-attr]
        "ls", "-l")
    simple = lower("FROM busybox\nRUN <<EOF\necho hi\nEOF\n").vertices[-1].op
    assert isinstance(simple, ExecOp) and simple.args == ("/bin/sh", "-c", "echo hi\n")
    shebang = lower("FROM busybox\nRUN <<EOF\n#!/bin/awk -f\nBEGIN{}\nEOF\n").vertices[-1].op
    assert isinstance(shebang, ExecOp)
    assert shebang.args == ("/dev/pipes/EOF",)
    assert shebang.inline_files == (("EOF", "#!/bin/awk -f\nBEGIN{}\n"),)


def test_run_mounts_become_inputs() -> None:
    sd = lower("FROM busybox AS build\nFROM busybox\nWORKDIR /src\n"
               "RUN --mount=from=build,src=out,target=/out,rw --mount=target=ctx "
               "--mount=type=cache,target=/root/.cache --mount=from=alpine,target=/a x\n")
    run = sd.vertices[-1]
    assert isinstance(run.op, ExecOp)
    m_build, m_ctx, m_cache, m_img = run.op.mounts
    assert run.inputs[m_build.input or 0] == StageInput(0, "build")
    assert (m_build.source, m_build.readonly) == ("/out", False)
    assert run.inputs[m_ctx.input or 0] == ContextInput()
    assert m_ctx.target == "/src/ctx" and m_ctx.readonly
    assert m_cache.input is None and m_cache.id == "/root/.cache"
    assert isinstance(run.inputs[m_img.input or 0], ImageInput)


def test_copy_sources_dest_and_flags() -> None:
    sd = lower("FROM busybox AS b\nFROM busybox\nWORKDIR /app\n"
               "COPY --chown=1:2 --chmod=755 --exclude=*.pyc src/ .\n"
               "COPY --from=b /out /dst\nCOPY --from=nginx /etc/nginx x/\n")
    copy, from_stage, from_image = (v.op for v in sd.vertices[2:])
    assert isinstance(copy, FileOp) and isinstance(from_stage, FileOp)
    assert copy.actions[0] == CopyAction(1, ("src/",), "/app/", chown="1:2", chmod="755",
                                         excludes=("*.pyc",))
    assert sd.vertices[2].inputs[1] == ContextInput()
    assert sd.vertices[3].inputs[1] == StageInput(0, "b")
    assert isinstance(sd.vertices[4].inputs[1], ImageInput)
    assert isinstance(from_image, FileOp)
    assert from_image.actions[0].dest == "/app/x/"  # type: ignore[union-attr]


def test_add_url_heredoc_and_unpack() -> None:
    sd = lower("FROM busybox\nADD --checksum=sha256:abc https://x.io/t.tgz /opt/\n"
               "ADD local.tgz /opt/\nCOPY <<EOF /etc/motd\nhello\nEOF\n")
    url, local, heredoc = (v.op for v in sd.vertices[1:])
    assert isinstance(url, FileOp) and isinstance(url.actions[0], AddUrlAction)
    assert sd.vertices[1].inputs[1] == UrlInput("https://x.io/t.tgz", "sha256:abc")
    assert isinstance(local, FileOp) and local.actions[0].unpack  # type: ignore[union-attr]
    assert isinstance(heredoc, FileOp)
    assert heredoc.actions == (MkfileAction("/etc/motd", "hello\n"),)


def test_workdir_mkdir_uses_the_user_and_root_makes_no_layer() -> None:
    sd = lower("FROM busybox\nUSER app\nWORKDIR /srv\nWORKDIR /\n")
    mk, root = sd.vertices[2], sd.vertices[3]
    assert mk.op == FileOp((MkdirAction("/srv", chown="app"),))
    assert isinstance(root.op, ConfigOp) and not root.makes_layer
    assert root.history is not None and root.history.empty_layer


def test_metadata_instructions_are_config_ops() -> None:
    sd = lower("FROM busybox\nLABEL a=b\nEXPOSE 80\nENV X=1\nARG Y\nONBUILD RUN z\n")
    assert all(isinstance(v.op, ConfigOp) and not v.makes_layer for v in sd.vertices[1:])
    assert sd.vertices[-1].history is None  # BuildKit records no history for ONBUILD


def test_go_duration() -> None:
    assert [go_duration(n) for n in (0, 5 * 10**9, 90 * 10**9, 3_600 * 10**9, 1_500_000)] == [
        "0s", "5s", "1m30s", "1h0m0s", "1.5ms"]
