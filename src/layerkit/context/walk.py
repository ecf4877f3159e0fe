"""The context walker: turns a context directory into the entries COPY/ADD can see.

Entries come out in depth-first pre-order with each directory's names sorted
(Go's filepath.Walk order), as relative slash paths, with their lstat result.
Symlinks are never followed.  Ignore rules are evaluated incrementally
(``MatchesUsingParentResults``), like fsutil's filtered walk:

* an ignored file is dropped without even being stat'ed;
* an ignored directory is skipped unless a '!' pattern could re-include
  something below it; it is then walked, and emitted only when something
  below it is kept (so the kept file still has its parent directories).
"""

from __future__ import annotations

import os
import stat as st
from collections.abc import Iterator
from pathlib import Path

from layerkit.context.dockerignore import IgnoreRules
from layerkit.context.patternmatcher import MatchInfo
from layerkit.errors import ContextError
from layerkit.fastclass import dataclass, field

__all__ = ["ContextEntry", "WalkStats", "kind_of", "walk_context"]


def kind_of(mode: int) -> str:
    """'file', 'dir', 'symlink', 'fifo', 'chardev', 'blockdev' or 'socket'."""
    if st.S_ISREG(mode):
        return "file"
    if st.S_ISDIR(mode):
        return "dir"
    if st.S_ISLNK(mode):
        return "symlink"
    if st.S_ISFIFO(mode):
        return "fifo"
    if st.S_ISCHR(mode):
        return "chardev"
    if st.S_ISBLK(mode):
        return "blockdev"
    return "socket"


class ContextEntry:
    """One path in the context, as the walker saw it (lstat, never followed).

    Written out by hand (slots, immutable, compared by value) rather than as a
    dataclass: one is made per context file (20,000 for a big context), and this
    ``__init__`` is as fast as generated code without importing :mod:`dataclasses`.
    """

    __slots__ = ("ignored_parent", "kind", "rel", "stat")
    rel: str
    kind: str
    stat: os.stat_result
    # True for a directory that is itself ignored but kept as the parent of
    # something a '!' pattern re-included.
    ignored_parent: bool

    def __init__(self, rel: str, kind: str, stat: os.stat_result,
                 ignored_parent: bool = False) -> None:
        set_field = object.__setattr__
        set_field(self, "rel", rel)
        set_field(self, "kind", kind)
        set_field(self, "stat", stat)
        set_field(self, "ignored_parent", ignored_parent)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ContextEntry is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"ContextEntry is immutable: cannot delete {name!r}")

    def _key(self) -> tuple[str, str, os.stat_result, bool]:
        return (self.rel, self.kind, self.stat, self.ignored_parent)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not ContextEntry:
            return NotImplemented
        assert isinstance(other, ContextEntry)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"ContextEntry(rel={self.rel!r}, kind={self.kind!r}, stat={self.stat!r}, "
                f"ignored_parent={self.ignored_parent!r})")

    @property
    def size(self) -> int:
        return self.stat.st_size if self.kind == "file" else 0


@dataclass
class WalkStats:
    """Counters a caller can pass in to see what a walk cost."""

    stat_calls: int = 0
    dirs_read: int = 0
    skipped_dirs: list[str] = field(default_factory=list)


class _Walker:
    __slots__ = ("out", "pending", "root", "rules", "stats")

    def __init__(self, root: str, rules: IgnoreRules, stats: WalkStats) -> None:
        self.root = root
        self.rules = rules
        self.stats = stats
        self.out: list[ContextEntry] = []
        # Ignored directories walked into, waiting for a kept descendant.
        self.pending: list[ContextEntry] = []

    def emit(self, entry: ContextEntry) -> None:
        if self.pending:
            self.out.extend(self.pending)
            self.pending.clear()
        self.out.append(entry)

    def walk(self, abs_dir: str, prefix: str, parent_info: MatchInfo, parent_ignored: bool) -> None:
        try:
            with os.scandir(abs_dir) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if parent_ignored:
                return  # fsutil also tolerates unreadable ignored directories
            rel = prefix.rstrip("/") or "."
            raise ContextError(
                f"cannot read directory {rel!r} in the build context: {exc.strerror}",
                hint="fix its permissions, or add it to .dockerignore",
            ) from exc
        self.stats.dirs_read += 1
        rules = self.rules
        for child in children:
            rel = prefix + child.name
            is_dir = child.is_dir(follow_symlinks=False)
            info: MatchInfo = ()
            ignored = False
            if rules:
                ignored, info = rules.match_incremental(rel, parent_info)
            if ignored:
                if is_dir and rules.may_reinclude_below(rel):
                    entry = self._entry(child, rel, ignored_parent=True)
                    self.pending.append(entry)
                    self.walk(child.path, rel + "/", info, True)
                    if self.pending and self.pending[-1] is entry:
                        self.pending.pop()
                elif is_dir:
                    self.stats.skipped_dirs.append(rel)
                continue
            entry = self._entry(child, rel, ignored_parent=False)
            if entry.kind == "socket":
                continue  # sockets cannot be copied into an image
            self.emit(entry)
            if is_dir:
                self.walk(child.path, rel + "/", info, False)

    def _entry(self, child: os.DirEntry[str], rel: str, *, ignored_parent: bool) -> ContextEntry:
        self.stats.stat_calls += 1
        try:
            s = child.stat(follow_symlinks=False)
        except OSError as exc:
            raise ContextError(
                f"cannot stat {rel!r} in the build context: {exc.strerror}",
                hint="the file changed during the build, or its permissions forbid access",
            ) from exc
        return ContextEntry(rel, kind_of(s.st_mode), s, ignored_parent)


def walk_context(
    context_dir: Path, rules: IgnoreRules, *, stats: WalkStats | None = None
) -> Iterator[ContextEntry]:
    """Yield every entry of the context that the ignore rules keep."""
    root = os.fspath(context_dir)
    if not os.path.isdir(root):
        raise ContextError(
            f"build context {root!r} is not a directory",
            hint="pass the directory that holds the files your Dockerfile copies",
        )
    walker = _Walker(root, rules, stats if stats is not None else WalkStats())
    walker.walk(root, "", (), False)
    yield from walker.out
