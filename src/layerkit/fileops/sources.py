"""Turns COPY/ADD source strings into the host paths they select inside a root.

Rules (BuildKit ``copy.ResolveWildcards`` and continuity ``fs.RootPath``):

* a source is relative to its root (the context, or a stage's "/"); a
  leading '/' changes nothing and '..' may not climb above the root;
* symlinks in the source path, including the last component, are followed
  scoped to the root (a link to /etc/x means <root>/etc/x);
* wildcards follow Go ``filepath.Match``: the literal prefix is resolved,
  then the entries below it are matched as a whole relative path ('*' never
  crosses '/', '**' is not special); a matched directory is not descended
  and symlinked directories are not walked;
* for the build context, entries excluded by .dockerignore do not exist.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from layerkit.context.checksum import clean_relative, resolve_in_root
from layerkit.context.dockerignore import IgnoreRules
from layerkit.context.patternmatcher import BadPatternError, filepath_match, has_wildcards
from layerkit.errors import LayerkitError
from layerkit.fastclass import dataclass
from layerkit.fileops.errors import FileOpError


@dataclass(frozen=True)
class SourceMatch:
    """One selected entry. ``name`` is the path as written or matched (cleaned,
    relative to the root) and gives the base name used at the destination;
    ``host`` is where it really is after following symlinks; ``rel`` is
    ``host`` relative to the root ("" for the root itself)."""

    name: str
    host: Path
    rel: str
    wildcard: bool = False
    base: str = ""  # wildcard matches: the literal directory the pattern starts in


def clean_source(source: str, what: str) -> str:
    """Lexically clean a source relative to its root; refuse '..' escapes."""
    clean = clean_relative(source)
    if clean is None:
        raise FileOpError(
            f"{what} source {source!r} is outside the {_root_word(what)}",
            hint="sources cannot climb out of their root with '..'; move the file "
            "into the build context, or build from a directory that contains it",
            reference="copy-source-outside-context",
        )
    return clean


def _root_word(what: str) -> str:
    return "build context" if "context" in what or what in ("COPY", "ADD") else "source root"


def _ignored(ignore: IgnoreRules | None, rel: str, is_dir: bool) -> bool:
    if not ignore or rel == "":
        return False
    if not ignore.matches(rel):
        return False
    # An ignored directory still exists when a '!' pattern re-includes below it.
    return not (is_dir and ignore.may_reinclude_below(rel))


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _resolve(root: Path, rel: str) -> Path:
    try:
        return resolve_in_root(root, rel)
    except LayerkitError as exc:
        raise FileOpError(exc.message, hint=exc.hint, reference="copy-source-missing") from exc


def _rel_of(root: Path, host: Path) -> str:
    rel = os.path.relpath(host, root)
    return "" if rel == "." else rel


def resolve_source(
    root: Path | None, source: str, *, ignore: IgnoreRules | None, what: str
) -> list[SourceMatch]:
    """The entries ``source`` selects. A literal source that does not exist is an
    error naming it; a wildcard that matches nothing gives []."""
    clean = clean_source(source, what)
    if has_wildcards(clean):
        return _expand_wildcard(root, source, clean, ignore, what)
    if root is None:
        raise _not_found(source, clean, what, None, excluded=False)
    host = _resolve(root, clean)
    st = _lstat(host)
    rel = _rel_of(root, host)
    if st is None or _ignored(ignore, rel, stat.S_ISDIR(st.st_mode)):
        excluded = st is not None or (ignore is not None and bool(ignore)
                                      and os.path.lexists(root / clean)
                                      and ignore.matches(clean))
        raise _not_found(source, clean, what, ignore, excluded=excluded,
                         resolved=rel if st is not None else clean)
    return [SourceMatch(clean, host, rel)]


def _not_found(
    source: str, clean: str, what: str, ignore: IgnoreRules | None, *, excluded: bool,
    resolved: str = "",
) -> FileOpError:
    where = "in the build context" if ignore is not None else "in the source"
    hint = "paths are relative to the root of the build context (or of the --from stage)"
    if excluded and ignore is not None:
        why = ignore.describe(resolved or clean) or "excluded by .dockerignore"
        hint = f"it is {why}; remove that pattern or add \"!{resolved or clean}\" after it"
    return FileOpError(
        f"{what} {source}: \"/{clean}\": not found {where}",
        hint=hint,
        reference="copy-source-missing",
    )


def _expand_wildcard(
    root: Path | None, source: str, clean: str, ignore: IgnoreRules | None, what: str
) -> list[SourceMatch]:
    if root is None:
        return []
    parts = clean.split("/")
    first = next(i for i, part in enumerate(parts) if has_wildcards(part))
    literal = "/".join(parts[:first])
    pattern = "/".join(parts[first:])
    base_host = _resolve(root, literal)
    base_st = _lstat(base_host)
    if base_st is None or not stat.S_ISDIR(base_st.st_mode):
        return []
    base_rel = _rel_of(root, base_host)
    if _ignored(ignore, base_rel, True):
        return []
    # Only classes and escapes can make a pattern match across a '/'.
    max_depth = None if ("[" in pattern or "\\" in pattern) else pattern.count("/")
    hits: list[SourceMatch] = []

    def visit(dir_host: str, prefix: str, depth: int) -> None:
        try:
            children = sorted(os.scandir(dir_host), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for child in children:
            sub = prefix + child.name
            is_dir = child.is_dir(follow_symlinks=False)
            ctx_rel = f"{base_rel}/{sub}" if base_rel else sub
            if _ignored(ignore, ctx_rel, is_dir):
                continue
            try:
                ok = filepath_match(pattern, sub)
            except BadPatternError as exc:
                raise FileOpError(
                    f"{what} source {source!r} is not a valid wildcard: {exc}",
                    hint='wildcards follow Go filepath.Match: "*", "?", "[a-z]", "\\" escapes',
                    reference="copy-source-invalid",
                ) from exc
            if ok:
                name = f"{literal}/{sub}" if literal else sub
                host = _resolve(root, name)  # a matched symlink is followed
                st = _lstat(host)
                rel = _rel_of(root, host)
                if st is None or _ignored(ignore, rel, stat.S_ISDIR(st.st_mode)):
                    raise _not_found(source, name, what, ignore, excluded=st is not None,
                                     resolved=rel)
                hits.append(SourceMatch(name, host, rel, True, literal))
            elif is_dir and (max_depth is None or depth < max_depth):
                visit(child.path, sub + "/", depth + 1)

    visit(os.fspath(base_host), "", 0)
    return hits
