"""Content checksums: turns COPY/ADD source strings into digests of what they select.

Digest rules (DESIGN.md "Cache-key rules", details in docs/context.md):

* an entry's own digest is sha256 over a tar-like header and then its content;
  the header has the permission bits with setuid/setgid/sticky, uid/gid 0,
  size, type, link target, device numbers and the xattrs that matter; never
  the name, mtime or user/group names;
* a directory's digest covers its own header and the sorted
  (path relative to the directory, own digest) pairs of everything below it;
* a wildcard source hashes each match's path as well as its digest.

Selection follows BuildKit: sources are relative to the context root, '..'
may not leave it, symlinks in the source path resolve scoped to the root,
symlinks inside a copied directory are hashed as links.  Contents are read
once and remembered in a ``StatCache``; ``stats`` shows what was read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat as st
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final

from layerkit.context.dockerignore import IgnoreRules
from layerkit.context.patternmatcher import (
    BadPatternError,
    MatchInfo,
    PatternMatcher,
    compiled_matcher,
    filepath_match,
    has_wildcards,
)
from layerkit.context.statcache import StatCache, stat_key
from layerkit.context.walk import ContextEntry, WalkStats, walk_context
from layerkit.errors import ContextError
from layerkit.fastclass import dataclass, field

__all__ = [
    "ContextHasher",
    "HasherStats",
    "SourceChecksum",
    "diff_files",
    "entry_header",
    "resolve_in_root",
]

MAX_LINKS: Final = 255  # continuity's fs.RootPath gives up after this many
_CHUNK: Final = 1 << 20
_TYPEFLAGS: Final = {
    "file": b"0",
    "symlink": b"2",
    "chardev": b"3",
    "blockdev": b"4",
    "dir": b"5",
    "fifo": b"6",
}
# security.capability changes what a binary may do; user.* is data the user
# put there.  security.selinux and ACLs describe the host, not the file.
_XATTRS_KEPT: Final = ("security.capability",)
_XATTR_PREFIXES_KEPT: Final = ("user.",)
_OPEN_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_OUTSIDE_HINT: Final = (
    "COPY sources must be inside the build context; move the file into the context "
    "directory or build from a directory that contains it"
)


@dataclass
class HasherStats:
    """What hashing cost: the observable proof that the stat cache works."""

    files_hashed: int = 0  # regular files whose content was read
    bytes_read: int = 0
    links_read: int = 0
    stat_calls: int = 0
    cache_hits: int = 0
    walks: int = 0


@dataclass(frozen=True)
class SourceChecksum:
    """The content key input of one COPY/ADD."""

    digest: str
    files: Mapping[str, str]  # context-relative path -> own digest of each selected entry
    matched: list[str] = field(default_factory=list)


def diff_files(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Paths added, removed or changed between two ``SourceChecksum.files``."""
    return sorted(path for path in old.keys() | new.keys() if old.get(path) != new.get(path))


def entry_header(
    kind: str,
    mode: int,
    size: int = 0,
    linkname: str = "",
    rdev: int = 0,
    xattrs: Mapping[str, bytes] | None = None,
) -> bytes:
    """The tar-like header hashed before an entry's content."""
    perm = 0o777 if kind == "symlink" else st.S_IMODE(mode)
    if kind in ("chardev", "blockdev"):
        major, minor = os.major(rdev), os.minor(rdev)
    else:
        major = minor = 0
    link = os.fsencode(linkname)
    parts = [
        b"layerkit-entry-v1\n",
        b"mode=%o\nuid=0\ngid=0\n" % perm,
        b"size=%d\n" % (size if kind == "file" else 0),
        b"type=" + _TYPEFLAGS.get(kind, b"?") + b"\n",
        b"linkname=%d:%s\n" % (len(link), link),
        b"devmajor=%d\ndevminor=%d\n" % (major, minor),
    ]
    for key in sorted(xattrs or {}):
        name = os.fsencode(key)
        parts.append(b"xattr=%d:%s=%s\n" % (len(name), name, (xattrs or {})[key].hex().encode()))
    parts.append(b"\n")
    return b"".join(parts)


