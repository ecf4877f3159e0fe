"""Rules that mirror the rest of BuildKit's built-in build checks: how FROM lines,
stage names and instruction keywords are written (FromAsCasing, StageNameCasing,
ConsistentInstructionCasing, ReservedStageName), deprecated or overridden
instructions (MaintainerDeprecated, MultipleInstructionsDisallowed,
LegacyKeyValueFormat), the arguments of FROM (UndefinedArgInFrom,
InvalidDefaultArgInFrom, RedundantTargetPlatform, FromPlatformFlagConstDisallowed)
and COPY of files the .dockerignore excludes (CopyIgnoredFile).

Each one follows BuildKit's trigger so that `layerkit check` and `docker build
--check` agree on the same file.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from layerkit.dockerfile.shell import ShellLex
from layerkit.lint.buildkit_rules import _suggest
from layerkit.lint.findings import Finding, Fix, LineEdit
from layerkit.lint.model import Instruction, Stage, flag_values
from layerkit.lint.registry import LintInput, check, finding

# ARGs BuildKit defines before the first FROM (the platform of this machine stands in)
PREDEFINED_FROM_ARGS: dict[str, str] = {
    "TARGETPLATFORM": "linux/amd64", "TARGETOS": "linux", "TARGETARCH": "amd64",
    "TARGETVARIANT": "", "BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux",
    "BUILDARCH": "amd64", "BUILDVARIANT": "",
}


def _from_words(stage: Stage) -> list[str]:
    return [n.value for n in stage.from_node.next]


def _stage_span(stage: Stage) -> tuple[int, int]:
    return stage.line, stage.from_node.end_line or stage.line


# --------------------------------------------------------------------------- casing

@check("from-as-casing")
def from_as_casing(inp: LintInput) -> Iterator[Finding]:
    for stage in inp.model.stages:
        words = _from_words(stage)
        if len(words) < 3 or words[1].lower() != "as":
            continue
        kw, as_kw = stage.from_node.value, words[1]
        if not (kw.isupper() or kw.islower()):
            continue  # `From`: consistent-instruction-casing reports the keyword itself
        wanted = as_kw.upper() if kw.isupper() else as_kw.lower()
        if as_kw != wanted:
            yield finding(
                inp, "from-as-casing", _stage_span(stage),
                f"'{as_kw}' and '{kw}' keywords' casing do not match",
                f"write `{kw} ... {wanted} {words[2]}`",
            )


@check("stage-name-casing")
def stage_name_casing(inp: LintInput) -> Iterator[Finding]:
    for stage in inp.model.stages:
        words = _from_words(stage)
        if len(words) < 3 or words[1].lower() != "as":
            continue
        name = words[2]
        if name != name.lower():
            yield finding(
                inp, "stage-name-casing", _stage_span(stage),
                f"Stage name '{name}' should be lowercase",
                f"rename it to '{name.lower()}' (stage names are matched case-insensitively)",
            )


@check("consistent-instruction-casing")
def consistent_instruction_casing(inp: LintInput) -> Iterator[Finding]:
    nodes = inp.model.result.instructions
    lower = sum(1 for n in nodes if n.value.islower())
    upper = sum(1 for n in nodes if n.value.isupper())
    majority_lower = lower > upper  # a tie goes to upper case, as in BuildKit
    for node in nodes:
        written = node.value
        if majority_lower and written != written.lower():
            casing = "lowercase"
        elif not majority_lower and written != written.upper():
            casing = "uppercase"
        else:
            continue
        yield finding(
            inp, "consistent-instruction-casing", (node.start_line, node.start_line),
            f"Command '{written}' should match the case of the command majority ({casing})",
            f"write it as {written.lower() if majority_lower else written.upper()}",
        )


_RESERVED = ("context", "scratch")


@check("reserved-stage-name")
def reserved_stage_name(inp: LintInput) -> Iterator[Finding]:
    for stage in inp.model.stages:
        if stage.name in _RESERVED:
            yield finding(
                inp, "reserved-stage-name", _stage_span(stage),
                f'Stage name should not use the same name as reserved stage "{stage.name}"',
                "rename the stage and the COPY --from / FROM references to it",
            )


# --------------------------------------------------------------------------- instructions

@check("maintainer-deprecated")
def maintainer_deprecated(inp: LintInput) -> Iterator[Finding]:
    for instr in inp.model.all_instructions():
        if instr.keyword == "maintainer":
            who = " ".join(instr.args).replace('"', '\\"')
            yield finding(
                inp, "maintainer-deprecated", instr,
                "Maintainer instruction is deprecated in favor of using label",
                f'use LABEL org.opencontainers.image.authors="{who}"',
            )


_ONCE = ("cmd", "entrypoint", "healthcheck")


@check("multiple-instructions-disallowed")
def multiple_instructions_disallowed(inp: LintInput) -> Iterator[Finding]:
    for stage in inp.model.stages:
        seen: dict[str, Instruction] = {}
        for instr in stage.instructions:
            if instr.keyword not in _ONCE:
                continue
            earlier = seen.get(instr.keyword)
            if earlier is not None:
                # reported where BuildKit reports it: at the instruction that is overridden
                kw = earlier.node.value.upper()
                yield finding(
                    inp, "multiple-instructions-disallowed", earlier,
                    f"Multiple {kw} instructions should not be used in the same stage because "
                    "only the last one will be used",
                    f"remove this {kw}; the one at line {instr.line} replaces it",
                )
            seen[instr.keyword] = instr


_LEGACY_LINE = re.compile(r"^(?P<lead>\s*)(?P<kw>\S+)(?P<sp>[ \t]+)(?P<key>\S+)[ \t]+(?P<value>.*?)"
                          r"(?P<trail>[ \t]*)(?P<eol>\r?\n?)$")


def _legacy_fix(inp: LintInput, instr: Instruction, key: str) -> Fix | None:
    """``ENV KEY value`` -> ``ENV KEY=value`` when it is one line and unambiguous."""
    if instr.end_line != instr.line:
        return None
    line = inp.model.lines[instr.line - 1]
    m = _LEGACY_LINE.match(line)
    if m is None or m.group("kw").lower() != instr.keyword or m.group("key") != key:
        return None
    value = m.group("value")
    if not value or "=" in m.group("key"):
        return None
    escape = inp.model.result.escape_token
    if re.search(r"\s", value):
        # quoting keeps the words together; values with their own quotes are left alone
        if any(ch in value for ch in "\"'`") or escape in value:
            return None
        value = f'"{value}"'
    new = (m.group("lead") + m.group("kw") + m.group("sp") + key + "=" + value
           + m.group("trail") + m.group("eol"))
    return Fix(f"write {instr.keyword.upper()} {key}=...", (LineEdit(instr.line, instr.line, new),))


@check("legacy-key-value-format")
def legacy_key_value_format(inp: LintInput) -> Iterator[Finding]:
    for instr in inp.model.all_instructions():
        if instr.keyword not in ("env", "label"):
            continue
        args = instr.args
        # the parser gives (key, value, separator) triples; "" marks `KEY value`
        if len(args) != 3 or args[2] != "":
            continue
        kw = instr.node.value.upper()
        fix = _legacy_fix(inp, instr, args[0])
        yield finding(
            inp, "legacy-key-value-format", instr,
            f'"{kw} key=value" should be used instead of legacy "{kw} key value" format',
            f"write {kw} {args[0]}=<value>" + (" (fixable with --fix)" if fix else ""),
            fix,
        )


# --------------------------------------------------------------------------- FROM arguments

def _lex(escape: str) -> ShellLex:
    return ShellLex(escape)


def _global_values(inp: LintInput) -> tuple[dict[str, str], set[str]]:
    """Global ARG defaults (expanded in order, as BuildKit does) and all declared names."""
    lex = _lex(inp.model.result.escape_token)
    values = dict(PREDEFINED_FROM_ARGS)
    declared: set[str] = set(PREDEFINED_FROM_ARGS)
    for instr in inp.model.global_args:
        if instr.keyword != "arg":
            continue
        for word in instr.args:
            name, sep, raw = word.partition("=")
            if not name:
                continue
            declared.add(name)
            if not sep:
                continue
            try:
                values[name] = lex.process_word_with_matches(raw, values).result
            except Exception:
                values[name] = raw
    return values, declared


_NAME_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_REFERENCE = re.compile(
    rf"^(?:(?:{_DOMAIN}(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?)/)?"
    rf"{_NAME_PART}(?:/{_NAME_PART})*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)


def valid_reference(ref: str) -> bool:
    """Is ``ref`` a well-formed image reference (distribution/reference grammar)?"""
    if not ref or len(ref) > 255 + 200:
        return False
    return _REFERENCE.match(ref) is not None


@check("invalid-default-arg-in-from")
def invalid_default_arg_in_from(inp: LintInput) -> Iterator[Finding]:
    values, _declared = _global_values(inp)
    lex = _lex(inp.model.result.escape_token)
    for stage in inp.model.stages:
        base = stage.base
        if "$" not in base:
            continue
        try:
            result = lex.process_word_with_matches(base, values).result
        except Exception:
            continue
        if not valid_reference(result):
            yield finding(
                inp, "invalid-default-arg-in-from", _stage_span(stage),
                f"Default value for ARG {base} results in empty or invalid base image name"
                + (f' ("{result}")' if result else ""),
                "give the global ARG a default that makes a valid image reference, or use "
                "${NAME:-default} in the FROM line",
            )


def _from_words_checked(stage: Stage) -> list[str]:
    words = [stage.base]
    words.extend(flag_values(stage.from_node.flags, "platform"))
    return words


@check("undefined-arg-in-from")
def undefined_arg_in_from(inp: LintInput) -> Iterator[Finding]:
    values, declared = _global_values(inp)
    lex = _lex(inp.model.result.escape_token)
    for stage in inp.model.stages:
        reported: set[str] = set()
        for word in _from_words_checked(stage):
            if "$" not in word:
                continue
            try:
                unmatched = lex.process_word_with_matches(word, values).unmatched
            except Exception:
                continue
            for name in sorted(unmatched - declared - reported):
                reported.add(name)
                guess = _suggest(name, declared)
                extra = f" (did you mean {guess}?)" if guess else ""
                yield finding(
                    inp, "undefined-arg-in-from", _stage_span(stage),
                    f"FROM argument '{name}' is not declared{extra}",
                    f"declare `ARG {name}=<default>` before the first FROM",
                )


_TARGETPLATFORM = re.compile(r"^\$(?:TARGETPLATFORM|\{TARGETPLATFORM\})$")


@check("redundant-target-platform")
def redundant_target_platform(inp: LintInput) -> Iterator[Finding]:
    for stage in inp.model.stages:
        for value in flag_values(stage.from_node.flags, "platform"):
            if _TARGETPLATFORM.match(value.strip("\"'")):
                yield finding(
                    inp, "redundant-target-platform", _stage_span(stage),
                    f"Setting platform to predefined {value} in FROM is redundant as this is "
                    "the default behavior",
                    "remove the --platform flag",
                )


@check("from-platform-flag-const-disallowed")
def from_platform_flag_const_disallowed(inp: LintInput) -> Iterator[Finding]:
    for stage in inp.model.stages:
        for value in flag_values(stage.from_node.flags, "platform"):
            value = value.strip("\"'")
            if not value or "$" in value:
                continue
            parts = value.lower().split("/")
            name = stage.name or ""
            # BuildKit accepts a constant in a stage named after its OS or architecture
            if name and any(p and p in name for p in parts[:2]):
                continue
            yield finding(
                inp, "from-platform-flag-const-disallowed", _stage_span(stage),
                f'FROM --platform flag should not use constant value "{value}"',
                "drop the flag and pass --platform to the build, use $BUILDPLATFORM, or name "
                f"the stage after the platform (e.g. AS build_{parts[-1]})",
            )


# --------------------------------------------------------------------------- .dockerignore

@check("copy-ignored-file")
def copy_ignored_file(inp: LintInput) -> Iterator[Finding]:
    ctx = inp.context
    if ctx is None:
        return
    for instr in inp.model.all_instructions():
        if instr.keyword not in ("copy", "add") or not instr.from_context():
            continue
        if instr.node.heredocs:
            continue
        sources, _dest = instr.copy_parts()
        for src in sources:
            if "$" in src or any(ch in src for ch in "*?[") or "://" in src:
                continue
            if src.startswith("git@"):
                continue
            rel = posixpath.normpath(src.replace("\\", "/").lstrip("/"))
            if rel in (".", "") or rel.startswith(".."):
                continue
            # a `!` exception below an ignored directory still sends those files
            if ctx.ignored(rel) and not ctx.may_reinclude(rel):
                kw = instr.node.value.upper()
                yield finding(
                    inp, "copy-ignored-file", instr,
                    f'Attempting to {kw} file "{src}" that is excluded by .dockerignore',
                    "remove it from .dockerignore (or add a `!` exception), or stop copying it",
                )


# --------------------------------------------------------------------------- continuations

@check("no-empty-continuation")
def no_empty_continuation(inp: LintInput) -> Iterator[Finding]:
    model = inp.model
    warned = {w.line for w in model.result.warnings if "continuation" in w.message.lower()}
    if not warned:
        return
    for instr in model.all_instructions():
        if not any(instr.line <= line <= instr.end_line for line in warned):
            continue
        fix = None
        if not instr.node.heredocs:
            # blank lines inside a continued instruction carry nothing: dropping them
            # leaves the instruction as the parser already reads it
            blanks = [n for n in range(instr.line + 1, instr.end_line + 1)
                      if not model.line_text(n).strip()]
            if blanks:
                fix = Fix("remove the empty continuation lines",
                          tuple(LineEdit(n, n, "") for n in blanks))
        yield finding(
            inp, "no-empty-continuation", instr,
            "Empty continuation line: blank lines inside an instruction continued with "
            f"`{model.result.escape_token}` will become errors in a future release",
            "remove the blank line(s) (or put a `#` comment there)"
            + (" (fixable with --fix)" if fix else ""),
            fix,
        )
