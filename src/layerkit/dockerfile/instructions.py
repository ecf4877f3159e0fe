"""Typed instructions: turns parse-tree nodes into immutable instruction objects.

This is layer two of BuildKit's pipeline (``frontend/dockerfile/instructions``):
bytes → :mod:`layerkit.dockerfile.ast` → **typed instructions** → op graph.
Each instruction keeps where it came from (lines and original text), its flags
checked with BuildKit's ``BFlags`` rules (:mod:`~layerkit.dockerfile.flags`),
and its arguments *unexpanded*: BuildKit expands variables only when a stage is
dispatched, with that stage's environment at that point.
:func:`layerkit.dockerfile.expand.expand_instruction` does that expansion.

Which instructions expand what (BuildKit ``SupportsSingleWordExpansion``):

========== ==================================================================
ENV, LABEL keys and values
COPY, ADD  sources, destination, ``--chown``, ``--chmod``, ADD ``--checksum``;
           unquoted heredoc bodies (quotes left alone); never ``--from``
           or ``--exclude``
WORKDIR,   the single argument
USER,
STOPSIGNAL
VOLUME     each path
EXPOSE     each word, split again after expansion
RUN        only the ``--mount`` values (the shell expands the command)
ARG        defaults (only when no build arg overrides them; see frontend)
FROM       image and ``--platform``, with the *global* args only
others     nothing: CMD, ENTRYPOINT, HEALTHCHECK, SHELL, ONBUILD, MAINTAINER
========== ==================================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import ClassVar, TypedDict

from layerkit.dockerfile.ast import Heredoc, Node, ParseResult
from layerkit.dockerfile.durations import parse_duration
from layerkit.dockerfile.flags import FlagError, FlagKind, FlagSpec, ParsedFlags, parse_flags
from layerkit.dockerfile.keywords import did_you_mean
from layerkit.dockerfile.mounts import Mount, check_mount_from, mount_from, parse_mount
from layerkit.errors import DockerfileError, Location
from layerkit.fastclass import dataclass, replace

__all__ = [
    "KEYWORDS",
    "AddInstruction",
    "ArgDecl",
    "ArgInstruction",
    "CmdInstruction",
    "CopyInstruction",
    "Dockerfile",
    "EntrypointInstruction",
    "EnvInstruction",
    "ExposeInstruction",
    "FromInstruction",
    "HealthcheckInstruction",
    "HeredocFile",
    "Instruction",
    "KeyValue",
    "LabelInstruction",
    "MaintainerInstruction",
    "OnbuildInstruction",
    "RunInstruction",
    "ShellInstruction",
    "SourceContent",
    "StageInstructions",
    "StopSignalInstruction",
    "UserInstruction",
    "VolumeInstruction",
    "WorkdirInstruction",
    "chomp_heredoc",
    "normalize_ports",
    "number_ssh_mounts",
    "parse_dockerfile",
    "parse_instruction",
    "validate_chmod",
]

KEYWORDS = (
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
    "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME",
    "WORKDIR",
)

# ---------------------------------------------------------------------------
# The types
# ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Instruction:
    """What every instruction has: where it is and how it was written."""

    keyword: ClassVar[str] = ""
    start_line: int = 0
    end_line: int = 0
    original: str = ""  # the logical line as written, continuations joined
    file: str = "Dockerfile"
    flags: tuple[str, ...] = ()  # the raw ``--flags`` as written

    @property
    def location(self) -> Location:
        return Location(self.file, self.start_line, self.end_line, self.original)

    @property
    def changes_filesystem(self) -> bool:
        """True for the instructions that produce a layer (RUN, COPY, ADD, WORKDIR)."""
        return False


@dataclass(frozen=True)
class HeredocFile:
    """A heredoc attached to RUN/CMD/ENTRYPOINT (BuildKit ``ShellInlineFile``)."""

    name: str
    data: str
    chomp: bool = False
    expand: bool = True


@dataclass(frozen=True)
class SourceContent:
    """A heredoc used as a COPY/ADD source: becomes a file named ``path``."""

    path: str
    data: str  # already chomped for ``<<-``
    expand: bool = True


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str
    legacy: bool = False  # written ``ENV key value`` (no ``=``)

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


@dataclass(frozen=True)
class ArgDecl:
    name: str
    default: str | None = None  # None: declared without ``=``

    def __str__(self) -> str:
        return self.name if self.default is None else f"{self.name}={self.default}"


@dataclass(frozen=True, kw_only=True)
class FromInstruction(Instruction):
    """``FROM [--platform=<p>] <image> [AS <name>]``"""

    keyword: ClassVar[str] = "FROM"
    base_name: str
    stage_name: str | None = None  # lower-cased, as BuildKit stores it
    platform: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunInstruction(Instruction):
    """``RUN [--mount=...] [--network=...] [--security=...] <command>``

    ``command`` is one string in shell form (``shell_form`` True, the SHELL is
    prepended when run) or the argv in exec (JSON) form. ``mounts`` is None
    when some mount value needs variable expansion; the expanded instruction
    from :func:`expand_instruction` always has it.
    """

    keyword: ClassVar[str] = "RUN"
    command: tuple[str, ...]
    shell_form: bool = True
    heredocs: tuple[HeredocFile, ...] = ()
    mount_specs: tuple[str, ...] = ()
    mounts: tuple[Mount, ...] | None = ()
    network: str | None = None  # default | none | host
    security: str | None = None  # sandbox | insecure

    @property
    def changes_filesystem(self) -> bool:
        return True

    def mount_sources(self) -> tuple[str, ...]:
        """The ``from=`` of each mount that has one (stage names or images)."""
        out = []
        for spec in self.mount_specs:
            value = mount_from(spec)
            if value:
                out.append(value)
        return tuple(out)


@dataclass(frozen=True, kw_only=True)
class CmdInstruction(Instruction):
    """``CMD <command>`` or ``CMD ["exec", "form"]``"""

    keyword: ClassVar[str] = "CMD"
    command: tuple[str, ...]
    shell_form: bool = True
    heredocs: tuple[HeredocFile, ...] = ()


@dataclass(frozen=True, kw_only=True)
class EntrypointInstruction(Instruction):
    """``ENTRYPOINT <command>``; an empty ``ENTRYPOINT []`` gives ``command == ()``."""

    keyword: ClassVar[str] = "ENTRYPOINT"
    command: tuple[str, ...]
    shell_form: bool = True
    heredocs: tuple[HeredocFile, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CopyInstruction(Instruction):
    """``COPY [--from] [--chown] [--chmod] [--link] [--parents] [--exclude]... <src>... <dest>``"""

    keyword: ClassVar[str] = "COPY"
    sources: tuple[str, ...]
    contents: tuple[SourceContent, ...] = ()  # heredoc sources
    dest: str
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()

    @property
    def changes_filesystem(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class AddInstruction(Instruction):
    """``ADD [--chown] [--chmod] [--link] [--exclude]... [--checksum] [--keep-git-dir]
    [--unpack] <src>... <dest>``"""

    keyword: ClassVar[str] = "ADD"
    sources: tuple[str, ...]
    contents: tuple[SourceContent, ...] = ()
    dest: str
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    keep_git_dir: bool = False
    checksum: str | None = None
    excludes: tuple[str, ...] = ()
    unpack: bool | None = None  # None: BuildKit's default (unpack local archives only)

    @property
    def changes_filesystem(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class EnvInstruction(Instruction):
    """``ENV key=value ...`` (or the legacy ``ENV key value``)"""

    keyword: ClassVar[str] = "ENV"
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True, kw_only=True)
class LabelInstruction(Instruction):
    """``LABEL key=value ...``"""

    keyword: ClassVar[str] = "LABEL"
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True, kw_only=True)
class ArgInstruction(Instruction):
    """``ARG name[=default] ...``"""

    keyword: ClassVar[str] = "ARG"
    args: tuple[ArgDecl, ...]


@dataclass(frozen=True, kw_only=True)
class ExposeInstruction(Instruction):
    """``EXPOSE <port>[/<proto>] ...`` (sorted, as BuildKit stores them)"""

    keyword: ClassVar[str] = "EXPOSE"
    ports: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class UserInstruction(Instruction):
    """``USER <user>[:<group>]``"""

    keyword: ClassVar[str] = "USER"
    user: str


@dataclass(frozen=True, kw_only=True)
class WorkdirInstruction(Instruction):
    """``WORKDIR <path>``"""

    keyword: ClassVar[str] = "WORKDIR"
    path: str

    @property
    def changes_filesystem(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class VolumeInstruction(Instruction):
    """``VOLUME <path> ...`` or ``VOLUME ["<path>", ...]``"""

    keyword: ClassVar[str] = "VOLUME"
    volumes: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ShellInstruction(Instruction):
    """``SHELL ["executable", "parameters"]`` (JSON form only)"""

    keyword: ClassVar[str] = "SHELL"
    shell: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class StopSignalInstruction(Instruction):
    """``STOPSIGNAL <signal>``"""

    keyword: ClassVar[str] = "STOPSIGNAL"
    signal: str


@dataclass(frozen=True, kw_only=True)
class HealthcheckInstruction(Instruction):
    """``HEALTHCHECK NONE`` or ``HEALTHCHECK [--interval ...] CMD <command>``

    ``test`` is the image-config form: ``("NONE",)``, ``("CMD", argv...)`` for
    the exec form or ``("CMD-SHELL", "command")`` for the shell form. Durations
    are nanoseconds (0 = not set, inherit the default).
    """

    keyword: ClassVar[str] = "HEALTHCHECK"
    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True, kw_only=True)
class OnbuildInstruction(Instruction):
    """``ONBUILD <instruction>``: ``trigger`` is the nested instruction, typed."""

    keyword: ClassVar[str] = "ONBUILD"
    expression: str  # what goes into the image config's OnBuild list
    trigger: Instruction


@dataclass(frozen=True, kw_only=True)
class MaintainerInstruction(Instruction):
    """``MAINTAINER <name>`` (deprecated: use a LABEL)"""

    keyword: ClassVar[str] = "MAINTAINER"
    maintainer: str


@dataclass(frozen=True)
class StageInstructions:
    """A FROM and the instructions under it, before any graph analysis."""

    from_: FromInstruction
    instructions: tuple[Instruction, ...]


@dataclass(frozen=True)
class Dockerfile:
    """BuildKit ``instructions.Parse``: the global ARGs, then the stages."""

    meta_args: tuple[ArgInstruction, ...]
    stages: tuple[StageInstructions, ...]
    escape_token: str = "\\"
    filename: str = "Dockerfile"


# ---------------------------------------------------------------------------
# AST → typed instruction
# ---------------------------------------------------------------------------

class _Base(TypedDict):
    start_line: int
    end_line: int
    original: str
    file: str
    flags: tuple[str, ...]


@dataclass(frozen=True)
class _Request:
    """One node's raw material (BuildKit ``parseRequest``)."""

    node: Node
    command: str  # upper-cased keyword
    args: list[str]
    file: str

    @property
    def location(self) -> Location:
        n = self.node
        return Location(self.file, n.start_line, n.end_line or n.start_line, n.original)

    def base(self) -> _Base:
        n = self.node
        return {
            "start_line": n.start_line,
            "end_line": n.end_line or n.start_line,
            "original": n.original.strip(),
            "file": self.file,
            "flags": tuple(n.flags),
        }

    def error(self, message: str, hint: str | None = None) -> DockerfileError:
        return DockerfileError(message, location=self.location, hint=hint,
                               reference="dockerfile-instruction")

    def flags(self, *specs: FlagSpec) -> ParsedFlags:
        try:
            return parse_flags(self.node.flags, specs, instruction=self.command)
        except FlagError as exc:
            raise DockerfileError(
                f"{self.command}: {exc.message}", location=self.location, hint=exc.hint,
                reference="dockerfile-flag",
            ) from None


