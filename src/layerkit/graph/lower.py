"""Lowering: turns the frontend's decided steps into vertices of the op graph.

Input is one stage of a :class:`~layerkit.frontend.StageGraph` and its
dispatched :class:`~layerkit.frontend.Step` list (expanded instructions with
the env, args, WORKDIR, USER and SHELL in effect). Output is a
:class:`~layerkit.graph.model.StageDef`. Pure: no I/O. The only outside fact
it needs is each base image's resolved digest.

What each instruction becomes (dockerfile2llb, one ``_lower_<instr>`` each):

- FROM → SourceOp (scratch, image@digest or stage);
- RUN → ExecOp (shell prepended, env = ENV and ARG values, mounts);
- COPY/ADD → FileOp (copy actions from the context, a stage or an image;
  heredoc files; URL downloads);
- WORKDIR → FileOp mkdir (no op for ``/``) plus a config change;
- everything else → ConfigOp (image config only, no key).

History texts follow BuildKit's ``commitToHistory`` calls exactly.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from layerkit.dockerfile.gostring import go_quote
from layerkit.dockerfile.instructions import (
    AddInstruction,
    ArgInstruction,
    CmdInstruction,
    CopyInstruction,
    EntrypointInstruction,
    EnvInstruction,
    ExposeInstruction,
    HealthcheckInstruction,
    Instruction,
    LabelInstruction,
    MaintainerInstruction,
    OnbuildInstruction,
    RunInstruction,
    ShellInstruction,
    StopSignalInstruction,
    UserInstruction,
    VolumeInstruction,
    WorkdirInstruction,
    normalize_ports,
)
from layerkit.dockerfile.mounts import Mount
from layerkit.frontend import Stage, StageGraph, Step
from layerkit.graph.digest import OP_SCHEMA
from layerkit.graph.model import (
    ContextInput,
    HistoryEntry,
    ImageInput,
    Input,
    ParentInput,
    StageDef,
    StageInput,
    UrlInput,
    Vertex,
)
from layerkit.graph.ops import (
    AddUrlAction,
    ConfigChange,
    ConfigOp,
    CopyAction,
    ExecMount,
    ExecOp,
    FileAction,
    FileOp,
    MkdirAction,
    MkfileAction,
    SourceOp,
)

__all__ = ["go_duration", "lower_stage", "run_history"]

_HEREDOC_WORD = re.compile(r"^<<-?\s*([\"']?)([A-Za-z0-9_]+)\1$")


def lower_stage(
    graph: StageGraph,
    stage: Stage,
    steps: Sequence[Step],
    *,
    base_digests: Mapping[str, str],
    base_platform: str = "",
) -> StageDef:
    """Lower one dispatched stage. ``base_digests`` maps image refs to resolved digests."""
    lw = _Lowerer(graph, stage)
    vertices = [lw.lower_from(base_digests, base_platform)]
    for step in steps:
        vertices.append(lw.lower(step))
    deps = sorted(set(stage.deps))
    return StageDef(stage.index, stage.name, tuple(vertices), tuple(deps),
                    str(stage.platform or graph.target_platform))


class _Lowerer:
    def __init__(self, graph: StageGraph, stage: Stage) -> None:
        self.graph = graph
        self.stage = stage

    # -- helpers -------------------------------------------------------------

    def source_input(self, ref: str | None, *, allow_index: bool) -> Input:
        """``--from`` value → the input it names: context, stage or image."""
        if not ref:
            return ContextInput()
        if allow_index and ref.isdigit() and int(ref) < len(self.graph.stages):
            st = self.graph.stages[int(ref)]
            return StageInput(st.index, st.display_name)
        for st in self.graph.stages:
            if st.name is not None and st.name == ref.lower():
                return StageInput(st.index, st.display_name)
        return ImageInput(ref, str(self.stage.platform or self.graph.target_platform))

    def vertex(self, step: Step, op: Any, **kw: Any) -> Vertex:
        instr = step.instruction
        record: dict[str, Any] = {"schema": OP_SCHEMA, "instruction": _text(instr)}
        record.update(kw.pop("record", {}))
        # BuildKit prints inherited triggers as "[2/4] ONBUILD RUN ...".
        shown = ("ONBUILD " if step.is_onbuild else "") + _text(instr)
        return Vertex(
            stage=self.stage.index, index=step.index + 1, text=step.original.original,
            expanded=shown, op=op, line=instr.start_line, record=record, **kw,
        )

    # -- FROM ----------------------------------------------------------------

    def lower_from(self, base_digests: Mapping[str, str], platform: str) -> Vertex:
        st = self.stage
        fr = st.from_instruction
        plat = str(st.platform or self.graph.target_platform)
        if st.base_stage is not None:
            src = self.graph.stages[st.base_stage]
            op = SourceOp("stage", name=src.display_name, platform=plat)
            inputs: tuple[Input, ...] = (StageInput(src.index, src.display_name),)
            record = {"base": f"stage {src.display_name}"}
        elif st.is_scratch:
            op, inputs, record = SourceOp("scratch", platform=plat), (), {"base": "scratch"}
        else:
            digest = base_digests.get(st.base, "")
            op = SourceOp("image", ref=st.base, digest=digest, platform=plat)
            inputs, record = (), {"base": f"{st.base}@{digest}" if digest else st.base}
        expanded = f"FROM {op.ref or op.name or 'scratch'}"
        if op.digest:
            expanded += f"@{op.digest}"
        # The digest is recorded as "base", not in the instruction text, so that a
        # moved tag is explained as "base image changed" and nothing else.
        written = f"FROM {op.ref or op.name or 'scratch'}"
        return Vertex(
            stage=st.index, index=0, text=fr.original, expanded=expanded, op=op,
            inputs=inputs, line=fr.start_line,
            record={"schema": OP_SCHEMA, "instruction": written, **record},
        )

    # -- dispatch --------------------------------------------------------------

    def lower(self, step: Step) -> Vertex:
        instr = step.instruction
        if isinstance(instr, RunInstruction):
            return self.lower_run(step, instr)
        if isinstance(instr, (CopyInstruction, AddInstruction)):
            return self.lower_copy(step, instr)
        if isinstance(instr, WorkdirInstruction):
            return self.lower_workdir(step, instr)
        change, history = _config_change(step, instr)
        changes = (change,) if change is not None else ()
        return self.vertex(step, ConfigOp(changes), inputs=(ParentInput(),), config=changes,
                           history=history)

    def lower_run(self, step: Step, instr: RunInstruction) -> Vertex:
        """``RUN [--mount=...] [--network=...] [--security=...] <command>``"""
        args, inline = _run_args(instr, step.shell)
        inputs: list[Input] = [ParentInput()]
        mounts = []
        for m in instr.mounts or ():
            mounts.append(self.mount(m, step.workdir, inputs))
        op = ExecOp(
            args=args, env=step.env, cwd=step.workdir or "/", user=step.user,
            network=instr.network or "default", security=instr.security or "sandbox",
            mounts=tuple(mounts), inline_files=inline, proxy_env=step.proxy_env,
        )
        arg_values = {k: v for k, v in step.args_in_scope if v is not None}
        env_only = {k: v for k, v in step.env if k not in arg_values or arg_values[k] != v}
        record = {
            "args": arg_values, "env": env_only, "user": step.user, "workdir": step.workdir,
            "shell": " ".join(step.shell) if instr.shell_form else None,
            "network": instr.network or "default",
            "mounts": [m.describe() for m in mounts],
        }
        history = HistoryEntry(run_history(args, step) + " # buildkit", empty_layer=False)
        return self.vertex(step, op, inputs=tuple(inputs), history=history, record=record)

    def mount(self, m: Mount, workdir: str, inputs: list[Input]) -> ExecMount:
        index: int | None = None
        if m.type in ("bind", "cache") and (m.type == "bind" or m.from_):
            inputs.append(self.source_input(m.from_, allow_index=False))
            index = len(inputs) - 1
        # A secret exposed only as an env var has no mount point (BuildKit convert_secrets).
        env_only = m.type == "secret" and bool(m.env) and not m.target
        target = "" if env_only else m.resolve_target(workdir)
        source = posixpath.normpath(posixpath.join("/", m.source)) if m.source else ""
        return ExecMount(
            type=m.type,  # type: ignore[arg-type]
            target=target, input=index, source=source,
            readonly=m.readonly if m.type != "cache" and m.type != "tmpfs" else False,
            id=m.id or (target if m.type == "cache" else ""), sharing=m.sharing or "",
            mode=m.mode, uid=m.uid, gid=m.gid, size=m.size, required=m.required,
            env=m.env or "",
        )

    def lower_copy(self, step: Step, instr: CopyInstruction | AddInstruction) -> Vertex:
        """``COPY [--from] [--chown] [--chmod] [--link] [--parents] [--exclude] <src>... <dest>``
        and ``ADD [--checksum] [--unpack] ... <src>... <dest>``"""
        is_add = isinstance(instr, AddInstruction)
        dest = _dest_path(step.workdir, instr.dest)
        from_ = instr.from_ if isinstance(instr, CopyInstruction) else None
        inputs: list[Input] = [ParentInput()]
        actions: list[FileAction] = []
        local = [s for s in instr.sources if not (is_add and _is_url(s))]
        if local:
            inputs.append(self.source_input(from_, allow_index=True))
            unpack = bool(instr.unpack if isinstance(instr, AddInstruction)
                          and instr.unpack is not None else is_add)
            actions.append(CopyAction(
                input=len(inputs) - 1, sources=tuple(local), dest=dest,
                chown=instr.chown or "", chmod=instr.chmod or "", link=instr.link,
                parents=isinstance(instr, CopyInstruction) and instr.parents,
                excludes=instr.excludes, unpack=unpack,
            ))
        for src in instr.sources:
            if is_add and _is_url(src):
                checksum = instr.checksum if isinstance(instr, AddInstruction) else None
                inputs.append(UrlInput(src, checksum or ""))
                actions.append(AddUrlAction(
                    input=len(inputs) - 1, url=src, dest=dest, checksum=checksum or "",
                    chown=instr.chown or "", chmod=instr.chmod or "",
                ))
        for content in instr.contents:
            path = dest + content.path if dest.endswith("/") else dest
            actions.append(MkfileAction(path=path, data=content.data, chown=instr.chown or "",
                                        chmod=instr.chmod or ""))
        used = {k: v for k, v in step.args_in_scope if k in step.used_args and v is not None}
        written = [*instr.sources, *(f"<<{c.path}" for c in instr.contents), instr.dest]
        history = HistoryEntry(f"{instr.keyword} {' '.join(written)} # buildkit", False)
        return self.vertex(step, FileOp(tuple(actions)), inputs=tuple(inputs), history=history,
                           record={"args": used})

    def lower_workdir(self, step: Step, instr: WorkdirInstruction) -> Vertex:
        """``WORKDIR <path>``: mkdir as the current USER, unless the path is ``/``."""
        wd = posixpath.normpath(posixpath.join("/", step.workdir or "/", instr.path))
        change = (ConfigChange("workdir", (wd,)),)
        history = HistoryEntry(f"WORKDIR {wd}", empty_layer=wd == "/")
        if wd == "/":
            return self.vertex(step, ConfigOp(change), config=change, history=history)
        op = FileOp((MkdirAction(wd, chown=step.user),))
        return self.vertex(step, op, config=change, history=history,
                           record={"user": step.user, "workdir": wd})


# -- RUN helpers ---------------------------------------------------------------


def _run_args(
    instr: RunInstruction, shell: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The argv of a RUN (BuildKit ``dispatchRun``): heredocs, then the shell prepended."""
    args = list(instr.command)
    inline: tuple[tuple[str, str], ...] = ()
    if instr.heredocs and instr.shell_form and len(args) == 1:
        if _HEREDOC_WORD.match(args[0].strip()):
            doc = instr.heredocs[0]
            data = _chomp(doc.data) if doc.chomp else doc.data
            if data.startswith("#!"):
                inline = ((doc.name, data),)
                return (posixpath.join("/dev/pipes", doc.name),), inline
            args = [data]
        else:
            text = args[0]
            for doc in instr.heredocs:
                text += "\n" + doc.data + doc.name
            args = [text]
    if instr.shell_form:
        return (*shell, " ".join(args)), inline
    return tuple(args), inline


