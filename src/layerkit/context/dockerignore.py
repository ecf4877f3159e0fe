"""The ``.dockerignore`` layer: turns an ignore file into ``IgnoreRules``.

Reading follows ``ignorefile.ReadAll`` and matching follows
``patternmatcher`` (see ``patternmatcher.py``).  On top of that we keep where
each pattern came from (file and line) so that errors and "why is this file
missing?" hints can point at the line responsible.

Which file applies (BuildKit's rule): ``<Dockerfile name>.dockerignore`` next
to the Dockerfile wins; otherwise ``<context>/.dockerignore``; otherwise none.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from layerkit.context.patternmatcher import (
    BadPatternError,
    MatchInfo,
    Pattern,
    PatternMatcher,
    read_all,
)
from layerkit.errors import ContextError, Location
from layerkit.fastclass import dataclass

__all__ = ["IgnoreRule", "IgnoreRules", "load_ignore_rules", "parse_ignore_file"]

_SYNTAX_HINT = (
    'patterns use Go filepath.Match syntax: "*" and "?" (never matching "/"), '
    '"[a-z]" or "[^a-z]" classes (closed with "]", no leading or trailing "-"), '
    '"**" for any number of directories, and "\\" to escape the next character'
)
_BANG_HINT = (
    'a "!" must be followed by the pattern it re-includes, e.g. "!README.md"; '
    "complete the line or delete it"
)


@dataclass(frozen=True)
class IgnoreRule:
    """One pattern as ``ReadAll`` returns it, with its 1-based line number."""

    pattern: str
    line: int


class IgnoreRules:
    """Ordered ignore patterns; the last matching pattern wins."""

    __slots__ = ("matcher", "rules", "source")

    def __init__(self, rules: Sequence[IgnoreRule] = (), source: str | None = None) -> None:
        """Check and compile every pattern now; a bad one is a ContextError."""
        self.source = source
        kept: list[IgnoreRule] = []
        compiled: list[Pattern] = []
        for rule in rules:
            try:
                patterns = PatternMatcher([rule.pattern]).patterns
                if not patterns:
                    # Blank after Go's TrimSpace (e.g. "/\r/" reads as "\r"): New drops it.
                    continue
                (pattern,) = patterns
                pattern.compile()  # fail now, not halfway through a walk
            except BadPatternError as exc:
                raise _pattern_error(rule, source, str(exc)) from exc
            kept.append(rule)
            compiled.append(pattern)
        # Kept rules stay index-aligned with the matcher's patterns (explain relies on it).
        self.rules: tuple[IgnoreRule, ...] = tuple(kept)
        self.matcher = PatternMatcher.from_patterns(compiled)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __repr__(self) -> str:
        return f"IgnoreRules(source={self.source!r}, patterns={self.patterns!r})"

    @property
    def patterns(self) -> list[str]:
        return [rule.pattern for rule in self.rules]

    def matches(self, rel_path: str) -> bool:
        """Whether the slash path (relative to the context root) is ignored.

        Evaluated as BuildKit's walker does: ``MatchesUsingParentResults`` on
        each parent directory in turn, then on the path.  This can differ from
        ``MatchesOrParentMatches`` (docs/context.md, "two APIs disagree").
        """
        if not self.rules:
            return False
        path, info = self._parent_info(rel_path)
        return self.matcher.matches_using_parent_results(path, info)[0]

    def _parent_info(self, rel_path: str) -> tuple[str, MatchInfo]:
        parts = rel_path.strip("/").split("/")
        info: MatchInfo = ()
        for i in range(1, len(parts)):
            _, info = self.matcher.matches_using_parent_results("/".join(parts[:i]), info)
        return "/".join(parts), info

    def match_incremental(self, rel_path: str, parent: MatchInfo) -> tuple[bool, MatchInfo]:
        """``MatchesUsingParentResults``, for walkers that know the parent's info."""
        return self.matcher.matches_using_parent_results(rel_path, parent)

    def may_reinclude_below(self, dir_rel: str) -> bool:
        """Whether a '!' pattern could re-include something below an ignored dir."""
        return self.matcher.may_reinclude_below(dir_rel)

    def explain(self, rel_path: str) -> tuple[str, int] | None:
        """The (pattern, line) that ignores ``rel_path``, or None if it is kept.

        That is the last inclusion pattern to fire for the path, evaluated
        exactly as ``matches`` does.
        """
        if not self.rules:
            return None
        path, info = self._parent_info(rel_path)
        matched = False
        culprit = -1
        for index, pattern in enumerate(self.matcher.patterns):
            hit = bool(info) and info[index]
            if not hit:
                if pattern.exclusion != matched:
                    continue
                hit = pattern.match(path)
            if hit:
                matched = not pattern.exclusion
                culprit = index
        if not matched:
            return None
        rule = self.rules[culprit]
        return rule.pattern, rule.line

    def describe(self, rel_path: str) -> str | None:
        """A hint such as 'excluded by .dockerignore line 7 ("*.txt")'."""
        found = self.explain(rel_path)
        if found is None:
            return None
        pattern, line = found
        name = os.path.basename(self.source) if self.source else ".dockerignore"
        return f'excluded by {name} line {line} ("{pattern}")'


def _pattern_error(rule: IgnoreRule, source: str | None, reason: str) -> ContextError:
    name = source or ".dockerignore"
    bang = rule.pattern == "!"
    return ContextError(
        f'invalid pattern "{rule.pattern}" in {name} line {rule.line}: {reason}',
        location=Location(file=name, line=rule.line, text=rule.pattern),
        hint=_BANG_HINT if bang else _SYNTAX_HINT,
        reference="dockerignore-invalid",
    )


def parse_ignore_file(text: str, source: str) -> IgnoreRules:
    """Parse ignore-file text; ``source`` names the file in errors and hints."""
    lines = text.split("\n")
    rules: list[IgnoreRule] = []
    for line, pattern in read_all(text):
        rules.append(IgnoreRule(pattern, line))
    try:
        return IgnoreRules(rules, source)
    except ContextError as exc:
        # Show the line as the user wrote it, not the cleaned pattern.
        if exc.location is not None and 0 < exc.location.line <= len(lines):
            raw = lines[exc.location.line - 1].rstrip("\r")
            exc.location = Location(file=source, line=exc.location.line, text=raw)
        raise


def ignore_file_for(context_dir: Path, dockerfile: Path | None) -> Path | None:
    """The ignore file BuildKit would use, or None."""
    if dockerfile is not None:
        specific = dockerfile.parent / (dockerfile.name + ".dockerignore")
        if specific.is_file():
            return specific
    default = context_dir / ".dockerignore"
    return default if default.is_file() else None


def load_ignore_rules(context_dir: Path, dockerfile: Path | None) -> IgnoreRules:
    """Load the applicable ignore file; empty rules when there is none."""
    path = ignore_file_for(Path(context_dir), Path(dockerfile) if dockerfile else None)
    if path is None:
        return IgnoreRules()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContextError(
            f"cannot read {path}: {exc.strerror}",
            hint="make the ignore file readable, or remove it",
        ) from exc
    # Lossless for any bytes: undecodable ones become surrogates, like paths.
    return parse_ignore_file(data.decode("utf-8", "surrogateescape"), str(path))