def _node_args(node: Node) -> list[str]:
    out: list[str] = []
    for arg in node.next:
        if not arg.children:
            out.append(arg.value)
        else:  # ONBUILD's nested instruction
            child = arg.children[0]
            out.append(child.value)
            out.extend(_node_args(child))
    return out


def _exactly_one(req: _Request) -> str:
    if len(req.args) != 1:
        raise req.error(f"{req.command} requires exactly one argument",
                        f"write {req.command} <value> (quote it if it contains spaces)")
    return req.args[0]


def _at_least_one(req: _Request) -> None:
    if not req.args:
        raise req.error(f"{req.command} requires at least one argument")


def _bool(name: str, default: bool = False) -> FlagSpec:
    return FlagSpec(name, FlagKind.BOOL, default)


def _str(name: str) -> FlagSpec:
    return FlagSpec(name, FlagKind.STRING)


def _strs(name: str) -> FlagSpec:
    return FlagSpec(name, FlagKind.STRINGS)


_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")


def _parse_from(req: _Request) -> FromInstruction:
    args = req.args
    name: str | None = None
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise req.error(
                f"invalid name for build stage: {args[2]!r}, name can't start with a number "
                "or contain symbols",
                "stage names start with a letter and contain only letters, digits, '-', '_' "
                "and '.'",
            )
    elif len(args) != 1:
        raise req.error("FROM requires either one or three arguments",
                        "write FROM <image> [AS <name>]")
    flags = req.flags(_str("platform"))
    return FromInstruction(**req.base(), base_name=args[0], stage_name=name,
                           platform=flags.string("platform") or None)