def _chomp(data: str) -> str:
    return "".join(line.lstrip("\t") for line in data.splitlines(keepends=True))


def run_history(args: Sequence[str], step: Step) -> str:
    """``RUN |2 foo=bar2 bar=123 <argv>``: BuildKit ``runCommandString``."""
    env = dict(step.env)
    order: list[str] = []
    values: dict[str, str] = {}
    for name, value in step.args_in_scope:
        if name not in values:
            order.append(name)
        values[name] = env.get(name, value or "")
    parts = [f"{n}={values[n]}" for n in order]
    prefix = [f"|{len(parts)}", *parts] if parts else []
    return "RUN " + " ".join([*prefix, *args])


# -- COPY helpers --------------------------------------------------------------


def _is_url(src: str) -> bool:
    return src.startswith(("http://", "https://"))


def _dest_path(workdir: str, dest: str) -> str:
    """BuildKit ``pathRelativeToWorkingDir`` plus the trailing-slash rule of dispatchCopy."""
    base = posixpath.normpath(posixpath.join("/", workdir or "/", dest or "."))
    if dest in (".", "") or dest.endswith("/"):
        return base.rstrip("/") + "/"
    return base


# -- metadata instructions -----------------------------------------------------


def _config_change(
    step: Step, instr: Instruction
) -> tuple[ConfigChange | None, HistoryEntry | None]:
    def hist(text: str) -> HistoryEntry:
        return HistoryEntry(text, empty_layer=True)

    if isinstance(instr, EnvInstruction):
        pairs = tuple((p.key, p.value) for p in instr.pairs)
        return ConfigChange("env", pairs=pairs), hist("ENV " + " ".join(map(str, instr.pairs)))
    if isinstance(instr, LabelInstruction):
        pairs = tuple((p.key, p.value) for p in instr.pairs)
        text = "LABEL " + " ".join(map(str, instr.pairs))
        return ConfigChange("labels", pairs=pairs), hist(text)
    if isinstance(instr, ArgInstruction):
        pairs = tuple((a.name, a.default if a.default is not None else "") for a in instr.args)
        return ConfigChange("arg", pairs=pairs), hist("ARG " + " ".join(map(str, instr.args)))
    if isinstance(instr, UserInstruction):
        return ConfigChange("user", (instr.user,)), hist(f"USER {instr.user}")
    if isinstance(instr, ShellInstruction):
        return ConfigChange("shell", instr.shell), hist(f"SHELL [{' '.join(instr.shell)}]")
    if isinstance(instr, (CmdInstruction, EntrypointInstruction)):
        argv = (*step.shell, " ".join(instr.command)) if instr.shell_form else instr.command
        quoted = "[" + " ".join(go_quote(a) for a in argv) + "]"
        if isinstance(instr, CmdInstruction):
            return ConfigChange("cmd", argv), hist(f"CMD {quoted}")
        return ConfigChange("entrypoint", argv), hist(f"ENTRYPOINT {quoted}")
    if isinstance(instr, ExposeInstruction):
        ports = normalize_ports(instr.ports)
        return ConfigChange("expose", ports), hist(f"EXPOSE [{' '.join(ports)}]")
    if isinstance(instr, VolumeInstruction):
        vols = instr.volumes
        return ConfigChange("volumes", vols), hist(f"VOLUME [{' '.join(vols)}]")
    if isinstance(instr, StopSignalInstruction):
        return ConfigChange("stopsignal", (instr.signal,)), hist(f"STOPSIGNAL {instr.signal}")
    if isinstance(instr, HealthcheckInstruction):
        return _healthcheck(instr)
    if isinstance(instr, OnbuildInstruction):
        # BuildKit records no history entry for ONBUILD.
        return ConfigChange("onbuild", (instr.expression,)), None
    if isinstance(instr, MaintainerInstruction):
        text = f"MAINTAINER {instr.maintainer}"
        return ConfigChange("maintainer", (instr.maintainer,)), hist(text)
    return None, None


