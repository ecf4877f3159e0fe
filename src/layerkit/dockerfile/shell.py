"""Expands variables and removes quotes in Dockerfile words, like BuildKit's shell lexer.

Transforms one instruction argument as the parser kept it (quotes and escapes
still in place) plus an environment into:

* the expanded string (``process_word``), spaces between words kept;
* the words it splits into after expansion (``process_words``);
* both, plus the names of the variables it referenced that were set
  (``matched``) or unset (``unmatched``) (``process_word_with_matches``). These
  sets feed the undefined-variable lint and the rule that a step's cache key
  depends on the build args it uses.

Semantics follow ``frontend/dockerfile/shell/lex.go`` in moby/buildkit: ``$VAR``,
``${VAR}``, ``${VAR-w}``, ``${VAR:-w}``, ``${VAR+w}``, ``${VAR:+w}``,
``${VAR?w}``, ``${VAR:?w}``, ``${VAR#p}``, ``${VAR##p}``, ``${VAR%p}``,
``${VAR%%p}``, ``${VAR/p/r}`` and ``${VAR//p/r}``; positional (``$1``) and special
(``$@``, ``$#``…) parameters are plain names that are never set. The code is our
own; why it does not wrap e2b-dockerfile-utils is in docs/dependencies.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping

from layerkit.dockerfile import _shellglob
from layerkit.errors import DockerfileError, Location
from layerkit.fastclass import dataclass

__all__ = ["ExpansionResult", "ShellLex", "env_from_list"]

_EOF = ""  # what the scanner returns past the end; every real character is non-empty
_SPECIAL_PARAMS = frozenset("@*#?-$!0")
# Go's unicode.IsSpace: Latin-1 spaces plus the White_Space property.
_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_HEREDOC_SPACES = frozenset("\t\r ")
# Real Dockerfiles nest ``${}`` two or three deep; the cap keeps pathological
# input from exhausting Python's recursion limit (BuildKit has no cap).
_MAX_NESTING = 100
_FORMS_HINT = (
    "supported forms: ${VAR}, ${VAR-default}, ${VAR:-default}, ${VAR+alt}, "
    "${VAR:+alt}, ${VAR?message}, ${VAR:?message}, ${VAR#pattern}, ${VAR##pattern}, "
    "${VAR%pattern}, ${VAR%%pattern}, ${VAR/pattern/replacement}, "
    "${VAR//pattern/replacement}"
)


@dataclass(frozen=True)
class ExpansionResult:
    """What one word expands to, and which variables it looked up."""

    result: str
    words: tuple[str, ...]
    matched: frozenset[str]  # referenced and set (possibly to "")
    unmatched: frozenset[str]  # referenced and not set


def env_from_list(entries: Iterable[str]) -> dict[str, str]:
    """Turn ``KEY=value`` strings (an image config's ``Env``) into a mapping.

    Like BuildKit: a bare ``KEY`` is set to the empty string and, for a key
    given twice, the last entry wins.
    """
    env: dict[str, str] = {}
    for entry in entries:
        key, _, value = entry.partition("=")
        env[key] = value
    return env


class _Failure(Exception):
    """An expansion error inside the scanner; ``ShellLex`` turns it into DockerfileError."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ShellLex:
    """BuildKit's ``shell.Lex``: one configured lexer, reusable for many words.

    ``raw_quotes`` keeps quote characters in the output, ``raw_escapes`` keeps
    escape characters, ``skip_process_quotes`` treats quotes as plain text,
    ``skip_unset_env`` leaves references to unset variables as written (the
    parser uses these to find heredoc names). ``case_insensitive_env`` looks
    names up ignoring case, as BuildKit does on Windows.
    """

    def __init__(
        self,
        escape_token: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_unset_env: bool = False,
        skip_process_quotes: bool = False,
        case_insensitive_env: bool = False,
    ) -> None:
        if len(escape_token) != 1:
            raise ValueError(f"escape token must be one character, got {escape_token!r}")
        self.escape_token = escape_token
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset_env = skip_unset_env
        self.skip_process_quotes = skip_process_quotes
        self.case_insensitive_env = case_insensitive_env

    def process_word(
        self, word: str, env: Mapping[str, str], *, location: Location | None = None
    ) -> str:
        """Expand ``word``; quotes and escapes are removed, spaces are kept."""
        return self.process_word_with_matches(word, env, location=location).result

    def process_words(
        self, word: str, env: Mapping[str, str], *, location: Location | None = None
    ) -> list[str]:
        """Expand ``word`` and split it on unquoted whitespace (after expansion)."""
        return list(self.process_word_with_matches(word, env, location=location).words)

    def process_word_with_matches(
        self, word: str, env: Mapping[str, str], *, location: Location | None = None
    ) -> ExpansionResult:
        """Expand ``word`` and report the variables it referenced."""
        scan = _Scan(self, word, env)
        try:
            result, words = scan.run()
        except _Failure as failure:
            raise DockerfileError(
                f"failed to process {json.dumps(word, ensure_ascii=False)}: {failure.message}",
                location=location,
                hint=failure.hint,
                reference="variable-expansion",
            ) from None
        except RecursionError:
            raise DockerfileError(
                f"failed to process {json.dumps(word, ensure_ascii=False)}: "
                "variable references are nested too deeply",
                location=location,
                hint="split the expression over several ARG or ENV lines",
                reference="variable-expansion",
            ) from None
        return ExpansionResult(
            result=result,
            words=tuple(words),
            matched=frozenset(scan.matched),
            unmatched=frozenset(scan.unmatched),
        )


class _Words:
    """Splits expanded text into words; BuildKit's ``wordsStruct``.

    Characters from quotes and escapes are "raw": they never split. A word is
    only emitted when non-empty, so ``''`` alone yields no word (BuildKit's
    ``inWord`` flag only differs from "the word is non-empty" in that case).
    """

    def __init__(self) -> None:
        self._words: list[str] = []
        self._parts: list[str] = []
        self._size = 0

    def add_char(self, ch: str) -> None:
        if ch not in _SPACES:
            self.add_raw(ch)
        elif self._size:
            self._flush()

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw(self, text: str) -> None:
        self._parts.append(text)
        self._size += len(text)

    def _flush(self) -> None:
        self._words.append("".join(self._parts))
        self._parts = []
        self._size = 0

    def finish(self) -> list[str]:
        if self._size:
            self._flush()
        return self._words


class _Scan:
    """One pass over one word; BuildKit's ``shellWord``."""

    def __init__(self, lex: ShellLex, text: str, env: Mapping[str, str]) -> None:
        self._lex = lex
        self._esc = lex.escape_token
        # Go's text/scanner skips a byte-order mark at the very start.
        self._text = text[1:] if text.startswith("\ufeff") else text
        self._pos = 0
        self._env = env
        self._folded: dict[str, str] | None = None
        self._raw_escapes = lex.raw_escapes
        self._depth = 0
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def run(self) -> tuple[str, list[str]]:
        return self._process_until(_EOF, self._lex.raw_escapes)

    # -- scanner -------------------------------------------------------------

    def _peek(self) -> str:
        return self._text[self._pos] if self._pos < len(self._text) else _EOF

    def _next(self) -> str:
        ch = self._peek()
        if ch:
            self._pos += 1
        return ch

    def _at_end(self) -> bool:
        return self._pos >= len(self._text)

    # -- environment ---------------------------------------------------------

    def _lookup(self, name: str) -> tuple[str, bool]:
        if name in self._env:
            self.matched.add(name)
            return self._env[name], True
        if self._lex.case_insensitive_env:
            if self._folded is None:
                self._folded = {}
                for key, value in self._env.items():
                    self._folded.setdefault(key.upper(), value)
            if name.upper() in self._folded:
                self.matched.add(name)
                return self._folded[name.upper()], True
        self.unmatched.add(name)
        return "", False

    # -- grammar -------------------------------------------------------------

    def _process_until(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        """Process text up to an unescaped, unquoted ``stop`` (or the end)."""
        saved, self._raw_escapes = self._raw_escapes, raw_escapes
        try:
            return self._process_until_inner(stop)
        finally:
            self._raw_escapes = saved

    def _process_until_inner(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        quotes = not self._lex.skip_process_quotes
        while not self._at_end():
            ch = self._peek()
            if stop and ch == stop:
                self._next()
                return "".join(result), words.finish()
            if ch == "$":
                text = self._process_dollar()
                result.append(text)
                words.add_string(text)  # expanded values split into words
                continue
            if ch == "<" or (quotes and ch in "'\""):
                if ch == "<":
                    text = self._process_possible_heredoc()
                elif ch == "'":
                    text = self._process_single_quote()
                else:
                    text = self._process_double_quote()
                result.append(text)
                words.add_raw(text)  # quoted text never splits
                continue
            ch = self._next()
            if ch == self._esc:
                if self._raw_escapes:
                    words.add_raw(ch)
                    result.append(ch)
                ch = self._next()
                if not ch:
                    break  # a trailing escape is dropped
                words.add_raw(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop:
            raise _Failure(
                f"unexpected end of statement while looking for matching {stop}",
                f"add the missing {stop!r}",
            )
        return "".join(result), words.finish()

    def _process_single_quote(self) -> str:
        # Everything up to the next ' is literal; a ' cannot be escaped inside.
        out: list[str] = []
        opening = self._next()
        if self._lex.raw_quotes:
            out.append(opening)
        while True:
            ch = self._next()
            if not ch:
                raise _Failure(
                    "unexpected end of statement while looking for matching single-quote",
                    f"close the quote with ', or escape a literal quote as {self._esc}'",
                )
            if ch == "'":
                if self._lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def _process_double_quote(self) -> str:
        # Literal except for $ expansions; the escape token only escapes ", $
        # and itself (other escapes stay as written).
        out: list[str] = []
        opening = self._next()
        if self._lex.raw_quotes:
            out.append(opening)
        while True:
            ch = self._peek()
            if not ch:
                raise _Failure(
                    "unexpected end of statement while looking for matching double-quote",
                    f'close the quote with ", or escape a literal quote as {self._esc}"',
                )
            if ch == '"':
                self._next()
                if self._lex.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self._process_dollar())
                continue
            ch = self._next()
            if ch == self._esc:
                if self._raw_escapes:
                    out.append(ch)
                after = self._peek()
                if not after:
                    continue  # the quote is unterminated: the next round says so
                if after in ('"', "$", self._esc):
                    ch = self._next()
            out.append(ch)

    def _process_possible_heredoc(self) -> str:
        # ``<<`` keeps the blanks after it so ``<< EOF`` stays one word for the
        # parser's heredoc detection.
        self._next()
        if self._peek() != "<":
            return "<"
        self._next()
        start = self._pos
        while self._peek() and self._peek() in _HEREDOC_SPACES:
            self._next()
        return "<<" + self._text[start : self._pos]

    def _process_name(self) -> str:
        # A name is letters, digits and _; a leading digit run or one special
        # parameter character is a whole name on its own.
        start = self._pos
        ch = self._peek()
        if ch and ch.isdecimal():
            while self._peek() and self._peek().isdecimal():
                self._next()
            return self._text[start : self._pos]
        if ch and ch in _SPECIAL_PARAMS:
            self._next()
            return ch
        while (ch := self._peek()) and (ch.isalpha() or ch.isdecimal() or ch == "_"):
            self._next()
        return self._text[start : self._pos]

    def _process_dollar(self) -> str:
        self._next()  # the $
        if self._peek() != "{":
            name = self._process_name()
            if not name:
                return "$"
            value, found = self._lookup(name)
            if not found and self._lex.skip_unset_env:
                return "$" + name
            return value
        self._next()  # the {
        first = self._peek()
        if not first:
            raise _missing_brace()
        if first in "{}:":
            raise _Failure(
                "syntax error: bad substitution",
                f"write ${{NAME}} with a variable name; for a literal $ write {self._esc}$",
            )
        self._depth += 1
        if self._depth > _MAX_NESTING:
            raise _Failure(
                f"variable references are nested more than {_MAX_NESTING} deep",
                "split the expression over several ARG or ENV lines",
            )
        try:
            return self._process_braced(self._process_name())
        finally:
            self._depth -= 1

    def _process_braced(self, name: str) -> str:
        op = self._next()
        if op == "}":
            value, found = self._lookup(name)
            if not found and self._lex.skip_unset_env:
                return "${" + name + "}"
            return value
        if op == "/":
            return self._process_replace(name)
        if not op:
            raise _missing_brace()
        spelled = op
        null_is_unset = op == ":"
        if null_is_unset:
            op = self._next()
            spelled += op
            if op in ("#", "%"):
                raise _Failure(
                    f"unsupported modifier ({spelled}) in substitution",
                    f"{spelled[1]} and {spelled[1] * 2} take no colon: "
                    f"${{{name}{spelled[1]}pattern}}",
                )
        elif op not in "+-?#%":
            raise _unsupported(spelled)
        word = self._process_until_or_missing("}", raw_escapes=op in ("#", "%"))
        value, found = self._lookup(name)
        if not found and self._lex.skip_unset_env:
            return "${" + name + spelled + word + "}"
        empty = not found or (null_is_unset and value == "")
        if op == "-":
            return word if empty else value
        if op == "+":
            return "" if empty else word
        if op == "?":
            if not found:
                raise _Failure(
                    f"{name}: {word or 'is not allowed to be unset'}",
                    f"set {name} with --build-arg {name}=… or an ARG/ENV before this line",
                )
            if empty:
                raise _Failure(
                    f"{name}: {word or 'is not allowed to be empty'}",
                    f"give {name} a non-empty value with --build-arg {name}=… or ARG/ENV",
                )
            return value
        if op in ("#", "%"):
            # one # or % removes the shortest match, a doubled one the longest
            greedy = word.startswith(op)
            pattern = word[1:] if greedy else word
            trim = _shellglob.trim_prefix if op == "#" else _shellglob.trim_suffix
            return _with_pattern(pattern, lambda: trim(pattern, value, greedy=greedy))
        raise _unsupported(spelled)

    def _process_replace(self, name: str) -> str:
        replace_all = self._peek() == "/"
        if replace_all:
            self._next()
        try:
            pattern, _ = self._process_until("/", raw_escapes=True)
        except _Failure:
            if self._at_end():
                raise _Failure(
                    "syntax error: missing '/' in ${}",
                    f"write ${{{name}/pattern/replacement}}",
                ) from None
            raise
        replacement = self._process_until_or_missing("}", raw_escapes=True)
        value, found = self._lookup(name)
        if not found and self._lex.skip_unset_env:
            op = "//" if replace_all else "/"
            return "${" + name + op + pattern + "/" + replacement + "}"
        replace = _shellglob.replace_all if replace_all else _shellglob.replace_first
        return _with_pattern(pattern, lambda: replace(pattern, value, replacement))

    def _process_until_or_missing(self, stop: str, *, raw_escapes: bool) -> str:
        try:
            return self._process_until(stop, raw_escapes)[0]
        except _Failure:
            if self._at_end():
                raise _missing_brace() from None
            raise


def _with_pattern(pattern: str, apply: Callable[[], str]) -> str:
    try:
        return apply()
    except _shellglob.InvalidPattern as err:
        raise _Failure(
            f"invalid pattern ({pattern}) in substitution: {err}",
            "in a pattern only \\*, \\?, \\\\, \\} and \\/ may be escaped",
        ) from None


def _missing_brace() -> _Failure:
    return _Failure("syntax error: missing '}'", "close the variable reference with }")


def _unsupported(spelled: str) -> _Failure:
    return _Failure(f"unsupported modifier ({spelled}) in substitution", _FORMS_HINT)

