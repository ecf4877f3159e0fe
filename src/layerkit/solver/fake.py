"""FakeWorker: an in-memory :class:`~layerkit.solver.worker.Worker` for solver tests.

Results are dicts of path → text. Every call is counted (``calls``) and every
RUN command is logged (``ran``). By default a RUN writes random bytes to a new
file, so a test can prove a cache hit the BuildKit way: identical bytes after a
rebuild mean the step hit, new bytes mean it ran. ``on(pattern, fn)`` replaces
that default for commands containing ``pattern`` (``fn`` edits the files, and
may raise :class:`~layerkit.solver.worker.ExecFailed`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import os
import posixpath
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from layerkit.cache.keystore import KeyStore
from layerkit.context.checksum import SourceChecksum
from layerkit.dockerfile.parser import parse
from layerkit.errors import BuildError
from layerkit.frontend import StageGraph, build_stage_graph
from layerkit.graph.model import ContextInput, UrlInput
from layerkit.graph.ops import (
    AddUrlAction,
    CopyAction,
    ExecOp,
    FileOp,
    MkdirAction,
    MkfileAction,
    SourceOp,
)
from layerkit.progress.events import ProgressSink
from layerkit.solver.imageconfig import ImageConfig
from layerkit.solver.plan import Plan
from layerkit.solver.result import SolveResult
from layerkit.solver.solve import SolveOptions, plan, solve
from layerkit.solver.worker import BaseState, ExecContext, InputValue, StepResult

Files = dict[str, str]
Behaviour = Callable[[Files, ExecOp, ExecContext], None]


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class FakeWorker:
    """In-memory worker with call counters and random RUN output."""

    def __init__(
        self,
        context: Mapping[str, str] | None = None,
        images: Mapping[str, Mapping[str, str]] | None = None,
        urls: Mapping[str, str] | None = None,
        image_configs: Mapping[str, ImageConfig] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.context: Files = dict(context or {})
        self.images: dict[str, Files] = {k: dict(v) for k, v in (images or {}).items()}
        self.image_configs = dict(image_configs or {})
        self.urls = dict(urls or {})
        self.delay_s = delay_s
        self.results: dict[str, Files] = {}
        self.calls: Counter[str] = Counter()
        self.ran: list[str] = []
        self.behaviours: list[tuple[str, Behaviour]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.max_parallel = 0
        self._active = 0

    # -- test helpers ----------------------------------------------------------

    def on(self, pattern: str, fn: Behaviour) -> None:
        self.behaviours.append((pattern, fn))

    def forget(self, ref: str) -> None:
        """Drop a result, as a prune would."""
        self.results.pop(ref, None)

    def files(self, result: StepResult | None) -> Files:
        return dict(self.results[result.ref]) if result is not None else {}

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] += 1

    def _store(self, files: Files) -> StepResult:
        with self._lock:
            ref = f"fake-{next(self._ids)}"
            self.results[ref] = files
        return StepResult(ref, {"files": str(len(files))})

    # -- Worker ----------------------------------------------------------------------

    def resolve_base(self, ref: str, platform: str) -> BaseState:
        self._count("resolve_base")
        if ref not in self.images:
            raise BuildError(f"pulling {ref}: not found", reference="image-not-found")
        digest = _sha(repr(sorted(self.images[ref].items())))
        return BaseState(ref, digest, self.image_configs.get(ref, ImageConfig()), platform)

    def load_source(self, op: SourceOp) -> StepResult | None:
        self._count("load_source")
        if op.kind == "image":
            return self._store(dict(self.images[op.ref]))
        return None

    def checksum_context(
        self, sources: Sequence[str], excludes: Sequence[str], *, follow_links: bool = True,
        context: str = "context",
    ) -> SourceChecksum:
        self._count("checksum_context")
        return _checksum({"/" + k.lstrip("/"): v for k, v in self.context.items()},
                         sources, excludes, strip=True)

    def checksum_paths(
        self, result: StepResult | None, paths: Sequence[str], excludes: Sequence[str]
    ) -> SourceChecksum:
        self._count("checksum_paths")
        return _checksum(self.files(result), paths, excludes, strip=False)

    def checksum_url(self, url: str) -> str:
        self._count("checksum_url")
        return _sha(self.urls[url])

    def run_exec(
        self, parent: StepResult | None, op: ExecOp, inputs: Sequence[InputValue],
        ctx: ExecContext,
    ) -> StepResult:
        self._count("run_exec")
        with self._lock:
            self._active += 1
            self.max_parallel = max(self.max_parallel, self._active)
            self.ran.append(op.args[-1])
        try:
            if self.delay_s:
                ctx.cancelled.wait(self.delay_s)
            files = self.files(parent)
            for pattern, fn in self.behaviours:
                if pattern in op.args[-1]:
                    fn(files, op, ctx)
                    break
            else:
                files[f"/random/{next(self._ids)}"] = os.urandom(8).hex()
            ctx.on_output(f"ran {op.args[-1]}")
            return self._store(files)
        finally:
            with self._lock:
                self._active -= 1

    def run_file(
        self, parent: StepResult | None, op: FileOp, inputs: Sequence[InputValue],
        ctx: ExecContext,
    ) -> StepResult:
        self._count("run_file")
        files = self.files(parent)
        for a in op.actions:
            if isinstance(a, CopyAction):
                src = inputs[a.input]
                if isinstance(src, ContextInput):
                    tree = {"/" + k.lstrip("/"): v for k, v in self.context.items()}
                elif isinstance(src, StepResult):
                    tree = self.files(src)
                else:
                    tree = {}
                for source in a.sources:
                    for path, text in _select(tree, source):
                        files[_place(source, path, a.dest)] = text
            elif isinstance(a, MkfileAction):
                files[a.path] = a.data
            elif isinstance(a, MkdirAction):
                files[a.path.rstrip("/") + "/"] = ""
            elif isinstance(a, AddUrlAction):
                url_in = inputs[a.input]
                url = url_in.url if isinstance(url_in, UrlInput) else a.url
                name = posixpath.basename(url)
                dest = a.dest + name if a.dest.endswith("/") else a.dest
                files[dest] = self.urls[url]
        return self._store(files)

    def has_result(self, result: StepResult) -> bool:
        self._count("has_result")
        return result.ref in self.results


def _select(tree: Mapping[str, str], source: str) -> list[tuple[str, str]]:
    """Files of ``tree`` a source selects: a file, a directory or a wildcard."""
    clean = posixpath.normpath("/" + source.lstrip("/"))
    if clean == "/":
        return sorted(tree.items())
    out = []
    for path, text in sorted(tree.items()):
        if path == clean or path.startswith(clean + "/") or fnmatch.fnmatchcase(path, clean):
            out.append((path, text))
    return out


def _place(source: str, path: str, dest: str) -> str:
    clean = posixpath.normpath("/" + source.lstrip("/"))
    if path == clean or any(ch in source for ch in "*?["):
        rel = posixpath.basename(path)
        return dest + rel if dest.endswith("/") else dest
    rel = posixpath.relpath(path, clean) if clean != "/" else path.lstrip("/")
    return posixpath.join(dest, rel)


def _checksum(
    tree: Mapping[str, str], sources: Sequence[str], excludes: Sequence[str], *, strip: bool
) -> SourceChecksum:
    files: dict[str, str] = {}
    matched: list[str] = []
    outer = hashlib.sha256(b"fake-sources\n")
    for source in sources:
        for path, text in _select(tree, source):
            if any(fnmatch.fnmatchcase(path.lstrip("/"), e) for e in excludes):
                continue
            name = path.lstrip("/") if strip else path
            files[name] = _sha(text)
            matched.append(name)
            outer.update(f"{source}\0{name}\0{files[name]}\n".encode())
    return SourceChecksum("sha256:" + outer.hexdigest(), files, matched)


class FakeBuild:
    """A Dockerfile, a FakeWorker and a key store: ``build()`` and ``plan()`` in one line.

    For solver tests: edit ``dockerfile`` or ``worker.context`` between builds and
    compare the outcomes (or the random bytes RUN steps wrote).
    """

    def __init__(self, dockerfile: str, worker: FakeWorker, store_path: Path,
                 *, path: str = "/work/Dockerfile") -> None:
        self.dockerfile = dockerfile
        self.worker = worker
        self.path = path
        self.store = KeyStore(store_path)

    def graph(self, *, target: str | None = None,
              build_args: Mapping[str, str] | None = None) -> StageGraph:
        return build_stage_graph(parse(self.dockerfile, filename=self.path),
                                 target=target, build_args=build_args or {})

    def options(self, **kw: object) -> SolveOptions:
        return SolveOptions(dockerfile=self.path, **kw)  # type: ignore[arg-type]

    def build(self, *, target: str | None = None, build_args: Mapping[str, str] | None = None,
              sink: ProgressSink | None = None, **kw: object) -> SolveResult:
        return solve(self.graph(target=target, build_args=build_args), self.worker, self.store,
                     options=self.options(**kw), sink=sink)

    def plan(self, *, target: str | None = None, build_args: Mapping[str, str] | None = None,
             **kw: object) -> Plan:
        return plan(self.graph(target=target, build_args=build_args), self.worker, self.store,
                    options=self.options(**kw))

    def files(self, result: SolveResult) -> Files:
        return self.worker.files(result.final.result)