def _shell_dependent(req: _Request) -> tuple[tuple[str, ...], bool, tuple[HeredocFile, ...]]:
    heredocs = tuple(
        HeredocFile(h.name, h.content, h.chomp, h.expand) for h in req.node.heredocs
    )
    if req.node.is_json:
        return tuple(req.args), False, heredocs
    return (" ".join(req.args),) if req.args else (), True, heredocs


_NETWORK_MODES = ("default", "none", "host")
_SECURITY_MODES = ("sandbox", "insecure")


def _parse_run(req: _Request) -> RunInstruction:
    flags = req.flags(_strs("mount"), _str("network"), _str("security"))
    command, shell_form, heredocs = _shell_dependent(req)
    if not command:
        raise req.error("RUN requires at least one argument")
    specs = flags.strings("mount")
    mounts: list[Mount] | None = []
    try:
        for spec in specs:
            check_mount_from(spec)
        # Mount values with variables wait for dispatch; the rest fail early.
        if any("$" in spec for spec in specs):
            mounts = None
        else:
            mounts = [parse_mount(spec) for spec in specs]
    except FlagError as exc:
        raise req.error(f"RUN --mount: {exc.message}", exc.hint) from None
    network = flags.string("network")
    if network is not None and network not in _NETWORK_MODES:
        raise req.error(f"unsupported network mode {network!r}",
                        "use --network=default, --network=none or --network=host")
    security = flags.string("security")
    if security is not None and security not in _SECURITY_MODES:
        raise req.error(f"security {security!r} is not valid",
                        "use --security=sandbox or --security=insecure")
    return RunInstruction(
        **req.base(),
        command=command,
        shell_form=shell_form,
        heredocs=heredocs,
        mount_specs=specs,
        mounts=None if mounts is None else number_ssh_mounts(tuple(mounts)),
        network=network,
        security=security,
    )