def _kept_xattrs(target: int | str) -> dict[str, bytes]:
    try:
        names = os.listxattr(target, follow_symlinks=False) if isinstance(target, str) else (
            os.listxattr(target)
        )
    except OSError:
        return {}
    result: dict[str, bytes] = {}
    for name in names:
        if name in _XATTRS_KEPT or name.startswith(_XATTR_PREFIXES_KEPT):
            with contextlib.suppress(OSError):
                if isinstance(target, str):
                    result[name] = os.getxattr(target, name, follow_symlinks=False)
                else:
                    result[name] = os.getxattr(target, name)
    return result


# --- scoped symlink resolution ----------------------------------------------


def _scoped_resolve(
    rel: str, readlink: Callable[[str], str | None], *, follow_final: bool = True
) -> tuple[str, list[tuple[str, str]]]:
    """Resolve ``rel`` component by component as if the root were '/'.

    Absolute link targets restart at the root and '..' stops at the root, so
    the result never leaves it.  Returns the resolved relative path ("" for
    the root) and the (link, target) pairs followed, in order.
    """
    todo = rel.split("/")[::-1]
    resolved: list[str] = []
    followed: list[tuple[str, str]] = []
    while todo:
        comp = todo.pop()
        if comp in ("", "."):
            continue
        if comp == "..":
            if resolved:
                resolved.pop()
            continue
        if not follow_final and not any(c not in ("", ".") for c in todo):
            resolved.append(comp)
            break
        candidate = "/".join([*resolved, comp])
        target = readlink(candidate)
        if target is None:
            resolved.append(comp)
            continue
        followed.append((candidate, target))
        if len(followed) > MAX_LINKS:
            raise ContextError(
                f"too many levels of symbolic links resolving {rel!r} in the build context",
                hint="a symlink in the build context points (indirectly) to itself",
            )
        if target.startswith("/"):
            resolved = []
        todo.extend(target.split("/")[::-1])
    return "/".join(resolved), followed


def resolve_in_root(root: Path, rel: str) -> Path:
    """BuildKit-style (continuity ``fs.RootPath``) symlink resolution inside ``root``.

    A link to /etc/passwd resolves to <root>/etc/passwd and a link to ../../x
    to <root>/x.  The result may not exist.
    """
    base = os.fspath(root)

    def readlink(candidate: str) -> str | None:
        path = os.path.join(base, candidate)
        try:
            if st.S_ISLNK(os.lstat(path).st_mode):
                return os.readlink(path)
        except OSError:
            return None  # missing: treated as a plain component, like Go
        return None

    resolved, _ = _scoped_resolve(rel, readlink)
    return Path(base, resolved) if resolved else Path(base)


def clean_relative(source: str) -> str | None:
    """Lexically clean a path relative to a root ("" for the root itself); None when
    its ``..`` components would climb out of the root."""
    parts: list[str] = []
    for comp in source.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(comp)
    return "/".join(parts)


def _clean_source(source: str) -> str:
    """Lexically clean a source relative to the context root; refuse escapes."""
    clean = clean_relative(source)
    if clean is None:
        raise ContextError(
            f"COPY source {source!r} is outside the build context",
            hint=_OUTSIDE_HINT,
            reference="copy-source-outside-context",
        )
    return clean


def _name_bytes(name: str) -> bytes:
    raw = os.fsencode(name)
    return b"%d:%s" % (len(raw), raw)


# --- the hasher ----------------------------------------------------------------