def _healthcheck(instr: HealthcheckInstruction) -> tuple[ConfigChange, HistoryEntry]:
    pairs = (
        ("interval", str(instr.interval)), ("timeout", str(instr.timeout)),
        ("start_period", str(instr.start_period)),
        ("start_interval", str(instr.start_interval)), ("retries", str(instr.retries)),
    )
    text = (
        f"HEALTHCHECK {{Test:[{' '.join(instr.test)}] Interval:{go_duration(instr.interval)} "
        f"Timeout:{go_duration(instr.timeout)} StartPeriod:{go_duration(instr.start_period)} "
        f"StartInterval:{go_duration(instr.start_interval)} Retries:{instr.retries}}}"
    )
    return ConfigChange("healthcheck", instr.test, pairs), HistoryEntry(text, True)


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String`` for the values a Dockerfile can hold."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _trim(ns / size) + unit
    hours, rem = divmod(ns, 3600 * 10**9)
    minutes, rem = divmod(rem, 60 * 10**9)
    seconds = _trim(rem / 10**9) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"


# -- display -------------------------------------------------------------------


def _text(instr: Instruction) -> str:
    """The instruction after expansion, as one line (for display and explanations)."""
    if isinstance(instr, (CopyInstruction, AddInstruction)):
        flags = []
        if isinstance(instr, CopyInstruction) and instr.from_:
            flags.append(f"--from={instr.from_}")
        for name in ("chown", "chmod"):
            value = getattr(instr, name)
            if value:
                flags.append(f"--{name}={value}")
        if instr.link:
            flags.append("--link")
        flags.extend(f"--exclude={e}" for e in instr.excludes)
        if isinstance(instr, AddInstruction) and instr.checksum:
            flags.append(f"--checksum={instr.checksum}")
        srcs = [*instr.sources, *(f"<<{c.path}" for c in instr.contents)]
        return " ".join([instr.keyword, *flags, *srcs, instr.dest])
    if isinstance(instr, WorkdirInstruction):
        return f"WORKDIR {instr.path}"
    if isinstance(instr, (EnvInstruction, LabelInstruction)):
        return f"{instr.keyword} " + " ".join(map(str, instr.pairs))
    if isinstance(instr, ArgInstruction):
        return "ARG " + " ".join(map(str, instr.args))
    if isinstance(instr, UserInstruction):
        return f"USER {instr.user}"
    return instr.original