def number_ssh_mounts(mounts: tuple[Mount, ...]) -> tuple[Mount, ...]:
    """Give each ssh mount without a target BuildKit's default socket path."""
    out: list[Mount] = []
    count = 0
    for m in mounts:
        if m.type == "ssh":
            if not m.target:
                m = replace(m, target=f"/run/buildkit/ssh_agent.{count}")
            count += 1
        out.append(m)
    return tuple(out)


def _parse_cmd(req: _Request) -> CmdInstruction:
    req.flags()
    command, shell_form, heredocs = _shell_dependent(req)
    return CmdInstruction(**req.base(), command=command, shell_form=shell_form,
                          heredocs=heredocs)


def _parse_entrypoint(req: _Request) -> EntrypointInstruction:
    req.flags()
    command, shell_form, heredocs = _shell_dependent(req)
    return EntrypointInstruction(**req.base(), command=command,
                                 shell_form=shell_form, heredocs=heredocs)


_HEREDOC_WORD = re.compile(r"^<<(-?)\s*(['\"]?)([^'\"\s]+)\2$")


def _heredoc_word(word: str) -> tuple[str, bool] | None:
    m = _HEREDOC_WORD.match(word)
    return (m.group(3), m.group(1) == "-") if m else None


def chomp_heredoc(content: str) -> str:
    """``<<-``: strip leading tabs from every line (BuildKit ``ChompHeredocContent``)."""
    return "".join(line.lstrip("\t") for line in content.splitlines(keepends=True))


