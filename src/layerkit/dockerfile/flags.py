"""Instruction flags: turns ``["--from=build", "--link"]`` into typed values.

Mirrors BuildKit's ``BFlags`` (frontend/dockerfile/instructions/bflag.go):
every instruction declares the flags it accepts, each one a bool, a string or
a repeatable string list. Parsing then enforces the same rules BuildKit does:

- every flag starts with ``--``; a bare ``--`` stops flag parsing;
- an unknown flag is an error (with a "did you mean" suggestion);
- a non-repeatable flag given twice is an error;
- a bool flag accepts ``--x``, ``--x=true`` and ``--x=false`` (any case);
- a string flag needs ``=value`` (an empty value is allowed: ``--chown=``).

Errors are raised as :class:`FlagError` (message + hint, no location); the
instruction parser attaches the source location.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum

from layerkit.fastclass import dataclass, field

__all__ = [
    "FlagError",
    "FlagKind",
    "FlagSpec",
    "ParsedFlags",
    "parse_flags",
    "suggest",
]


class FlagKind(Enum):
    BOOL = "bool"
    STRING = "string"
    STRINGS = "strings"  # repeatable


@dataclass(frozen=True)
class FlagSpec:
    name: str
    kind: FlagKind
    default: str | bool | None = None


class FlagError(ValueError):
    """A bad flag; ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class ParsedFlags:
    """The values of the declared flags, plus which ones were written."""

    values: dict[str, str | bool | tuple[str, ...] | None] = field(default_factory=dict)
    used: tuple[str, ...] = ()

    def string(self, name: str) -> str | None:
        value = self.values.get(name)
        assert value is None or isinstance(value, str)
        return value

    def boolean(self, name: str) -> bool:
        value = self.values.get(name)
        return bool(value)

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.values.get(name)
        if value is None:
            return ()
        assert isinstance(value, tuple)
        return value

    def is_used(self, name: str) -> bool:
        return name in self.used


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (small inputs only)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def suggest(word: str, candidates: Iterable[str], *, case_sensitive: bool = False) -> str | None:
    """The closest candidate to ``word``, if it is close enough to be a typo.

    Like BuildKit's ``util/suggest``: the candidate with the smallest edit
    distance qualifies when that distance is at most 2 (or a third of the
    word's length, for long words): ``tmp`` → ``tmpfs``, ``mont`` → ``mount``.
    """
    key = word if case_sensitive else word.lower()
    if len(key) < 2:
        return None
    best: tuple[int, str] | None = None
    for cand in candidates:
        ckey = cand if case_sensitive else cand.lower()
        if ckey == key:
            continue
        dist = _distance(key, ckey)
        limit = max(2, len(key) // 3)
        if dist <= limit and (best is None or dist < best[0]):
            best = (dist, cand)
    return best[1] if best else None


def parse_flags(raw: Sequence[str], specs: Sequence[FlagSpec], *, instruction: str) -> ParsedFlags:
    """Parse ``raw`` (``--name[=value]`` strings) against ``specs``."""
    by_name = {s.name: s for s in specs}
    values: dict[str, str | bool | tuple[str, ...] | None] = {}
    for decl in specs:
        if decl.kind is FlagKind.BOOL:
            values[decl.name] = bool(decl.default)
        elif decl.kind is FlagKind.STRING:
            values[decl.name] = decl.default if isinstance(decl.default, str) else None
        else:
            values[decl.name] = ()
    used: list[str] = []
    for arg in raw:
        if not arg.startswith("--"):
            raise FlagError(f"{instruction} flag should start with -- : {arg}")
        if arg == "--":
            break
        body = arg[2:]
        name, eq, value = body.partition("=")
        found = by_name.get(name)
        if found is None:
            raise FlagError(
                f"unknown flag: {name}", _unknown_flag_hint(name, instruction, list(by_name))
            )
        spec = found
        if name in used and spec.kind is not FlagKind.STRINGS:
            raise FlagError(
                f"duplicate flag specified: {name}",
                f"--{name} may be given only once on {instruction}",
            )
        used.append(name)
        if spec.kind is FlagKind.BOOL:
            if eq and value == "":
                raise FlagError(
                    f"missing a value on flag: {name}", f"write --{name} or --{name}=true"
                )
            lower = value.lower()
            if lower in ("", "true"):
                values[name] = True
            elif lower == "false":
                values[name] = False
            else:
                raise FlagError(
                    f"expecting boolean value for flag {name}, not: {value}",
                    f"use --{name}=true or --{name}=false",
                )
        else:
            if not eq:
                raise FlagError(f"missing a value on flag: {name}", f"write --{name}=<value>")
            if spec.kind is FlagKind.STRING:
                values[name] = value
            else:
                current = values[name]
                assert isinstance(current, tuple)
                values[name] = (*current, value)
    return ParsedFlags(values=values, used=tuple(used))


# Which instructions accept which flags, for hints on a flag used in the wrong place.
_FLAG_HOMES: dict[str, tuple[str, ...]] = {
    "from": ("COPY",),
    "platform": ("FROM",),
    "mount": ("RUN",),
    "network": ("RUN",),
    "security": ("RUN",),
    "chown": ("COPY", "ADD"),
    "chmod": ("COPY", "ADD"),
    "link": ("COPY", "ADD"),
    "exclude": ("COPY", "ADD"),
    "parents": ("COPY",),
    "checksum": ("ADD",),
    "keep-git-dir": ("ADD",),
    "unpack": ("ADD",),
    "interval": ("HEALTHCHECK",),
    "timeout": ("HEALTHCHECK",),
    "start-period": ("HEALTHCHECK",),
    "start-interval": ("HEALTHCHECK",),
    "retries": ("HEALTHCHECK",),
}


def _unknown_flag_hint(name: str, instruction: str, known: list[str]) -> str:
    close = suggest(name, known)
    if close is not None:
        return f"did you mean {close}?"
    homes = _FLAG_HOMES.get(name)
    if homes:
        return f"--{name} is a flag of {' and '.join(homes)}, not of {instruction}"
    if known:
        return f"{instruction} accepts: " + ", ".join(f"--{k}" for k in sorted(known))
    return f"{instruction} accepts no flags"