class ContextHasher:
    """Checksums COPY/ADD sources of one build context.

    The context is walked once (lazily, on first use) and that snapshot serves
    every call; ``refresh()`` walks again.  With a ``cache_dir`` digests
    persist in ``<cache_dir>/statcache.sqlite`` across processes.
    """

    def __init__(
        self, context_dir: Path, rules: IgnoreRules, cache_dir: Path | None = None
    ) -> None:
        self.context_dir = Path(context_dir)
        self._root = os.path.realpath(context_dir)
        self.rules = rules
        self.stats = HasherStats()
        self._cache = (
            StatCache(Path(cache_dir) / "statcache.sqlite", self._root)
            if cache_dir is not None
            else None
        )
        self._rows: dict[str, tuple[str, str]] | None = None
        self._entries: dict[str, ContextEntry] | None = None
        self._children: dict[str, list[str]] = {}
        self._own: dict[str, str] = {}
        self._links: dict[str, str] = {}

    def __enter__(self) -> ContextHasher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()

    def refresh(self) -> None:
        """Forget the walked snapshot (the stat cache still saves the reads)."""
        self._entries = None
        self._children = {}
        self._own.clear()
        self._links.clear()

    def entries(self) -> Mapping[str, ContextEntry]:
        """The visible context: relative path -> entry ("" is the root)."""
        return self._index()

    def stat_fingerprint(self) -> tuple[str, int]:
        """A digest of every visible entry's path, kind and stat identity (no file is
        read), and the newest mtime or ctime among them (ns).

        Two equal fingerprints mean an equal context by the stat cache's rule, provided
        the first was taken when its newest change was already ``RACY_WINDOW_NS`` old:
        any later write then moves some mtime or ctime past the recorded ones."""
        index = self._index()
        newest = 0
        lines = []
        for rel, entry in index.items():
            s = entry.stat
            newest = max(newest, s.st_mtime_ns, s.st_ctime_ns)
            lines.append(f"{rel}\0{entry.kind}\0{int(entry.ignored_parent)}\0{stat_key(s)}")
        text = "\n".join(lines).encode("utf-8", "surrogateescape")
        return "sha256:" + hashlib.sha256(text).hexdigest(), newest

    # -- public API -----------------------------------------------------------

    def checksum_sources(
        self,
        sources: Sequence[str],
        *,
        excludes: Sequence[str] = (),
        follow_source_links: bool = True,
    ) -> SourceChecksum:
        """Digest what ``COPY [--exclude=...] <sources...> <dest>`` would copy."""
        if not sources:
            raise ContextError("COPY needs at least one source", hint="write COPY <src>... <dest>")
        exclude = self._exclude_matcher(excludes)
        files: dict[str, str] = {}
        matched: list[str] = []
        outer = hashlib.sha256(b"layerkit-sources-v1\n")
        try:
            for source in sources:
                # The cleaned source is hashed, so "./app/" and "/app" are "app".
                clean = _clean_source(source)
                digest = self._checksum_one(
                    source, clean, exclude, follow_source_links, files, matched
                )
                outer.update(_name_bytes(clean) + b"\0" + digest.encode() + b"\n")
        finally:
            if self._cache is not None:
                self._cache.flush()
        for pattern in excludes:
            outer.update(b"exclude\0" + _name_bytes(pattern) + b"\n")
        outer.update(b"follow=%d\n" % follow_source_links)
        return SourceChecksum("sha256:" + outer.hexdigest(), files, matched)

    # -- selection ------------------------------------------------------------

    def _checksum_one(
        self,
        source: str,
        clean: str,
        exclude: PatternMatcher | None,
        follow: bool,
        files: dict[str, str],
        matched: list[str],
    ) -> str:
        index = self._index()
        if not has_wildcards(clean):
            target, links = self._resolve(clean, follow)
            if target not in index:
                raise self._missing(source, target, links)
            matched.append(clean or ".")
            return self._tree(target, exclude, files)
        hits = self._expand_wildcard(source, clean, follow)
        if not hits:
            raise self._no_match(source, clean)
        h = hashlib.sha256(b"wildcard\n")
        for hit in hits:
            target, links = self._resolve(hit, follow)
            if target not in index:
                raise self._missing(source, target, links)
            digest = self._tree(target, exclude, files)
            h.update(_name_bytes(hit) + b"\0" + digest.encode() + b"\n")
            matched.append(hit)
        return "sha256:" + h.hexdigest()

    def _resolve(self, rel: str, follow: bool) -> tuple[str, list[tuple[str, str]]]:
        index = self._index()

        def readlink(candidate: str) -> str | None:
            entry = index.get(candidate)
            if entry is None or entry.kind != "symlink":
                return None
            return self._readlink(candidate)

        return _scoped_resolve(rel, readlink, follow_final=follow)

    def _expand_wildcard(self, source: str, clean: str, follow: bool) -> list[str]:
        """fsutil ResolveWildcards: walk below the literal prefix, match the rest."""
        parts = clean.split("/")
        first = next(i for i, part in enumerate(parts) if has_wildcards(part))
        pattern = "/".join(parts[first:])
        base, _ = self._resolve("/".join(parts[:first]), follow)
        index = self._index()
        if base not in index or index[base].kind != "dir":
            return []
        # Only classes and escapes can make a pattern match across a '/'.
        max_depth = None if ("[" in pattern or "\\" in pattern) else pattern.count("/")
        hits: list[str] = []

        def visit(dir_rel: str, prefix: str, depth: int) -> None:
            for child in self._children[dir_rel]:
                sub = prefix + child.rpartition("/")[2]
                try:
                    ok = filepath_match(pattern, sub)
                except BadPatternError as exc:
                    raise ContextError(
                        f"COPY source {source!r} is not a valid wildcard: {exc}",
                        hint='wildcards follow Go filepath.Match: "*", "?", "[a-z]", "\\" escapes',
                    ) from exc
                if ok:
                    hits.append(child)
                elif index[child].kind == "dir" and (max_depth is None or depth < max_depth):
                    visit(child, sub + "/", depth + 1)

        visit(base, "", 0)
        return hits

    def _tree(self, root_rel: str, exclude: PatternMatcher | None, files: dict[str, str]) -> str:
        """Digest of one selected entry; directories include everything kept below."""
        index = self._index()
        root = index[root_rel]
        own = self._own_digest(root)
        files[root_rel] = own
        if root.kind != "dir":
            return own
        kept: list[tuple[str, str]] = []  # (context path, path below root_rel)
        pending: list[tuple[str, str]] = []

        def visit(dir_rel: str, prefix: str, info: MatchInfo) -> None:
            for child in self._children[dir_rel]:
                sub = prefix + child.rpartition("/")[2]
                child_info: MatchInfo = ()
                if exclude is not None:
                    excluded, child_info = exclude.matches_using_parent_results(sub, info)
                    if excluded:
                        if index[child].kind == "dir" and exclude.may_reinclude_below(sub):
                            marker = (child, sub)
                            pending.append(marker)
                            visit(child, sub + "/", child_info)
                            if pending and pending[-1] is marker:
                                pending.pop()
                        continue
                if pending:
                    kept.extend(pending)
                    pending.clear()
                kept.append((child, sub))
                if index[child].kind == "dir":
                    visit(child, sub + "/", child_info)

        visit(root_rel, "", ())
        h = hashlib.sha256(b"dir\n" + own.encode() + b"\n")
        for context_path, sub in kept:
            digest = self._own_digest(index[context_path])
            files[context_path] = digest
            h.update(_name_bytes(sub) + b"\0" + digest.encode() + b"\n")
        return "sha256:" + h.hexdigest()

    # -- per-entry digests ------------------------------------------------------

    def _index(self) -> dict[str, ContextEntry]:
        if self._entries is None:
            walk_stats = WalkStats()
            root_stat = os.stat(self._root)
            entries: dict[str, ContextEntry] = {"": ContextEntry("", "dir", root_stat)}
            children: dict[str, list[str]] = {"": []}
            for entry in walk_context(Path(self._root), self.rules, stats=walk_stats):
                entries[entry.rel] = entry
                children[entry.rel.rpartition("/")[0]].append(entry.rel)
                if entry.kind == "dir":
                    children[entry.rel] = []
            self.stats.stat_calls += walk_stats.stat_calls + 1
            self.stats.walks += 1
            self._entries, self._children = entries, children
        return self._entries

    def _readlink(self, rel: str) -> str:
        target = self._links.get(rel)
        if target is None:
            target = os.readlink(os.path.join(self._root, rel))
            self.stats.links_read += 1
            self._links[rel] = target
        return target

    def _own_digest(self, entry: ContextEntry) -> str:
        digest = self._own.get(entry.rel)
        if digest is not None:
            return digest
        if self._rows is None:
            self._rows = self._cache.load() if self._cache is not None else {}
        row = self._rows.get(entry.rel)
        if row is not None and row[0] == stat_key(entry.stat):
            self.stats.cache_hits += 1
            digest = row[1]
        else:
            digest, trustworthy = self._compute(entry)
            if trustworthy and self._cache is not None:
                self._cache.record(entry.rel, entry.stat, digest, time.time_ns())
        self._own[entry.rel] = digest
        return digest

    def _compute(self, entry: ContextEntry) -> tuple[str, bool]:
        path = os.path.join(self._root, entry.rel) if entry.rel else self._root
        s = entry.stat
        if entry.kind == "file":
            return self._hash_file(entry, path)
        if entry.kind == "symlink":
            header = entry_header("symlink", s.st_mode, linkname=self._readlink(entry.rel))
        elif entry.kind == "dir":
            header = entry_header("dir", s.st_mode, xattrs=_kept_xattrs(path))
        else:  # fifo or device: never opened, only described
            header = entry_header(entry.kind, s.st_mode, rdev=s.st_rdev)
        return "sha256:" + hashlib.sha256(header).hexdigest(), True

    def _hash_file(self, entry: ContextEntry, path: str) -> tuple[str, bool]:
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            raise ContextError(
                f"cannot read {entry.rel!r} in the build context: {exc.strerror}",
                hint="make it readable, or add it to .dockerignore",
            ) from exc
        with open(fd, "rb", buffering=0, closefd=True) as f:
            opened = os.fstat(fd)
            self.stats.stat_calls += 1
            h = hashlib.sha256(
                entry_header("file", opened.st_mode, opened.st_size, xattrs=_kept_xattrs(fd))
            )
            buf = bytearray(min(_CHUNK, max(opened.st_size, 1) + 1))
            view = memoryview(buf)
            total = 0
            while n := f.readinto(view):
                h.update(view[:n])
                total += n
        self.stats.files_hashed += 1
        self.stats.bytes_read += total
        # A file that changed between the walk and the read is hashed as read,
        # but not remembered: its stat no longer describes these bytes.
        unchanged = stat_key(opened) == stat_key(entry.stat) and total == opened.st_size
        return "sha256:" + h.hexdigest(), unchanged

    # -- errors ------------------------------------------------------------------

    def _exclude_matcher(self, excludes: Sequence[str]) -> PatternMatcher | None:
        try:
            return compiled_matcher(excludes)
        except BadPatternError as exc:
            raise ContextError(
                f"invalid --exclude pattern in {list(excludes)!r}: {exc}",
                hint='exclude patterns use .dockerignore syntax: "*", "?", "[a-z]", "**", "!"',
            ) from exc

    def _missing(self, source: str, target: str, links: list[tuple[str, str]]) -> ContextError:
        if target and os.path.lexists(os.path.join(self._root, target)):
            why = self.rules.describe(target) or "excluded by the ignore rules"
            return ContextError(
                f"COPY {source}: {target!r} is not in the build context",
                hint=f"it is {why}; remove that pattern or add \"!{target}\" after it",
                reference="copy-source-missing",
            )
        if links:
            link, link_target = links[-1]
            return ContextError(
                f"COPY {source}: symlink {link!r} -> {link_target!r} points to nothing "
                "inside the build context",
                hint="symlinks in a COPY source resolve inside the build context (a target "
                "like /etc/passwd means <context>/etc/passwd); copy the target itself, or "
                "make the link point inside the context",
                reference="copy-source-missing",
            )
        return ContextError(
            f"COPY {source}: no such file or directory in the build context",
            hint=self._did_you_mean(target),
            reference="copy-source-missing",
        )

    def _no_match(self, source: str, clean: str) -> ContextError:
        hint = (
            f"wildcards are matched from the context root ({self.context_dir}) with Go "
            "filepath.Match rules"
        )
        parent, _, name = clean.rpartition("/")
        real_dir = os.path.join(self._root, parent)
        with contextlib.suppress(OSError, BadPatternError):
            for candidate in sorted(os.listdir(real_dir)):
                rel = f"{parent}/{candidate}" if parent else candidate
                if filepath_match(name, candidate) and self.rules.matches(rel):
                    hint = f"{rel!r} would match, but it is {self.rules.describe(rel)}"
                    break
        return ContextError(
            f"COPY {source}: no files in the build context match",
            hint=hint,
            reference="copy-source-missing",
        )

    def _did_you_mean(self, target: str) -> str:
        parent, _, name = target.rpartition("/")
        self._index()
        fallback = (
            f"COPY paths are relative to the build context ({self.context_dir}), "
            "not to the Dockerfile"
        )
        if parent not in self._children:
            return fallback
        names = {child.rpartition("/")[2]: child for child in self._children[parent]}
        by_lower = {n.lower(): n for n in names}
        import difflib  # only for this hint

        close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
        if not close:
            return fallback
        return "did you mean " + " or ".join(repr(names[by_lower[c]]) for c in close) + "?"