def _sources_and_dest(req: _Request) -> tuple[tuple[str, ...], tuple[SourceContent, ...], str]:
    if len(req.args) < 2:
        raise req.error(
            f"{req.command} requires at least two arguments, but only one was provided. "
            "Destination could not be determined",
            f"write {req.command} <source>... <destination>",
        )
    *srcs, dest = req.args
    if not req.node.is_json and _heredoc_word(dest) is not None:
        raise req.error(f"{req.command} cannot accept a heredoc as a destination")
    lookup: dict[str, Heredoc] = {h.name: h for h in req.node.heredocs}
    paths: list[str] = []
    contents: list[SourceContent] = []
    for src in srcs:
        found = None if req.node.is_json else _heredoc_word(src)
        if found is not None and found[0] in lookup:
            name, chomp = found
            doc = lookup[name]
            data = chomp_heredoc(doc.content) if (chomp or doc.chomp) else doc.content
            contents.append(SourceContent(name, data, doc.expand))
        else:
            paths.append(src)
    return tuple(paths), tuple(contents), dest


_CHMOD_SYMBOLIC = re.compile(r"^[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+$")


def validate_chmod(value: str) -> str | None:
    """The error message for a bad ``--chmod`` value, or None when it is valid.

    Octal values must lie in 0..07777; symbolic ones (``u+x,go-w``) are allowed
    as in BuildKit's COPY non-octal chmod support.
    """
    if value.isdigit():
        if all(c in "01234567" for c in value) and int(value, 8) <= 0o7777:
            return None
    elif value and all(_CHMOD_SYMBOLIC.match(part) for part in value.split(",")):
        return None
    return (f"invalid chmod parameter: '{value}'. it should be octal string and between "
            "0 and 07777")


def _check_chmod(req: _Request, chmod: str | None) -> None:
    if chmod and "$" not in chmod:
        msg = validate_chmod(chmod)
        if msg:
            raise req.error(msg, "use an octal mode such as 0644 or a symbolic one such as u+x")


def _parse_copy(req: _Request) -> CopyInstruction:
    if len(req.args) < 2:
        _sources_and_dest(req)
    flags = req.flags(_strs("exclude"), _bool("parents"), _str("chown"), _str("from"),
                      _str("chmod"), _bool("link"))
    srcs, contents, dest = _sources_and_dest(req)
    from_ = flags.string("from") or None
    if from_ is not None and re.search(r"\$.", from_):
        raise req.error(
            "variable expansion is not supported for --from, define a new stage with FROM "
            "using ARG from global scope as a workaround",
            "add `ARG X` before the first FROM, a stage `FROM image:${X} AS src`, "
            "then COPY --from=src",
        )
    chmod = flags.string("chmod") or None
    _check_chmod(req, chmod)
    return CopyInstruction(
        **req.base(),
        sources=srcs, contents=contents, dest=dest, from_=from_,
        chown=flags.string("chown") or None, chmod=chmod, link=flags.boolean("link"),
        parents=flags.boolean("parents"), excludes=flags.strings("exclude"),
    )


