"""Looks at the build context for the context-aware rules: which ignore file is in
use, which paths exist, and which of them a COPY/ADD would actually send.

Uses ``layerkit.context.dockerignore`` when it is available and falls back to the
pattern matcher of e2b-dockerfile-utils, so the linter works on its own.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from collections.abc import Callable
from pathlib import Path

from layerkit.fastclass import dataclass, field

MAX_ENTRIES = 200_000  # stop walking huge contexts; findings stay best-effort


def _read_patterns(path: Path) -> list[str]:
    out: list[str] = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        out.append(line)
    return out


def _fallback_matcher(patterns: list[str]) -> Callable[[str], bool]:
    try:
        from e2b_dockerfile_utils.dockerignore import PatternMatcher

        cleaned = []
        for pat in patterns:
            neg = pat.startswith("!")
            body = posixpath.normpath(pat[1:] if neg else pat).lstrip("/")
            if body and body != ".":
                cleaned.append(("!" if neg else "") + body)
        matcher = PatternMatcher(cleaned)

        def matches(rel: str) -> bool:
            return bool(matcher.matches(rel))

        return matches
    except Exception:  # pragma: no cover - defensive: the dependency is pinned

        def simple(rel: str) -> bool:
            hit = False
            for pat in patterns:
                neg = pat.startswith("!")
                body = (pat[1:] if neg else pat).strip("/")
                parts = rel.split("/")
                prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
                if any(fnmatch.fnmatchcase(p, body) for p in prefixes):
                    hit = not neg
            return hit

        return simple


@dataclass
class ContextView:
    """The build context directory as the rules need it."""

    root: Path
    dockerfile: Path | None
    ignore_file: Path | None
    patterns: list[str] = field(default_factory=list)
    _matches: Callable[[str], bool] | None = None
    _cache: dict[str, bool] = field(default_factory=dict)
    _walked: dict[frozenset[str], list[tuple[str, bool]]] = field(default_factory=dict)

    @classmethod
    def open(cls, root: Path, dockerfile: Path | None) -> ContextView:
        ignore: Path | None = None
        if dockerfile is not None:
            beside = dockerfile.parent / (dockerfile.name + ".dockerignore")
            if beside.is_file():
                ignore = beside
        if ignore is None and (root / ".dockerignore").is_file():
            ignore = root / ".dockerignore"
        view = cls(root=root, dockerfile=dockerfile, ignore_file=ignore)
        if ignore is not None:
            view.patterns = _read_patterns(ignore)
        view._matches = view._load_matcher()
        return view

    def _load_matcher(self) -> Callable[[str], bool]:
        try:
            from layerkit.context import dockerignore

            rules = dockerignore.load_ignore_rules(self.root, self.dockerfile)

            def matches(rel: str) -> bool:
                return bool(rules.matches(rel))

            return matches
        except Exception:
            return _fallback_matcher(self.patterns)

    def ignored(self, rel: str) -> bool:
        """True when ``rel`` (or a directory above it) is excluded by the ignore file."""
        if rel in self._cache:
            return self._cache[rel]
        parts = rel.split("/")
        result = False
        assert self._matches is not None
        for i in range(len(parts)):
            if self._matches("/".join(parts[: i + 1])):
                result = True
                if i < len(parts) - 1:
                    # a parent is ignored; a later "!" pattern may still re-include rel
                    result = self._matches(rel)
                    break
        self._cache[rel] = result
        return result

    def walk(self, skip_dirs: frozenset[str] = frozenset()) -> list[tuple[str, bool]]:
        """(relative path, is_dir) for every path that is not ignored.

        Directories named in ``skip_dirs`` are listed but not descended into.
        """
        if skip_dirs in self._walked:
            return self._walked[skip_dirs]
        out: list[tuple[str, bool]] = []
        self._walked[skip_dirs] = out
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            rel_dir = "" if rel_dir == "." else rel_dir
            keep: list[str] = []
            for name in sorted(dirnames):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if self.ignored(rel) and not self.may_reinclude(rel):
                    continue
                if not self.ignored(rel):
                    out.append((rel, True))
                if name not in skip_dirs and not os.path.islink(os.path.join(dirpath, name)):
                    keep.append(name)
            dirnames[:] = keep
            for name in sorted(filenames):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if not self.ignored(rel):
                    out.append((rel, False))
            if len(out) > MAX_ENTRIES:
                break
        return out

    def may_reinclude(self, rel: str) -> bool:
        return any(p.startswith("!") and p[1:].lstrip("/").startswith(rel + "/")
                   for p in self.patterns)

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def is_dir(self, rel: str) -> bool:
        return (self.root / rel).is_dir()


def source_covers(source: str, path: str) -> bool:
    """Does COPY source ``source`` (relative to the context) send ``path``?"""
    src = posixpath.normpath(source.lstrip("/")) if source not in ("", "/") else "."
    if src in (".", ""):
        return True
    if "$" in src:
        return False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    if any(ch in src for ch in "*?["):
        return any(fnmatch.fnmatchcase(p, src) for p in prefixes)
    return src in prefixes


def names_explicitly(source: str, path: str) -> bool:
    """True when ``source`` names ``path`` or something inside it (not via ``.``)."""
    src = posixpath.normpath(source.lstrip("/"))
    if src in (".", "") or "$" in src:
        return False
    return src == path or src.startswith(path + "/")
