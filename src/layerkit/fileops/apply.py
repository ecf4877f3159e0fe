"""Applies a FileOp (COPY, ADD, heredoc files, WORKDIR) onto a root filesystem directory.

Each action runs in order against ``dest_root``; paths inside it are resolved
in scope, so a symlink in the image (``/run -> /var/run``) is followed as the
container would see it and nothing is ever written outside the root. The
destination rules are BuildKit's (fsutil ``copy.Copy``, file backend
``docopy``); docs/fileops.md lists them with the deliberate departures.
"""

from __future__ import annotations

import os
import posixpath
import stat
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from layerkit.context.dockerignore import IgnoreRules
from layerkit.context.patternmatcher import (
    BadPatternError,
    PatternMatcher,
    compiled_matcher,
    filepath_match,
    has_wildcards,
)
from layerkit.fileops.chmod import ModeSpec, parse_chmod
from layerkit.fileops.copier import Copier, CopyOptions, copy_file_content, include_prefixes
from layerkit.fileops.errors import FileOpError
from layerkit.fileops.owner import Owner, resolve_owner
from layerkit.fileops.result import FileOpResult
from layerkit.fileops.sources import SourceMatch, clean_source, resolve_source
from layerkit.graph.ops import AddUrlAction, CopyAction, FileOp, MkdirAction, MkfileAction
from layerkit.snapshot.scope import ScopeError, resolve_in_root

Fetch = Callable[[str], Path]

_MULTI_HINT = "add a trailing '/' to the destination, e.g. COPY a b /app/"


def apply_file_op(
    op: FileOp,
    *,
    dest_root: Path,
    inputs: Mapping[int, Path | None],
    ignore: IgnoreRules | None = None,
    epoch: int | None = None,
    fetch: Fetch | None = None,
    context_inputs: Collection[int] | None = None,
    workdir: str = "/",
) -> FileOpResult:
    """Run every action of ``op`` against ``dest_root``.

    ``inputs[i]`` is the root to copy from for ``action.input == i`` (None:
    scratch). Copies from the build context honour ``ignore`` and get uid/gid
    0; which inputs are the context is ``context_inputs``, or, when that is
    None, every copied input if ``ignore`` is given (pass an empty
    ``IgnoreRules()`` for a context without .dockerignore). ``epoch``
    (SOURCE_DATE_EPOCH) clamps every time written. ``fetch`` downloads ADD
    URLs (default :func:`layerkit.fileops.fetch.fetch_url`). ``workdir``
    resolves relative destinations that the lowering left relative.
    """
    runner = _Runner(Path(dest_root), inputs, ignore, epoch, fetch, context_inputs, workdir)
    for action in op.actions:
        if isinstance(action, CopyAction):
            runner.copy(action)
        elif isinstance(action, AddUrlAction):
            runner.add_url(action)
        elif isinstance(action, MkfileAction):
            runner.mkfile(action)
        else:
            runner.mkdir(action)
    return runner.result


def _abs(path: str, workdir: str) -> str:
    """Absolute destination; keeps a trailing '/' (and '' or '.' mean WORKDIR/)."""
    if path in ("", "."):
        return posixpath.join(posixpath.normpath(posixpath.join("/", workdir)), "")
    joined = posixpath.normpath(posixpath.join("/", workdir or "/", path))
    if path.endswith(("/", "/.")) and joined != "/":
        joined += "/"
    return joined