def _is_remote_source(src: str) -> bool:
    """An ADD source BuildKit fetches (and may pin with --checksum): a URL or a Git ref."""
    if src.startswith(("http://", "https://", "git://", "git@", "ssh://")):
        return True
    return src.endswith(".git") or ".git#" in src


def _parse_add(req: _Request) -> AddInstruction:
    if len(req.args) < 2:
        _sources_and_dest(req)
    flags = req.flags(_strs("exclude"), _str("chown"), _str("chmod"), _bool("link"),
                      _bool("keep-git-dir"), _str("checksum"), _bool("unpack"))
    srcs, contents, dest = _sources_and_dest(req)
    chmod = flags.string("chmod") or None
    _check_chmod(req, chmod)
    checksum = flags.string("checksum") or None
    if checksum is not None:
        # A source still holding a variable is checked again once it is expanded.
        local = [s for s in srcs if "$" not in s and not _is_remote_source(s)]
        if local or contents:
            raise req.error(
                f"checksum requires HTTP(S) or Git sources, not {(local or ['<<heredoc'])[0]!r}",
                "drop --checksum for local files: their content is already in the cache key",
            )
    return AddInstruction(
        **req.base(),
        sources=srcs, contents=contents, dest=dest,
        chown=flags.string("chown") or None, chmod=chmod, link=flags.boolean("link"),
        keep_git_dir=flags.boolean("keep-git-dir"), checksum=checksum,
        excludes=flags.strings("exclude"),
        unpack=flags.boolean("unpack") if flags.is_used("unpack") else None,
    )


def _kv_pairs(req: _Request) -> tuple[KeyValue, ...]:
    args = req.args
    if not args:
        raise req.error(f"{req.command} requires at least one argument",
                        f"write {req.command} key=value")
    # The parser emits (key, value, delimiter) triples, delimiter "=" or "" for
    # the legacy ``ENV key value`` form; accept plain pairs too.
    triples = len(args) % 3 == 0 and all(args[i] in ("=", "") for i in range(2, len(args), 3))
    step = 3 if triples else 2
    if len(args) % step:
        raise req.error(f"Bad input to {req.command}, too many arguments")
    out = []
    for i in range(0, len(args), step):
        key = args[i]
        if not key:
            raise req.error(f"{req.command} names can not be blank")
        legacy = triples and args[i + 2] == ""
        out.append(KeyValue(key, args[i + 1], legacy))
    return tuple(out)


def _parse_env(req: _Request) -> EnvInstruction:
    req.flags()
    return EnvInstruction(**req.base(), pairs=_kv_pairs(req))


def _parse_label(req: _Request) -> LabelInstruction:
    req.flags()
    return LabelInstruction(**req.base(), pairs=_kv_pairs(req))


def _parse_arg(req: _Request) -> ArgInstruction:
    _at_least_one(req)
    req.flags()
    decls = []
    for word in req.args:
        name, eq, default = word.partition("=")
        if not name:
            raise req.error("ARG names can not be blank", "write ARG NAME or ARG NAME=default")
        decls.append(ArgDecl(name, default if eq else None))
    return ArgInstruction(**req.base(), args=tuple(decls))


def _parse_maintainer(req: _Request) -> MaintainerInstruction:
    value = _exactly_one(req)
    req.flags()
    return MaintainerInstruction(**req.base(), maintainer=value)


def _parse_workdir(req: _Request) -> WorkdirInstruction:
    value = _exactly_one(req)
    req.flags()
    return WorkdirInstruction(**req.base(), path=value)


def _parse_user(req: _Request) -> UserInstruction:
    value = _exactly_one(req)
    req.flags()
    return UserInstruction(**req.base(), user=value)


def _parse_expose(req: _Request) -> ExposeInstruction:
    _at_least_one(req)
    req.flags()
    return ExposeInstruction(**req.base(), ports=tuple(sorted(req.args)))


def _parse_volume(req: _Request) -> VolumeInstruction:
    _at_least_one(req)
    req.flags()
    volumes = []
    for v in req.args:
        v = v.strip()
        if not v:
            raise req.error("VOLUME specified can not be an empty string")
        volumes.append(v)
    return VolumeInstruction(**req.base(), volumes=tuple(volumes))


