"""Dispatch-time expansion: turns an instruction plus an environment into the expanded
instruction and the names of the variables it referenced.

BuildKit expands instruction words only when a stage is dispatched, with the
stage's environment at that point (which instructions expand what is listed in
:mod:`layerkit.dockerfile.instructions`). The referenced names feed the cache
("which build args does this step use") and lint ("which variables are
undefined").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from layerkit.dockerfile.flags import FlagError
from layerkit.dockerfile.instructions import (
    AddInstruction,
    ArgDecl,
    ArgInstruction,
    CopyInstruction,
    EnvInstruction,
    ExposeInstruction,
    FromInstruction,
    Instruction,
    KeyValue,
    LabelInstruction,
    RunInstruction,
    SourceContent,
    StopSignalInstruction,
    UserInstruction,
    VolumeInstruction,
    WorkdirInstruction,
    normalize_ports,
    number_ssh_mounts,
    validate_chmod,
)
from layerkit.dockerfile.mounts import parse_mount
from layerkit.dockerfile.shell import ShellLex
from layerkit.errors import DockerfileError, Location
from layerkit.fastclass import dataclass, field, replace

__all__ = ["Expansion", "expand_instruction"]


@dataclass(frozen=True)
class Expansion:
    """An instruction with its variables expanded, and the names it referenced."""

    instruction: Instruction
    matched: frozenset[str] = frozenset()  # referenced and set
    unmatched: frozenset[str] = frozenset()  # referenced and not set


@dataclass
class _Expander:
    lex: ShellLex
    env: Mapping[str, str]
    location: Location
    matched: set[str] = field(default_factory=set)
    unmatched: set[str] = field(default_factory=set)
    raw_lex: ShellLex | None = None

    def word(self, text: str) -> str:
        res = self.lex.process_word_with_matches(text, self.env, location=self.location)
        self.matched |= res.matched
        self.unmatched |= res.unmatched
        return res.result

    def opt(self, text: str | None) -> str | None:
        return None if text is None else self.word(text)

    def words(self, text: str) -> tuple[str, ...]:
        res = self.lex.process_word_with_matches(text, self.env, location=self.location)
        self.matched |= res.matched
        self.unmatched |= res.unmatched
        return res.words

    def raw(self, text: str) -> str:
        # Heredoc bodies: BuildKit uses a lexer with the default escape and
        # SkipProcessQuotes, so quotes in the body stay as written.
        if self.raw_lex is None:
            self.raw_lex = ShellLex("\\", skip_process_quotes=True)
        res = self.raw_lex.process_word_with_matches(text, self.env, location=self.location)
        self.matched |= res.matched
        self.unmatched |= res.unmatched
        return res.result

    def error(self, message: str, hint: str | None = None) -> DockerfileError:
        return DockerfileError(message, location=self.location, hint=hint,
                               reference="dockerfile-instruction")


def _expand_contents(x: _Expander, contents: Sequence[SourceContent]) -> tuple[SourceContent, ...]:
    return tuple(replace(c, data=x.raw(c.data)) if c.expand else c for c in contents)


def _expanded_chmod(x: _Expander, chmod: str | None) -> str | None:
    value = x.opt(chmod)
    if value:
        msg = validate_chmod(value)
        if msg:
            raise x.error(msg, "use an octal mode such as 0644 or a symbolic one such as u+x")
    return value or None


_SIGNALS = {
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
    "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
    "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
}


def _check_signal(x: _Expander, sig: str) -> None:
    if sig.isdigit() and int(sig) > 0:
        return
    name = sig.upper().removeprefix("SIG")
    if name in _SIGNALS or re.fullmatch(r"RTM(IN|AX)([+-]\d+)?", name):
        return
    raise x.error(f"Invalid signal: {sig}", "use a signal name such as SIGTERM or a number")


def expand_instruction(
    instruction: Instruction, env: Mapping[str, str], *, escape_token: str = "\\"
) -> Expansion:
    """Expand ``instruction``'s variables with ``env``, the way BuildKit's dispatch does.

    Returns the expanded instruction (same type) and the variable names it
    referenced. Instructions that expand nothing are returned unchanged.
    """
    x = _Expander(ShellLex(escape_token), env, instruction.location)
    new = _expand(instruction, x)
    return Expansion(new, frozenset(x.matched), frozenset(x.unmatched))


def _expand(instr: Instruction, x: _Expander) -> Instruction:
    if isinstance(instr, EnvInstruction | LabelInstruction):
        pairs = tuple(KeyValue(x.word(p.key), x.word(p.value), p.legacy) for p in instr.pairs)
        return replace(instr, pairs=pairs)
    if isinstance(instr, CopyInstruction):
        return replace(
            instr, sources=tuple(x.word(s) for s in instr.sources), dest=x.word(instr.dest),
            contents=_expand_contents(x, instr.contents), chown=x.opt(instr.chown) or None,
            chmod=_expanded_chmod(x, instr.chmod),
        )
    if isinstance(instr, AddInstruction):
        return replace(
            instr, sources=tuple(x.word(s) for s in instr.sources), dest=x.word(instr.dest),
            contents=_expand_contents(x, instr.contents), chown=x.opt(instr.chown) or None,
            chmod=_expanded_chmod(x, instr.chmod), checksum=x.opt(instr.checksum) or None,
        )
    if isinstance(instr, WorkdirInstruction):
        return replace(instr, path=x.word(instr.path))
    if isinstance(instr, UserInstruction):
        return replace(instr, user=x.word(instr.user))
    if isinstance(instr, StopSignalInstruction):
        sig = x.word(instr.signal)
        _check_signal(x, sig)
        return replace(instr, signal=sig)
    if isinstance(instr, VolumeInstruction):
        vols = tuple(x.word(v) for v in instr.volumes)
        if any(not v for v in vols):
            raise x.error("VOLUME specified can not be an empty string")
        return replace(instr, volumes=vols)
    if isinstance(instr, ExposeInstruction):
        ports = tuple(p for word in instr.ports for p in x.words(word))
        try:
            normalize_ports(ports)
        except ValueError as exc:
            raise x.error(f"EXPOSE: {exc}", "write EXPOSE <port>[/tcp|/udp|/sctp]") from None
        return replace(instr, ports=ports)
    if isinstance(instr, RunInstruction):
        try:
            mounts = tuple(parse_mount(spec, x.word) for spec in instr.mount_specs)
        except FlagError as exc:
            raise x.error(f"RUN --mount: {exc.message}", exc.hint) from None
        return replace(instr, mounts=number_ssh_mounts(mounts))
    if isinstance(instr, ArgInstruction):
        return replace(instr, args=tuple(ArgDecl(a.name, x.opt(a.default)) for a in instr.args))
    if isinstance(instr, FromInstruction):
        base = x.word(instr.base_name)
        return replace(instr, base_name=base, platform=x.opt(instr.platform))
    return instr
