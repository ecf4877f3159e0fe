"""One build (or plan) session: BuildOptions → parsed Dockerfile, stage graph, worker,
solve, image commit, outputs and the ``--metadata-file``.

This is where the modules meet; each of them stays ignorant of the others.
Everything heavy (snapshots, runc, exporters) is imported only when a step or
an output needs it, so a no-op rebuild costs the parse, one stat per context
file (through the context stat cache) and a few SQLite reads.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from layerkit.errors import BuildError, ContextError
from layerkit.fastclass import dataclass
from layerkit.worker import memo
from layerkit.worker.options import BuildOptions

if TYPE_CHECKING:
    from layerkit.cache.remote.session import RemoteCaches
    from layerkit.context.checksum import ContextHasher
    from layerkit.frontend import StageGraph
    from layerkit.solver import Plan, SolveResult
    from layerkit.worker.commit import CommittedImage
    from layerkit.worker.local import LocalWorker
    from layerkit.worker.outputs import ExportResult
    from layerkit.worker.remote import RemoteAccess
    from layerkit.worker.store import Store

__all__ = ["BuildResult", "run_build", "run_plan"]


@dataclass(frozen=True)
class BuildResult:
    """A finished build: the image, where it went, and what each step did."""

    image_id: str  # the config digest
    manifest_digest: str  # containerimage.digest (the exported manifest if any)
    names: tuple[str, ...]
    solve: SolveResult
    exports: tuple[ExportResult, ...]
    metadata: Mapping[str, Any]


_NAME_RE = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")


def normalize_tag(tag: str) -> str:
    """``-t app`` → ``app:latest`` (the name the store records), validated like docker."""
    text = tag.strip()
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/"):
        if text.startswith(prefix):  # stored as docker shows it (store/catalog.py agrees)
            text = text[len(prefix):]
            break
    name, value = text, "latest"
    slash, colon = text.rfind("/"), text.rfind(":")
    if colon > slash:
        name, value = text[:colon], text[colon + 1:]
    if "@" in tag or not _NAME_RE.match(name) or not _TAG_RE.match(value):
        raise BuildError(f"-t {tag!r}: invalid image name",
                         hint="use lower-case name[:tag], e.g. myapp:1.0 or "
                              "registry.example.com/team/app:v2",
                         reference="bad-flag")
    return f"{name}:{value}"


def _source_date_epoch() -> int | None:
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise BuildError(f"SOURCE_DATE_EPOCH={raw!r} is not a number of seconds",
                         hint="set it to a Unix timestamp, e.g. $(git log -1 --format=%ct)",
                         reference="bad-flag")
    return int(raw)


@dataclass
class _Session:
    options: BuildOptions
    context: Path
    dockerfile: Path
    graph: StageGraph | None  # None until needed when a kept lowered build is used
    store: Store
    worker: LocalWorker
    platform: str
    access: RemoteAccess
    caches: RemoteCaches | None = None  # --cache-from / --cache-to, when given

    def close(self) -> None:
        self.worker.close()
        if self.caches is not None:
            self.caches.close()
        self.access.close()
        self.store.close()

    def sources(self) -> list[Any] | None:
        """Where keys are looked up: the local store, then each ``--cache-from`` in order."""
        if self.caches is None or not self.caches.sources:
            return None  # the solver's default: the local store alone
        from layerkit.solver import LocalCache

        return [LocalCache(self.store.keys), *self.caches.sources]

    def warn(self, stream: TextIO | None) -> None:
        if self.caches is None:
            return
        for warning in self.caches.warnings:
            print(f"WARNING: {warning}", file=stream or sys.stderr)
        self.caches.warnings.clear()


def _parse(options: BuildOptions, dockerfile: Path, platform: Any) -> StageGraph:
    from layerkit.dockerfile.parser import parse_file
    from layerkit.frontend.stages import build_stage_graph

    return build_stage_graph(parse_file(dockerfile), target=options.target,
                             build_args=_build_args(options.build_args), platform=platform)


def _graph(s: _Session) -> StageGraph:
    if s.graph is None:
        from layerkit.frontend.platform import parse_platform

        s.graph = _parse(s.options, s.dockerfile, parse_platform(s.platform))
    return s.graph


def _lowered(s: _Session, kept: Any) -> Any:
    """The build lowered for this session: ``kept`` (an earlier build's, from the memo)
    when every base image it names still resolves to the same image here, else the
    Dockerfile parsed, dispatched and lowered now."""
    from layerkit.errors import LayerkitError
    from layerkit.solver.solve import lower_build

    if kept is not None:
        try:
            if all(s.worker.resolve_base(ref, base.platform).digest == base.digest
                   for ref, base in kept.bases.items()):
                memo.trace("lowered kept")
                return kept
        except (LayerkitError, AttributeError, TypeError):
            pass  # lowering again reports it properly, with the line
    return lower_build(_graph(s), s.worker, dockerfile=str(s.dockerfile.absolute()))


def _build_args(raw: Mapping[str, str | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            if key in os.environ:
                out[key] = os.environ[key]
        else:
            out[key] = value
    return out


def _open(options: BuildOptions, context_hasher: ContextHasher | None = None, *,
          parse: bool = True) -> _Session:
    """The session for ``options``; ``parse=False`` leaves the Dockerfile unread until
    :func:`_graph` (a kept lowered build may make it unnecessary)."""
    from layerkit.frontend.platform import host_platform, parse_platform
    from layerkit.worker.local import LocalWorker
    from layerkit.worker.remote import RemoteAccess
    from layerkit.worker.specs import parse_build_contexts, parse_secrets, parse_ssh
    from layerkit.worker.store import Store, default_root

    context = Path(options.context)
    if not context.is_dir():
        raise ContextError(f"build context {options.context!r} is not a directory",
                           hint="pass the directory holding your sources, e.g. `layerkit build .`")
    dockerfile = Path(options.file) if options.file else context / "Dockerfile"
    if not dockerfile.is_file():
        raise ContextError(f"Dockerfile not found: {dockerfile}",
                           hint="pass -f PATH/TO/Dockerfile, or add a Dockerfile to the context")
    host = host_platform()
    platform = host
    if options.platform:
        platform = parse_platform(options.platform, host=host)
        if (platform.os, platform.architecture) != (host.os, host.architecture):
            raise BuildError(
                f"--platform {options.platform}: only the host platform ({host}) can be built",
                hint="drop --platform (cross-platform builds are not supported yet)",
                reference="bad-flag")
    if options.network not in ("default", "host", "none"):
        raise BuildError(f"--network {options.network!r}: unknown mode",
                         hint="use --network=default, --network=host or --network=none",
                         reference="bad-flag")
    if options.jobs < 1:
        raise BuildError(f"--jobs {options.jobs}: must be at least 1", reference="bad-flag")
    graph = _parse(options, dockerfile, platform) if parse else None
    cache_to, cache_from = _cache_specs(options)
    store = Store(Path(options.root) if options.root else default_root())
    access = RemoteAccess(store, insecure_registries=options.insecure_registries,
                          registry_config=options.registry_config, max_workers=options.jobs)
    worker = LocalWorker(
        store, context, dockerfile, platform=str(platform),
        contexts=parse_build_contexts(options.build_contexts),
        secrets=parse_secrets(options.secrets), ssh=parse_ssh(options.ssh),
        network=options.network,
        epoch=_source_date_epoch(),
        access=access, pull=options.pull, context_hasher=context_hasher,
    )
    session = _Session(options, context, dockerfile, graph, store, worker, str(platform),
                       access)
    if cache_to or cache_from:
        from layerkit.cache.remote.session import RemoteCaches

        session.caches = RemoteCaches(store.content, cache_from=cache_from, cache_to=cache_to,
                                      client=access.client, platform=str(platform),
                                      max_workers=options.jobs, results=access.results)
        try:
            session.caches.load()  # documents only: no layer is downloaded here
        except BaseException:
            session.close()
            raise
    return session


def _cache_specs(options: BuildOptions) -> tuple[list[Any], list[Any]]:
    if not (options.cache_to or options.cache_from):
        return [], []
    from layerkit.cache.remote.spec import parse_cache_flags

    return parse_cache_flags(options.cache_to, options.cache_from)


def _solve_options(s: _Session) -> Any:
    from layerkit.solver import SolveOptions

    return SolveOptions(dockerfile=str(s.dockerfile.absolute()), no_cache=s.options.no_cache,
                        no_cache_filter=tuple(s.options.no_cache_filter), jobs=s.options.jobs)


def run_plan(options: BuildOptions) -> Plan:
    """Predict what a build with ``options`` would reuse and run; nothing runs."""
    from layerkit.solver import plan

    s = _open(options)
    try:
        s.warn(None)
        return plan(_graph(s), s.worker, s.store.keys, options=_solve_options(s),
                    sources=s.sources())
    finally:
        s.close()


def run_build(options: BuildOptions, *, stream: TextIO | None = None,
              capture: memo.Capture | None = None) -> BuildResult:
    """Build, commit, tag, export and push; export the cache; write ``--metadata-file``.
    Progress goes to ``stream``. ``capture`` is the memo's fingerprint of these
    options when the caller already took it (``memo.lookup``); this takes it over."""
    from layerkit.progress import make_renderer
    from layerkit.solver.solve import solve_build
    from layerkit.worker.specs import parse_outputs

    specs = parse_outputs(options.outputs)  # bad -o fails before anything runs
    tags = tuple(dict.fromkeys(normalize_tag(t) for t in options.tags))
    pushes = _push_targets(options, specs, tags)
    local_names = tuple(dict.fromkeys((*tags, *_image_output_names(specs))))
    from layerkit.worker.cleanup import clean_leftovers

    if capture is None:
        clean_leftovers(memo.root_of(options))  # a killed build's mounts and containers
        # What the build reads, fingerprinted before it reads it (the no-op fast path).
        capture = memo.capture(options)
    kept = capture.lowered if capture is not None else None
    try:
        s = _open(options, capture.hasher if capture is not None else None,
                  parse=kept is None)
    except BaseException:
        if capture is not None:
            capture.close()
        raise
    out = stream or sys.stderr
    labels: dict[int, tuple[str, str, int]] = {}
    step_results: list[tuple[str, str, tuple[str, ...]]] = []
    try:
        s.warn(out)
        renderer = _LabelTee(make_renderer(options.progress, out), labels)
        with s.store.content.lease():  # no prune between "blob written" and "key recorded"
            try:
                lowered = _lowered(s, kept)
                result = solve_build(lowered, s.worker, s.store.keys,
                                     options=_solve_options(s), sink=renderer,
                                     sources=s.sources())
            finally:
                renderer.close()
            # The local image store is an output: it needs the final image's layers
            # (a remote hit downloads them now, and nothing of the other stages).
            s.worker.fetch_layers([result.final.base, *result.final.layers])
            image = _commit(s, result, local_names)
            exports: list[Any] = []
            if specs:
                from layerkit.worker.outputs import export_outputs

                exports = export_outputs(s.store, image, specs, tags=tags, jobs=options.jobs)
            exports += _push(s, image, pushes, out)
            if s.caches is not None:
                for done in s.caches.export(result, s.store.keys, max_workers=options.jobs):
                    if done.digest:
                        print(f"exported cache ({done.records} records, {done.layers} "
                              f"layers) to {_cache_where(done.spec)}", file=out)
                s.warn(out)
        if capture is not None:
            step_results = _step_results(s, result)
    finally:
        s.close()
    manifest = next((e.manifest_digest for e in exports
                     if e.manifest_digest and e.spec.type != "image"), image.manifest_digest)
    metadata: dict[str, Any] = {
        "containerimage.config.digest": image.config_digest,
        "containerimage.digest": manifest,
    }
    if local_names or pushes:
        metadata["image.name"] = ",".join(dict.fromkeys((*local_names, *pushes)))
    metadata["steps"] = [
        {"stage": o.stage, "index": o.index, "instruction": o.text, "status": o.status,
         "reason": o.reason, "duration_s": round(o.duration_s, 3), "number": o.number,
         "source": o.source}
        for o in result.steps
    ]
    if options.metadata_file:
        Path(options.metadata_file).write_text(json.dumps(metadata, indent=2) + "\n")
    if not exports:  # the memo only answers builds whose one output is the local store
        memo.record(capture, names=local_names, image_id=image.config_digest,
                    manifest_digest=manifest, steps=metadata["steps"], labels=labels,
                    results=step_results, layer_blobs=_layer_diff_ids(s, image.config_digest),
                    lowered=lowered)
    return BuildResult(image.config_digest, manifest, tags, result, tuple(exports), metadata)


class _LabelTee:
    """Passes progress on, keeping each step's label for the no-op memo."""

    def __init__(self, renderer: Any, labels: dict[int, tuple[str, str, int]]) -> None:
        self.renderer = renderer
        self.labels = labels

    def emit(self, event: Any) -> None:
        from layerkit.progress.events import StepStarted

        if isinstance(event, StepStarted):
            self.labels[event.number] = (event.label, event.stage, event.index)
        self.renderer.emit(event)

    def close(self) -> None:
        self.renderer.close()


def _step_results(s: _Session, result: SolveResult) -> list[tuple[str, str, tuple[str, ...]]]:
    """(key, snapshot id, blobs) of every keyed step, for the memo's validity check."""
    out: list[tuple[str, str, tuple[str, ...]]] = []
    for outcome in result.steps:
        if outcome.number is None or outcome.key is None:
            continue
        record = s.store.keys.get(outcome.key)
        if record is None:
            continue
        res = record.result.get("result") or {}
        meta = res.get("meta") or {}
        blobs = tuple(str(meta[k]) for k in ("diff_id", "image") if meta.get(k))
        out.append((outcome.key, str(res.get("ref") or ""), blobs))
    return out


def _layer_diff_ids(s: _Session, config_digest: str) -> list[str]:
    config = json.loads(s.store.content.read_bytes(config_digest))
    return [str(d) for d in (config.get("rootfs") or {}).get("diff_ids") or []]


def _image_output_names(specs: Any) -> list[str]:
    """``-o type=image,name=a,b`` names the image in the local store too."""
    names: list[str] = []
    for spec in specs:
        if spec.type == "image" and spec.attrs.get("name"):
            names += [normalize_tag(n) for n in re.split(r"[;,]", spec.attrs["name"]) if n]
    return names


def _push_targets(options: BuildOptions, specs: Any, tags: tuple[str, ...]) -> tuple[str, ...]:
    """Every reference to push: ``--push`` (each -t), ``-o type=image,push=true`` and
    ``-o type=registry`` (their name=, else each -t)."""
    targets = list(tags) if options.push else []
    for spec in specs:
        if spec.type != "image" or spec.attrs.get("push", "false").lower() not in ("true", "1"):
            continue
        names = [n for n in re.split(r"[;,]", spec.attrs.get("name", "")) if n]
        if not names and not tags:
            raise BuildError("-o type=registry needs name= (or -t) to know where to push",
                             hint="write -o type=registry,name=REGISTRY/REPO:TAG",
                             reference="bad-flag")
        targets += [normalize_tag(n) for n in names] or list(tags)
    if options.push and not tags:
        raise BuildError("--push needs at least one -t NAME to push to",
                         hint="add -t REGISTRY/REPO:TAG", reference="bad-flag")
    return tuple(dict.fromkeys(targets))


def _push(s: _Session, image: CommittedImage, targets: tuple[str, ...],
          out: TextIO) -> list[ExportResult]:
    """Push the committed image to each target: HEAD first, mounts, manifest last."""
    if not targets:
        return []
    from layerkit.commands.push import push_stored_image
    from layerkit.worker.outputs import ExportResult
    from layerkit.worker.specs import OutputSpec

    done: list[ExportResult] = []
    for target in targets:
        pushed = push_stored_image(s.store.content, image.config_digest, target,
                                   s.access.client(), max_workers=s.options.jobs)
        print(f"pushed {pushed.ref} {pushed.digest} ({len(pushed.uploaded)} uploaded, "
              f"{len(pushed.existing)} already there, {len(pushed.mounted)} mounted)",
              file=out)
        done.append(ExportResult(OutputSpec("registry", None, {"name": target}),
                                 pushed.digest))
    return done


def _cache_where(spec: Any) -> str:
    return str(spec.ref if spec.type == "registry" else spec.dest)


def _commit(s: _Session, result: SolveResult, tags: tuple[str, ...]) -> CommittedImage:
    from layerkit.worker.commit import commit_image

    extra: dict[str, Any] = {}
    if s.caches is not None and any(c.type == "inline" for c in s.caches.cache_to):
        extra = _inline_cache(s, result)
    return commit_image(s.store, result.final, platform=s.platform, epoch=s.worker.epoch,
                        tags=tags, extra=extra)


def _inline_cache(s: _Session, result: SolveResult) -> dict[str, Any]:
    """``--cache-to type=inline``: the final stage's records (mode=min), naming the gzip
    blobs a push of this image uploads (the compression is kept for the push to reuse)."""
    from layerkit.cache.remote.exporter import inline_cache_value, layer_blobs
    from layerkit.cache.remote.importer import INLINE_CACHE_KEY

    assert s.caches is not None
    records = s.caches.records(result, s.store.keys, "min")
    blobs = layer_blobs(records, s.store.content, s.caches.results, "gzip",
                        max_workers=s.options.jobs)
    return {INLINE_CACHE_KEY: inline_cache_value(records, blobs)}