class _Runner:
    def __init__(
        self, root: Path, inputs: Mapping[int, Path | None], ignore: IgnoreRules | None,
        epoch: int | None, fetch: Fetch | None, context_inputs: Collection[int] | None,
        workdir: str,
    ) -> None:
        self.root = root
        self.inputs = inputs
        self.ignore = ignore
        self.epoch = epoch
        self.fetch = fetch
        self.context_inputs = context_inputs
        self.workdir = workdir or "/"
        self.result = FileOpResult()

    # -- shared helpers ------------------------------------------------------

    def host(self, path: str) -> Path:
        """Host path of an absolute path in the root, symlinks followed in scope."""
        try:
            return resolve_in_root(self.root, path, follow_final=True)
        except ScopeError as exc:
            raise FileOpError(f"{path}: {exc}", hint="a symlink in the image loops",
                              reference="file-op-symlink-loop") from exc

    def display(self, host: Path) -> str:
        rel = os.path.relpath(host, self.root)
        return "/" if rel == "." else "/" + rel

    def now_ns(self) -> int:
        if self.epoch is not None:
            return self.epoch * 1_000_000_000
        return time.time_ns()

    def mkdir_all(self, path: str, mode: int, owner: Owner | None) -> Path:
        """fsutil MkdirAll: create the missing directories of ``path`` (in scope)
        with ``mode`` and ``owner`` (0:0 by default); existing ones are untouched."""
        host = self.host(path)
        current = self.root
        for part in host.relative_to(self.root).parts:
            current = current / part
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                os.mkdir(current, 0o700)
                uid, gid = (owner.uid, owner.gid) if owner else (0, 0)
                try:
                    os.chown(current, uid, gid)
                except PermissionError:
                    self.result.warn(f"could not set owner {uid}:{gid} (not running as root)")
                os.chmod(current, mode)
                if self.epoch is not None:
                    ns = self.now_ns()
                    os.utime(current, ns=(ns, ns))
                self.result.entries += 1
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise FileOpError(
                    f"cannot create directory {path}: {self.display(current)} is not a directory",
                    hint="a file is in the way of the destination directory; copy to another "
                    "path or remove the file first",
                    reference="copy-dest-not-dir",
                )
        return current

    # -- COPY / ADD of local sources ----------------------------------------

    def copy(self, a: CopyAction) -> None:
        what = "ADD" if a.unpack else "COPY"
        owner = resolve_owner(self.root, a.chown)
        mode = parse_chmod(a.chmod)
        src_root = self.inputs.get(a.input)
        is_context = (a.input in self.context_inputs if self.context_inputs is not None
                      else self.ignore is not None)
        ignore = self.ignore if is_context else None
        opts = CopyOptions(owner=owner, context=is_context, mode=mode, epoch=self.epoch,
                           ignore=ignore, excludes=_matcher(a.excludes, "--exclude"))
        dest = _abs(a.dest, self.workdir)
        parent_mode = _implied_mode(mode)
        if a.parents:
            self.copy_parents(a, src_root, dest, opts, parent_mode, what)
            return
        items: list[SourceMatch] = []
        for source in a.sources:
            items.extend(resolve_source(src_root, source, ignore=ignore, what=what))
        if not items:
            shown = " ".join(a.sources)
            raise FileOpError(
                f"{what} {shown}: no source files were specified (nothing matches)",
                hint="wildcards are matched from the root of the build context (or of the "
                "--from stage) with Go filepath.Match rules",
                reference="copy-source-missing",
            )
        ensure = dest if dest.endswith("/") else posixpath.dirname(dest)
        self.mkdir_all(ensure, parent_mode, owner)
        dst_host = self.host(dest)
        # Directories merge and archives extract into dest; only plain files would
        # silently overwrite each other (BuildKit allows it, the classic builder does not).
        if a.unpack:  # ADD: archives (and their decompressors) only when asked
            from layerkit.fileops.archive import detect_archive
        files = [i for i in items if not i.host.is_dir()
                 and not (a.unpack and detect_archive(i.host) is not None)]
        if len(items) > 1 and files and not dest.endswith("/") and not dst_host.is_dir():
            raise FileOpError(
                f"When using {what} with more than one source file, the destination must be "
                "a directory and end with a /",
                hint=_MULTI_HINT, reference="copy-dest-not-dir",
            )
        copier = Copier(opts, self.result)
        for item in items:
            self.copy_one(a, item, dst_host, dest, copier, parent_mode, what)

    def copy_one(
        self, a: CopyAction, item: SourceMatch, dst_host: Path, dest: str, copier: Copier,
        parent_mode: int, what: str,
    ) -> None:
        src_st = os.lstat(item.host)
        src_is_dir = stat.S_ISDIR(src_st.st_mode)
        if a.unpack and stat.S_ISREG(src_st.st_mode):
            from layerkit.fileops.archive import detect_archive, extract_archive

            kind = detect_archive(item.host)
            if kind is not None:
                # ADD extracts into the destination itself, trailing '/' or not.
                target = self.mkdir_all(dest, parent_mode, copier.opts.owner)
                extract_archive(item.host, kind, target, display=item.name,
                                owner=copier.opts.owner, epoch=self.epoch, result=self.result)
                self.result.written.append(self.display(target))
                return
        dst = dst_host
        if not src_is_dir and dst.is_dir():
            dst = dst / posixpath.basename(item.name)
        # The parent may be new when dest is a symlink to a missing directory.
        self.mkdir_all("/" + os.path.relpath(dst.parent, self.root), parent_mode,
                       copier.opts.owner)
        copier.copy(os.fspath(item.host), item.rel, os.fspath(dst))
        self.result.written.append(self.display(dst))

    def copy_parents(
        self, a: CopyAction, src_root: Path | None, dest: str, opts: CopyOptions,
        parent_mode: int, what: str,
    ) -> None:
        """``COPY --parents``: keep each source's path (after a ``/./`` pivot) under dest."""
        target = self.mkdir_all(dest, parent_mode, opts.owner)
        copier = Copier(opts, self.result)
        for source in a.sources:
            prefix, _, pattern = source.partition("/./") if "/./" in source else ("", "", source)
            prefix = clean_source(prefix, what)
            pattern = clean_source(pattern, what)
            if src_root is None:
                bases: list[str] = []
            elif has_wildcards(prefix):
                bases = _matching_dirs(src_root, prefix, opts.ignore)
            else:
                bases = [prefix]
            if not has_wildcards(pattern) and not has_wildcards(prefix):
                # A plain path must exist (BuildKit: "...": not found).
                full = f"{prefix}/{pattern}".strip("/")
                resolve_source(src_root, full or ".", ignore=opts.ignore, what=what)
            for base in bases:
                base_host = resolve_in_root(src_root, base) if src_root else None
                if base_host is None or not base_host.is_dir():
                    continue
                base_rel = os.path.relpath(base_host, src_root)
                base_rel = "" if base_rel == "." else base_rel
                if pattern:
                    copier.opts.includes = _matcher((pattern,), "COPY --parents source")
                    copier.opts.include_prefixes = include_prefixes([pattern])
                else:
                    copier.opts.includes = None
                copier.copy(os.fspath(base_host), base_rel, os.fspath(target))
        self.result.written.append(self.display(target))

    # -- ADD <url> -------------------------------------------------------------

    def add_url(self, a: AddUrlAction) -> None:
        from layerkit.fileops.fetch import fetch_url, url_filename, verify_checksum

        owner = resolve_owner(self.root, a.chown)
        mode = parse_chmod(a.chmod)
        if self.fetch is not None:
            fetched = self.fetch(a.url)
        else:
            fetched = fetch_url(a.url, checksum=a.checksum)
        verify_checksum(fetched, a.checksum, a.url)
        dest = _abs(a.dest, self.workdir)
        ensure = dest if dest.endswith("/") else posixpath.dirname(dest)
        self.mkdir_all(ensure, _implied_mode(mode), owner)
        dst = self.host(dest)
        if dst.is_dir():
            dst = dst / url_filename(a.url)
        if os.path.lexists(dst):
            if dst.is_dir() and not dst.is_symlink():
                raise FileOpError(f"ADD {a.url}: {self.display(dst)} is a directory",
                                  hint="end the destination with '/' to download into it",
                                  reference="copy-dest-is-dir")
            os.unlink(dst)
        copy_file_content(os.fspath(fetched), os.fspath(dst))
        src_st = os.stat(fetched)
        uid, gid = (owner.uid, owner.gid) if owner else (0, 0)
        os.chown(dst, uid, gid)
        # BuildKit's http source writes downloads 0600 unless --chmod says otherwise.
        os.chmod(dst, mode.apply(0o600, is_dir=False) if mode else 0o600)
        ns = src_st.st_mtime_ns
        if self.epoch is not None:
            ns = min(ns, self.epoch * 1_000_000_000)
        os.utime(dst, ns=(ns, ns))
        self.result.entries += 1
        self.result.written.append(self.display(dst))

    # -- heredoc files and WORKDIR -----------------------------------------------

    def mkfile(self, a: MkfileAction) -> None:
        owner = resolve_owner(self.root, a.chown)
        mode = parse_chmod(a.chmod)
        path = _abs(a.path, self.workdir).rstrip("/") or "/"
        self.mkdir_all(posixpath.dirname(path), 0o755, owner)
        dst = self.host(path)
        if os.path.lexists(dst):
            if dst.is_dir():
                raise FileOpError(f"cannot write file {path}: it is a directory",
                                  hint="give the heredoc a destination file name, or end the "
                                  "destination with '/' to create <dest>/<name>",
                                  reference="copy-dest-is-dir")
            os.unlink(dst)
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(a.data.encode("utf-8", "surrogateescape"))
        uid, gid = (owner.uid, owner.gid) if owner else (0, 0)
        os.chown(dst, uid, gid)
        os.chmod(dst, mode.apply(a.mode, is_dir=False) if mode else a.mode)
        if self.epoch is not None:
            ns = self.now_ns()
            os.utime(dst, ns=(ns, ns))
        self.result.entries += 1
        self.result.written.append(self.display(dst))

    def mkdir(self, a: MkdirAction) -> None:
        owner = resolve_owner(self.root, a.chown, flag="USER")
        path = _abs(a.path, self.workdir).rstrip("/") or "/"
        if not a.parents:
            parent = self.host(posixpath.dirname(path))
            if not parent.is_dir():
                raise FileOpError(f"cannot create directory {path}: parent does not exist",
                                  hint="create the parent first", reference="mkdir-failed")
        target = self.mkdir_all(path, a.mode, owner)
        self.result.written.append(self.display(target))


