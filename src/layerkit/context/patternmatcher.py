"""Go-compatible path patterns: turns pattern strings into matchers.

This is a behavioural port of three pieces of Go that BuildKit relies on:

* ``path/filepath.Match`` (``filepath_match``): the glob syntax used to check
  patterns and to expand wildcard COPY sources;
* ``moby/patternmatcher`` (``PatternMatcher``): ``.dockerignore`` and
  ``COPY --exclude`` matching, including the deprecated ``Matches``;
* ``moby/patternmatcher/ignorefile.ReadAll`` (``read_all``): the ignore-file
  reader.

Patternmatcher compiles each pattern to a Go regular expression; we emit the
very same regexp text (``compile_pattern``, checked against the conformance
corpus) and then translate that Go RE2 text into Python ``re`` syntax, so quirks
of the Go design (``[`` classes copied verbatim, ``\\`` escapes) carry over.
The rationale and the known differences are in docs/context.md.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = [
    "BAD_PATTERN",
    "BadPatternError",
    "MatchInfo",
    "Pattern",
    "PatternMatcher",
    "compile_pattern",
    "filepath_match",
    "go_clean",
    "go_dir",
    "go_trim_space",
    "has_wildcards",
    "matches",
    "read_all",
]

BAD_PATTERN: Final = "syntax error in pattern"

# Go's unicode.IsSpace set, used by strings.TrimSpace (Python's str.strip()
# also strips \x1c-\x1f, which Go keeps).
_GO_SPACE: Final = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# Characters patternmatcher escapes because they mean something to a regexp
# but nothing to filepath.Match.  Note: '^' is deliberately not among them.
_SHOULD_ESCAPE: Final = frozenset(".+()|{}$")

# A MatchInfo is the per-pattern "matched" vector of a parent directory;
# the empty tuple is Go's zero MatchInfo (no information about parents).
MatchInfo = tuple[bool, ...]


class BadPatternError(ValueError):
    """A pattern is malformed (Go: filepath.ErrBadPattern or a New() error)."""


def go_trim_space(text: str) -> str:
    """strings.TrimSpace."""
    return text.strip(_GO_SPACE)


def go_clean(path: str) -> str:
    """filepath.Clean for slash-separated paths (posixpath.normpath keeps '//')."""
    if not path:
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(comp)
    joined = "/".join(out)
    if rooted:
        return "/" + joined
    return joined or "."


def go_dir(path: str) -> str:
    """filepath.Dir: everything up to the last '/', cleaned."""
    return go_clean(path[: path.rfind("/") + 1])


def has_wildcards(name: str) -> bool:
    """fsutil containsWildcards: an unescaped '*', '?' or '['."""
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "\\":
            i += 1
        elif ch in "*?[":
            return True
        i += 1
    return False


# --- filepath.Match -------------------------------------------------------

_GlobToken = tuple[str, str]


def _get_esc(pattern: str, i: int) -> tuple[str, int]:
    # One member of a bracket expression; Go's getEsc rules, including the
    # requirement that something must follow it.
    n = len(pattern)
    if i >= n or pattern[i] in "-]":
        raise BadPatternError(BAD_PATTERN)
    if pattern[i] == "\\":
        i += 1
        if i >= n:
            raise BadPatternError(BAD_PATTERN)
    ch = pattern[i]
    i += 1
    if i >= n:
        raise BadPatternError(BAD_PATTERN)
    return ch, i


def _class_regex(negated: bool, ranges: Sequence[tuple[str, str]]) -> str:
    # filepath.Match tests lo <= r <= hi, so a reversed range is simply empty.
    items = [
        re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}"
        for lo, hi in ranges
        if lo <= hi
    ]
    if not items:
        return r"[\s\S]" if negated else "(?!)"
    return "[" + ("^" if negated else "") + "".join(items) + "]"


def _parse_glob(pattern: str) -> list[_GlobToken]:
    """Tokenise a filepath.Match pattern, raising on what Go rejects."""
    tokens: list[_GlobToken] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            tokens.append(("re", "[^/]*"))
            i += 1
        elif ch == "?":
            tokens.append(("re", "[^/]"))
            i += 1
        elif ch == "[":
            i += 1
            negated = i < n and pattern[i] == "^"
            if negated:
                i += 1
            ranges: list[tuple[str, str]] = []
            while True:
                if i < n and pattern[i] == "]" and ranges:
                    i += 1
                    break
                lo, i = _get_esc(pattern, i)
                hi = lo
                if pattern[i] == "-":
                    hi, i = _get_esc(pattern, i + 1)
                ranges.append((lo, hi))
            tokens.append(("re", _class_regex(negated, ranges)))
        elif ch == "\\":
            i += 1
            if i >= n:
                raise BadPatternError(BAD_PATTERN)
            tokens.append(("lit", pattern[i]))
            i += 1
        else:
            tokens.append(("lit", ch))
            i += 1
    return tokens


_GLOB_CACHE: dict[str, re.Pattern[str]] = {}


def _glob_regex(pattern: str) -> re.Pattern[str]:
    compiled = _GLOB_CACHE.get(pattern)
    if compiled is None:
        body = "".join(re.escape(v) if k == "lit" else v for k, v in _parse_glob(pattern))
        compiled = re.compile(body, re.DOTALL)
        if len(_GLOB_CACHE) < 4096:
            _GLOB_CACHE[pattern] = compiled
    return compiled


def filepath_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match on '/'-separated names; BadPatternError on bad syntax."""
    return _glob_regex(pattern).fullmatch(name) is not None


