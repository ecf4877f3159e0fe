"""A light view of a parsed Dockerfile for the rules: stages, their instructions,
flags, mounts, COPY sources and the text of the source lines.

It sits directly on the untyped parse tree (``dockerfile.ast.Node``) so that a
file the typed layer rejects (an unknown instruction, a bad flag) still gets
findings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from layerkit.dockerfile.ast import Node, ParseResult
from layerkit.fastclass import dataclass, field

_VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def split_lines(text: str) -> list[str]:
    """Split ``text`` into lines that keep their endings (only ``\\n`` ends a line)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def referenced_vars(text: str) -> set[str]:
    """Names used as ``$NAME`` or ``${NAME...}`` in ``text``."""
    return {m.group("braced") or m.group("plain") for m in _VAR.finditer(text)}


def flag_values(flags: list[str], name: str) -> list[str]:
    """Values of ``--name=value`` flags (``--name`` alone gives ``"true"``)."""
    out: list[str] = []
    for flag in flags:
        key, sep, value = flag.lstrip("-").partition("=")
        if key.lower() == name:
            out.append(value if sep else "true")
    return out


def has_flag(flags: list[str], name: str) -> bool:
    return any(v.lower() != "false" for v in flag_values(flags, name))


def parse_mount(spec: str) -> dict[str, str]:
    """``type=cache,target=/x`` as a dict (keys lower-cased; type defaults to bind)."""
    fields: dict[str, str] = {"type": "bind"}
    for part in spec.split(","):
        key, sep, value = part.strip().partition("=")
        key = key.strip().lower()
        if key in ("dst", "destination"):
            key = "target"
        if key == "src":
            key = "source"
        fields[key] = value.strip().strip('"') if sep else "true"
    return fields


@dataclass
class Instruction:
    """One instruction of a stage, with shortcuts the rules use all the time."""

    node: Node
    stage: int  # index of its stage; -1 for global instructions before the first FROM

    @property
    def keyword(self) -> str:
        return self.node.value.lower()

    @property
    def line(self) -> int:
        return self.node.start_line

    @property
    def end_line(self) -> int:
        return max(self.node.end_line, self.node.start_line)

    @property
    def flags(self) -> list[str]:
        return self.node.flags

    @property
    def args(self) -> list[str]:
        return [n.value for n in self.node.next]

    def mounts(self) -> list[dict[str, str]]:
        return [parse_mount(v) for v in flag_values(self.node.flags, "mount")]

    def script(self) -> str:
        """The command text of a RUN (shell form joined; heredoc bodies appended)."""
        text = " ".join(self.args)
        for doc in self.node.heredocs:
            text += "\n" + doc.content
        return text

    def full_text(self) -> str:
        """Everything written for the instruction: flags, arguments and heredocs."""
        text = self.node.original or " ".join([self.node.value, *self.flags, *self.args])
        for doc in self.node.heredocs:
            text += "\n" + doc.content
        return text

    def copy_parts(self) -> tuple[list[str], str]:
        """COPY/ADD sources and destination (heredoc markers dropped)."""
        args = self.args
        if len(args) < 2:
            return [], args[0] if args else ""
        sources = [a for a in args[:-1] if not a.startswith("<<")]
        return sources, args[-1]

    def from_context(self) -> bool:
        """True for a COPY/ADD whose sources come from the build context."""
        return not flag_values(self.flags, "from")


@dataclass
class Stage:
    index: int
    from_node: Node
    base: str  # image reference or stage name, as written
    name: str | None  # lower-cased ``AS`` name
    instructions: list[Instruction] = field(default_factory=list)
    parent: int | None = None  # index of the stage named by ``base``

    @property
    def line(self) -> int:
        return self.from_node.start_line

    @property
    def last_line(self) -> int:
        if self.instructions:
            return self.instructions[-1].end_line
        return max(self.from_node.end_line, self.from_node.start_line)


@dataclass
class Model:
    """The parse result seen as stages; the source text split into lines."""

    result: ParseResult
    stages: list[Stage]
    global_args: list[Instruction]
    lines: list[str]
    file: str

    def line_text(self, line: int) -> str:
        if 1 <= line <= len(self.lines):
            return self.lines[line - 1].rstrip("\r\n")
        return ""

    def quote(self, instr: Instruction) -> str:
        return self.line_text(instr.line).strip()

    def chain(self, index: int) -> list[int]:
        """``index`` and the stages it is built ``FROM``, nearest first."""
        out: list[int] = []
        current: int | None = index
        while current is not None and current not in out:
            out.append(current)
            current = self.stages[current].parent
        return out

    def final_stages(self) -> set[int]:
        """Stages whose filesystem ends up in the default (last) target."""
        if not self.stages:
            return set()
        return set(self.chain(len(self.stages) - 1))

    def all_instructions(self) -> Iterator[Instruction]:
        yield from self.global_args
        for stage in self.stages:
            yield from stage.instructions

    def global_defaults(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for instr in self.global_args:
            for name, value in arg_pairs(instr):
                out[name] = value
        return out


def arg_pairs(instr: Instruction, *, raw: bool = False) -> list[tuple[str, str | None]]:
    """``ARG A=1 B`` as ``[("A", "1"), ("B", None)]`` (``raw`` keeps quotes)."""
    out: list[tuple[str, str | None]] = []
    for word in instr.args:
        name, sep, value = word.partition("=")
        if name:
            out.append((name, (value if raw else _unquote(value)) if sep else None))
    return out


def env_pairs(instr: Instruction, *, raw: bool = False) -> list[tuple[str, str]]:
    """``ENV A=1 B=2`` / legacy ``ENV A 1`` (also LABEL) as name/value pairs.

    The parser gives these arguments as (key, value, separator) triples, like
    BuildKit's ``parseNameVal``; older shapes (pairs, ``k=v`` words) are accepted too.
    """
    args = instr.args
    out: list[tuple[str, str]] = []
    unq = (lambda v: v) if raw else _unquote
    if len(args) >= 3 and len(args) % 3 == 0 and all(s in ("=", "") for s in args[2::3]):
        for i in range(0, len(args), 3):
            out.append((args[i], unq(args[i + 1])))
        return out
    if len(args) >= 2 and len(args) % 2 == 0 and all("=" not in a for a in args[::2]):
        for i in range(0, len(args), 2):
            out.append((args[i], unq(args[i + 1])))
        return out
    for word in args:
        name, _sep, value = word.partition("=")
        out.append((name, unq(value)))
    return out


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _from_parts(node: Node) -> tuple[str, str | None]:
    args = [n.value for n in node.next]
    base = args[0] if args else ""
    name = None
    if len(args) >= 3 and args[1].lower() == "as":
        name = args[2].lower()
    return base, name


def build_model(result: ParseResult) -> Model:
    """Group the instructions of ``result`` into stages."""
    stages: list[Stage] = []
    global_args: list[Instruction] = []
    by_name: dict[str, int] = {}
    for node in result.instructions:
        if node.value.lower() == "from":
            base, name = _from_parts(node)
            stage = Stage(index=len(stages), from_node=node, base=base, name=name)
            parent = by_name.get(base.lower())
            stage.parent = parent
            stages.append(stage)
            if name is not None and name not in by_name:
                by_name[name] = stage.index
            continue
        if not stages:
            global_args.append(Instruction(node, -1))
        else:
            stages[-1].instructions.append(Instruction(node, len(stages) - 1))
    return Model(
        result=result,
        stages=stages,
        global_args=global_args,
        lines=split_lines(result.source),
        file=result.filename,
    )