def _implied_mode(mode: ModeSpec | None) -> int:
    """Mode of parent directories a COPY creates: --chmod's (testCopyChmod), else 0755."""
    return 0o755 if mode is None else mode.apply(0o40755, is_dir=True)


def _matcher(patterns: tuple[str, ...] | list[str], flag: str) -> PatternMatcher | None:
    try:
        return compiled_matcher(patterns)
    except BadPatternError as exc:
        raise FileOpError(
            f"invalid {flag} pattern in {list(patterns)!r}: {exc}",
            hint='patterns use .dockerignore syntax: "*", "?", "[a-z]", "**", "!"',
            reference="copy-invalid-pattern",
        ) from exc


def _matching_dirs(root: Path, pattern: str, ignore: IgnoreRules | None) -> list[str]:
    """Directories below ``root`` whose path matches a wildcard pivot prefix
    ("*/src", "**/pkg"): '**' spans any number of directories here."""
    matcher = _matcher((pattern,), "COPY --parents source")
    depth_limit = None if "**" in pattern else pattern.count("/") + 1
    found: list[str] = []

    def visit(host: str, rel: str, depth: int) -> None:
        try:
            entries = sorted(os.scandir(host), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            sub = f"{rel}/{entry.name}" if rel else entry.name
            if ignore and ignore.matches(sub) and not ignore.may_reinclude_below(sub):
                continue
            hit = matcher.matches(sub) if matcher else False
            if "**" not in pattern:
                hit = filepath_match(pattern, sub)
            if hit:
                found.append(sub)
            if depth_limit is None or depth + 1 < depth_limit:
                visit(entry.path, sub, depth + 1)

    visit(os.fspath(root), "", 0)
    return found