# --- patternmatcher compile: pattern -> Go regexp text ----------------------


def compile_pattern(pattern: str, sep: str = "/") -> tuple[str, str | None]:
    """Return (match type, Go regexp text) exactly as patternmatcher builds them.

    The match type is "exact", "prefix", "suffix" or "regexp"; the regexp text
    is only produced for "regexp".  ``sep`` may be "\\" to mimic Windows.
    """
    esc_sl = "\\\\" if sep == "\\" else sep
    reg = "^"
    kind = "exact"
    i, n = 0, len(pattern)
    first = True
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == sep:  # "**/" is the same as "**"
                    i += 1
                if i >= n:
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        reg += ".*"
                        kind = "regexp"
                else:
                    reg += "(.*" + esc_sl + ")?"
                    kind = "regexp"
                if first:
                    kind = "suffix"
            else:
                reg += "[^" + esc_sl + "]*"
                kind = "regexp"
        elif ch == "?":
            reg += "[^" + esc_sl + "]"
            kind = "regexp"
        elif ch in _SHOULD_ESCAPE:
            reg += "\\" + ch
        elif ch == "\\":
            if sep == "\\":
                reg += esc_sl
            elif i < n:
                reg += "\\" + pattern[i]
                i += 1
                kind = "regexp"
            else:
                reg += "\\"
        elif ch in "[]":
            reg += ch
            kind = "regexp"
        else:
            reg += ch
        first = False
    if kind != "regexp":
        return kind, None
    return kind, reg + "$"


# --- Go RE2 text -> Python re text -------------------------------------------

_POSIX_CLASSES: Final = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_PERL_CLASSES: Final = {"d": "0-9", "s": "\\t\\n\\f\\r ", "w": "0-9A-Za-z_"}


def _escape_to_py(e: str, in_class: bool) -> str:
    if not (e.isascii() and e.isalnum()):
        return "\\" + e  # escaped punctuation or non-ASCII: a literal in both
    if e in _PERL_CLASSES:
        return _PERL_CLASSES[e] if in_class else "[" + _PERL_CLASSES[e] + "]"
    if e.lower() in _PERL_CLASSES and not in_class:
        return "[^" + _PERL_CLASSES[e.lower()] + "]"
    if e in "afnrtvx" or (not in_class and e in "bBA"):
        return "\\" + e
    if e == "z" and not in_class:
        return r"\Z"
    # \pN, \Q..\E, \C, octal and the rest: not supported (docs/context.md).
    raise BadPatternError(BAD_PATTERN)


