"""The untyped Dockerfile syntax tree, shaped like BuildKit's ``parser.Node``.

The parser (``dockerfile.parser``) produces it; ``dockerfile.dump`` prints it in
BuildKit's golden-file format; ``dockerfile.instructions`` turns it into typed
instructions. Nodes are plain dataclasses so tests can build them by hand.
"""

from __future__ import annotations

from layerkit.fastclass import dataclass, field


@dataclass(frozen=True)
class Heredoc:
    """One ``<<NAME`` attachment of an instruction (BuildKit ``parser.Heredoc``)."""

    name: str
    content: str  # raw body, each line with its newline; not tab-stripped
    file_descriptor: int = 0
    expand: bool = True  # False when any part of the delimiter word was quoted
    chomp: bool = False  # True for ``<<-``


@dataclass
class Node:
    """One node of the tree.

    The root has ``value == ""`` and one child per instruction. An instruction
    node has ``value`` = the keyword as written, ``flags`` = its ``--flags`` and
    ``next`` = its argument nodes in order (BuildKit's ``Next`` linked list, here
    a list). ONBUILD's single argument node has the nested instruction in
    ``children``.
    """

    value: str = ""
    next: list[Node] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    original: str = ""  # the instruction's logical line as written (continuations joined)
    start_line: int = 0  # 1-based
    end_line: int = 0  # 1-based, inclusive
    heredocs: list[Heredoc] = field(default_factory=list)
    prev_comment: list[str] = field(default_factory=list)
    is_json: bool = False  # the arguments were written in JSON (exec) form

    @property
    def keyword(self) -> str:
        return self.value.lower()

    @property
    def args(self) -> list[str]:
        return [n.value for n in self.next]


@dataclass(frozen=True)
class Warning:
    """A non-fatal parser finding, e.g. an empty continuation line."""

    message: str
    line: int
    detail: str = ""


@dataclass
class ParseResult:
    """Everything the parser learns from one Dockerfile."""

    ast: Node
    escape_token: str = "\\"
    syntax: str | None = None  # the ``# syntax=`` directive, if any
    syntax_line: int | None = None
    check: str | None = None  # the ``# check=`` directive, if any
    warnings: list[Warning] = field(default_factory=list)
    filename: str = "Dockerfile"
    source: str = ""  # the full text as read (for diagnostics and --fix)

    @property
    def instructions(self) -> list[Node]:
        return self.ast.children