def _parse_stopsignal(req: _Request) -> StopSignalInstruction:
    # BuildKit never parses STOPSIGNAL's flags; neither do we.
    value = _exactly_one(req)
    return StopSignalInstruction(**req.base(), signal=value)


def _parse_shell(req: _Request) -> ShellInstruction:
    req.flags()
    if not req.args:
        raise req.error("SHELL requires at least one argument")
    if not req.node.is_json:
        raise req.error("SHELL requires the arguments to be in JSON form",
                        'write SHELL ["/bin/bash", "-c"]')
    return ShellInstruction(**req.base(), shell=tuple(req.args))


_MIN_INTERVAL_NS = 1_000_000  # container.MinimumDuration: 1ms


def _parse_interval(req: _Request, name: str, value: str | None) -> int:
    if not value:
        return 0
    try:
        ns = parse_duration(value)
    except ValueError as exc:
        raise req.error(
            f"HEALTHCHECK --{name}: {exc}", "write a duration such as 30s or 1m30s"
        ) from None
    if ns == 0:
        return 0
    if ns < _MIN_INTERVAL_NS:
        raise req.error(f'Interval "{name}" cannot be less than 1ms')
    return ns


def _parse_healthcheck(req: _Request) -> HealthcheckInstruction:
    if not req.args:
        raise req.error("HEALTHCHECK requires at least one argument",
                        "write HEALTHCHECK NONE or HEALTHCHECK CMD <command>")
    kind = req.args[0].upper()
    rest = req.args[1:]
    if kind == "NONE":
        if rest:
            raise req.error("HEALTHCHECK NONE takes no arguments")
        return HealthcheckInstruction(**req.base(), test=("NONE",))
    flags = req.flags(_str("interval"), _str("timeout"), _str("start-period"),
                      _str("start-interval"), _str("retries"))
    if kind != "CMD":
        raise req.error(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    cmd = tuple(rest) if req.node.is_json else (" ".join(rest),) if rest else ()
    if not cmd:
        raise req.error("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *cmd) if req.node.is_json else ("CMD-SHELL", *cmd)
    retries = 0
    raw_retries = flags.string("retries")
    if raw_retries:
        try:
            retries = int(raw_retries, 10)
        except ValueError:
            raise req.error(f'strconv.ParseInt: parsing "{raw_retries}": invalid syntax',
                            "--retries takes a whole number") from None
        if retries < 0:
            raise req.error(f"--retries cannot be negative ({retries})")
    return HealthcheckInstruction(
        **req.base(),
        test=test,
        interval=_parse_interval(req, "interval", flags.string("interval")),
        timeout=_parse_interval(req, "timeout", flags.string("timeout")),
        start_period=_parse_interval(req, "start-period", flags.string("start-period")),
        start_interval=_parse_interval(req, "start-interval", flags.string("start-interval")),
        retries=retries,
    )


_ONBUILD_PREFIX = re.compile(r"^\s*ONBUILD\s*", re.IGNORECASE)


def _parse_onbuild(req: _Request) -> OnbuildInstruction:
    if not req.args:
        raise req.error("ONBUILD requires at least one argument")
    req.flags()
    trigger_word = req.args[0].strip().upper()
    if trigger_word == "ONBUILD":
        raise req.error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger_word in ("MAINTAINER", "FROM"):
        raise req.error(f"{trigger_word} isn't allowed as an ONBUILD trigger")
    expression = _ONBUILD_PREFIX.sub("", req.node.original, count=1)
    for doc in req.node.heredocs:
        expression += "\n" + doc.content + doc.name
    child = _trigger_node(req.node)
    if child is None:
        raise req.error("ONBUILD requires an instruction to trigger")
    trigger = parse_instruction(child, file=req.file)
    return OnbuildInstruction(**req.base(), expression=expression,
                              trigger=trigger)


def _trigger_node(node: Node) -> Node | None:
    for arg in node.next:
        if arg.children:
            child = arg.children[0]
            # The nested node carries no position of its own in some parsers.
            if not child.start_line:
                child = replace_node(child, node)
            return child
    return None


def replace_node(child: Node, parent: Node) -> Node:
    """A copy of ``child`` positioned at ``parent`` (ONBUILD triggers share its line)."""
    return Node(
        value=child.value, next=child.next, children=child.children, flags=child.flags,
        original=child.original or _ONBUILD_PREFIX.sub("", parent.original, count=1),
        start_line=parent.start_line, end_line=parent.end_line,
        heredocs=child.heredocs or parent.heredocs, prev_comment=child.prev_comment,
        is_json=child.is_json,
    )


_PARSERS: dict[str, Callable[[_Request], Instruction]] = {
    "ADD": _parse_add,
    "ARG": _parse_arg,
    "CMD": _parse_cmd,
    "COPY": _parse_copy,
    "ENTRYPOINT": _parse_entrypoint,
    "ENV": _parse_env,
    "EXPOSE": _parse_expose,
    "FROM": _parse_from,
    "HEALTHCHECK": _parse_healthcheck,
    "LABEL": _parse_label,
    "MAINTAINER": _parse_maintainer,
    "ONBUILD": _parse_onbuild,
    "RUN": _parse_run,
    "SHELL": _parse_shell,
    "STOPSIGNAL": _parse_stopsignal,
    "USER": _parse_user,
    "VOLUME": _parse_volume,
    "WORKDIR": _parse_workdir,
}


def parse_instruction(node: Node, *, file: str = "Dockerfile") -> Instruction:
    """Type one instruction node; raises DockerfileError with its location."""
    command = node.value.upper()
    req = _Request(node=node, command=command, args=_node_args(node), file=file)
    parser = _PARSERS.get(command)
    if parser is None:
        close = did_you_mean(node.value)
        raise DockerfileError(
            f"unknown instruction: {node.value}",
            location=req.location,
            hint=f"did you mean {close.upper()}?" if close else
            "valid instructions: " + ", ".join(KEYWORDS),
            reference="unknown-instruction",
        )
    return parser(req)


def parse_dockerfile(result: ParseResult) -> Dockerfile:
    """Type every instruction and group them into global ARGs and stages.

    Like BuildKit, every instruction is typed, even in stages the target does
    not need, so a typo anywhere fails the build.
    """
    meta: list[ArgInstruction] = []
    stages: list[tuple[FromInstruction, list[Instruction]]] = []
    for node in result.instructions:
        instr = parse_instruction(node, file=result.filename)
        if isinstance(instr, FromInstruction):
            stages.append((instr, []))
        elif not stages:
            if isinstance(instr, ArgInstruction):
                meta.append(instr)
                continue
            raise DockerfileError(
                f"no build stage in current context: {instr.keyword} before the first FROM",
                location=instr.location,
                hint="only ARG may come before the first FROM; add a FROM line above it",
                reference="dockerfile-instruction",
            )
        else:
            stages[-1][1].append(instr)
    return Dockerfile(
        meta_args=tuple(meta),
        stages=tuple(StageInstructions(f, tuple(body)) for f, body in stages),
        escape_token=result.escape_token,
        filename=result.filename,
    )


_PORT_RE = re.compile(r"^(\d+)(?:-(\d+))?(?:/([A-Za-z]+))?$")


def normalize_ports(ports: Sequence[str]) -> tuple[str, ...]:
    """``80`` → ``80/tcp``; validates like docker/go-connections ``ParsePortSpecs``."""
    out: list[str] = []
    for spec in ports:
        m = _PORT_RE.match(spec)
        if m is None:
            raise ValueError(f"invalid containerPort: {spec}")
        proto = (m.group(3) or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise ValueError(f"invalid proto: {m.group(3)}")
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else start
        if end < start or end > 65535:
            raise ValueError(f"invalid containerPort: {spec}")
        out.extend(f"{p}/{proto}" for p in range(start, end + 1))
    return tuple(sorted(set(out)))