def _go_regex_to_py(go: str) -> str:
    out: list[str] = []
    i, n = 0, len(go)
    while i < n:
        ch = go[i]
        if ch == "\\":
            if i + 1 >= n:
                raise BadPatternError(BAD_PATTERN)
            out.append(_escape_to_py(go[i + 1], in_class=False))
            i += 2
        elif ch == "[":
            i += 1
            out.append("[")
            if i < n and go[i] == "^":
                out.append("^")
                i += 1
            first = True
            while True:
                if i >= n:
                    raise BadPatternError(BAD_PATTERN)
                c = go[i]
                if c == "]" and not first:
                    out.append("]")
                    i += 1
                    break
                first = False
                if go.startswith("[:", i):
                    end = go.find(":]", i + 2)
                    name = go[i + 2 : end] if end != -1 else ""
                    if name in _POSIX_CLASSES:
                        out.append(_POSIX_CLASSES[name])
                        i = end + 2
                        continue
                if c == "\\":
                    if i + 1 >= n:
                        raise BadPatternError(BAD_PATTERN)
                    out.append(_escape_to_py(go[i + 1], in_class=True))
                    i += 2
                    continue
                # Literal in RE2 classes, but set syntax (or a warning) in Python.
                out.append("\\" + c if c in "[]&~|" else c)
                i += 1
        elif ch == "$" and i == n - 1:
            out.append(r"\Z")  # Python's '$' would also match before a final "\n"
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _compile_python(go_regex: str) -> re.Pattern[str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(_go_regex_to_py(go_regex))
    except re.error as exc:  # e.g. the reversed range in "[Local-Only]"
        raise BadPatternError(BAD_PATTERN) from exc


# --- patternmatcher ----------------------------------------------------------


class Pattern:
    """One cleaned pattern; compiled lazily, like Go, on first match."""

    __slots__ = ("_compiled", "_error", "_kind", "cleaned", "dirs", "exclusion")

    def __init__(self, cleaned: str, exclusion: bool) -> None:
        self.cleaned = cleaned
        self.exclusion = exclusion
        self.dirs = cleaned.split("/")
        self._kind: str | None = None
        self._compiled: re.Pattern[str] | None = None
        self._error: BadPatternError | None = None

    def __repr__(self) -> str:
        return f"Pattern({self.text!r})"

    @property
    def text(self) -> str:
        """The pattern as written after cleaning, with its '!' if any."""
        return ("!" if self.exclusion else "") + self.cleaned

    def compile(self) -> None:
        """Compile now; raise BadPatternError if Go's regexp would reject it.

        Every later ``match`` raises the same error (moby/moby#52203: the
        second call must not succeed or crash).
        """
        if self._error is not None:
            raise self._error
        if self._kind is not None:
            return
        kind, go_regex = compile_pattern(self.cleaned)
        if go_regex is not None:
            try:
                self._compiled = _compile_python(go_regex)
            except BadPatternError as exc:
                self._error = exc
                raise
        self._kind = kind

    def match(self, path: str) -> bool:
        if self._kind is None:
            self.compile()
        kind = self._kind
        if kind == "exact":
            return path == self.cleaned
        if kind == "prefix":
            return path.startswith(self.cleaned[:-2])
        if kind == "suffix":
            suffix = self.cleaned[2:]
            if path.endswith(suffix):
                return True
            return suffix[:1] == "/" and path == suffix[1:]  # "**/foo" matches "foo"
        assert self._compiled is not None
        return self._compiled.match(path) is not None


def _could_match_below(pattern_dirs: Sequence[str], dir_parts: Sequence[str]) -> bool:
    # Only '*' and '?' are known never to match '/': "**", classes ("[^a]"
    # matches "/" in Go's regexp) and escapes make us answer True.
    for pat, name in zip(pattern_dirs, dir_parts, strict=False):
        if "**" in pat or "[" in pat or "\\" in pat:
            return True
        if "*" in pat or "?" in pat:
            if not filepath_match(pat, name):
                return False
        elif pat != name:
            return False
    return len(pattern_dirs) > len(dir_parts)


def _parent_prefixes(path: str) -> list[str]:
    # The parents tested by MatchesOrParentMatches: "a", "a/b", ... of Dir(path).
    parent = go_dir(path)
    if parent == ".":
        return []
    parts = parent.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


class PatternMatcher:
    """moby/patternmatcher.PatternMatcher: ordered patterns, the last match wins."""

    __slots__ = ("exclusions", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        """patternmatcher.New: trim, drop empties, clean, split off '!', check syntax."""
        self.patterns: list[Pattern] = []
        self.exclusions = False
        for raw in patterns:
            text = go_trim_space(raw)
            if not text:
                continue
            text = go_clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise BadPatternError('illegal exclusion pattern: "!"')
                text = text[1:]
                self.exclusions = True
            _parse_glob(text)  # Go checks the syntax with filepath.Match(p, ".")
            self.patterns.append(Pattern(text, exclusion))

    @classmethod
    def from_patterns(cls, patterns: Iterable[Pattern]) -> PatternMatcher:
        """Assemble a matcher from already-cleaned patterns (keeps their order)."""
        pm = cls(())
        pm.patterns = list(patterns)
        pm.exclusions = any(p.exclusion for p in pm.patterns)
        return pm

    def may_reinclude_below(self, dir_path: str) -> bool:
        """Whether an exclusion ('!') pattern could match a path strictly below
        ``dir_path``.  If not, everything below an excluded directory is
        excluded too, so a walker may skip it (see docs/context.md).
        Conservative: True whenever in doubt."""
        if not self.exclusions:
            return False
        parts = dir_path.split("/")
        return any(
            p.exclusion and _could_match_below(p.dirs, parts) for p in self.patterns
        )

    def matches(self, file: str) -> bool:
        """Deprecated ``PatternMatcher.Matches``: tests only the parent prefix
        that has as many components as the pattern."""
        matched = False
        parent = go_dir(file)
        parent_dirs = parent.split("/")
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(file)
            if not hit and parent != "." and len(pattern.dirs) <= len(parent_dirs):
                hit = pattern.match("/".join(parent_dirs[: len(pattern.dirs)]))
            if hit:
                matched = not pattern.exclusion
        return matched

    def matches_or_parent_matches(self, file: str) -> bool:
        """``MatchesOrParentMatches``: a pattern matching any parent matches."""
        matched = False
        parents: list[str] | None = None
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(file)
            if not hit:
                if parents is None:
                    parents = _parent_prefixes(file)
                hit = any(pattern.match(p) for p in parents)
            if hit:
                matched = not pattern.exclusion
        return matched

    def matches_using_parent_results(
        self, file: str, parent: MatchInfo = ()
    ) -> tuple[bool, MatchInfo]:
        """``MatchesUsingParentResults``: incremental matching for walkers.

        ``parent`` is the MatchInfo returned for the parent directory, or ()
        when nothing is known (then parents are checked as in
        ``matches_or_parent_matches``).
        """
        if parent and len(parent) != len(self.patterns):
            raise ValueError("wrong number of values in parentMatched")
        matched = False
        info = [False] * len(self.patterns)
        parents: list[str] | None = None
        for i, pattern in enumerate(self.patterns):
            hit = bool(parent) and parent[i]
            if not hit:
                if pattern.exclusion != matched:
                    continue
                hit = pattern.match(file)
                if not hit and not parent:
                    if parents is None:
                        parents = _parent_prefixes(file)
                    hit = any(pattern.match(p) for p in parents)
            info[i] = hit
            if hit:
                matched = not pattern.exclusion
        return matched, tuple(info)


def matches(file: str, patterns: Iterable[str]) -> bool:
    """Deprecated package-level ``Matches``: cleans the path; "." never matches."""
    pm = PatternMatcher(patterns)
    file = go_clean(file)
    if file == ".":
        return False
    return pm.matches(file)


def read_all(text: str | None) -> list[tuple[int, str]]:
    """ignorefile.ReadAll, keeping each pattern's 1-based line number.

    Comments ('#' in the first column) and blank lines are dropped, '!' is
    split off and re-attached, the rest is cleaned and loses one leading '/'.
    A lone '!' is returned as is: PatternMatcher rejects it later.
    """
    if text is None:
        return []
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # bufio.Scanner yields no empty token after a final newline
    result: list[tuple[int, str]] = []
    for lineno, line in enumerate(lines, start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if line.startswith("#"):
            continue
        pattern = go_trim_space(line)
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = go_trim_space(pattern[1:])
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        result.append((lineno, "!" + pattern if invert else pattern))
    return result


def compiled_matcher(patterns: Sequence[str]) -> PatternMatcher | None:
    """A matcher with every pattern compiled up front (so a bad pattern fails at the
    flag, not mid-walk), or None when there is nothing to match."""
    if not patterns:
        return None
    matcher = PatternMatcher(list(patterns))
    for pattern in matcher.patterns:
        pattern.compile()
    return matcher if matcher.patterns else None
