"""The real worker: the solver's requests → snapshots, runc runs, file ops and layer blobs.

Every step that makes a layer follows the same order, which is what makes a
SIGKILL harmless: prepare an active snapshot on the parent, change it (a RUN
through :func:`layerkit.executor.run_step`, or file actions), **commit** it,
diff it into an uncompressed layer tar that is **published** in the content
store under its diff_id, and only then return the result. The solver records
the cache key after that, so a key never points at something half-made; an
interrupted step leaves an uncommitted snapshot (removed by the next
Snapshotter) or an unreferenced one (removed by prune).

``StepResult.ref`` is the committed snapshot id; ``meta["diff_id"]`` its layer
blob; ``meta["empty"] == "1"`` when the step changed nothing (no layer in the
image, ``empty_layer`` in history). A FROM's result carries ``meta["image"]``,
the base image's config digest.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from layerkit.context.checksum import SourceChecksum
from layerkit.errors import BuildError
from layerkit.graph.model import ContextInput, UrlInput
from layerkit.graph.ops import ExecMount, ExecOp, FileOp, SourceOp
from layerkit.solver.worker import BaseState, ExecContext, ExecFailed, InputValue, StepResult
from layerkit.tmpnames import create_dir
from layerkit.worker.baseimage import REMOTE_PREFIX, BaseImages
from layerkit.worker.specs import NamedContext, SecretSpec, SshSpec
from layerkit.worker.store import Store, blob_exists, snapshot_committed

if TYPE_CHECKING:
    from layerkit.context.checksum import ContextHasher
    from layerkit.context.dockerignore import IgnoreRules
    from layerkit.executor.mounts import MountSpec
    from layerkit.snapshot.tarwriter import LayerReuse
    from layerkit.worker.copyreuse import CopyPlan, Previous
    from layerkit.worker.remote import RemoteAccess

__all__ = ["LocalWorker"]


class LocalWorker:
    """Implements :class:`layerkit.solver.worker.Worker` on a local store."""

    def __init__(
        self,
        store: Store,
        context_dir: Path,
        dockerfile: Path,
        *,
        platform: str,
        contexts: Mapping[str, NamedContext] | None = None,
        secrets: Mapping[str, SecretSpec] | None = None,
        ssh: Mapping[str, SshSpec] | None = None,
        network: str = "default",
        epoch: int | None = None,
        access: RemoteAccess | None = None,
        pull: bool = False,
        context_hasher: ContextHasher | None = None,
    ) -> None:
        self.store = store
        self.context_dir = Path(context_dir).absolute()
        self.dockerfile = Path(dockerfile).absolute()
        self.contexts = dict(contexts or {})
        self.secrets = dict(secrets or {})
        self.ssh = dict(ssh or {})
        self.network = network
        self.epoch = epoch
        self.access = access  # registry bases and --cache-from chains; None: local only
        self.bases = BaseImages(store, self.contexts, platform, access=access, refresh=pull)
        # The main context's hasher may come from the memo's capture (worker/memo.py),
        # which has walked and checksummed the context already; the worker closes it.
        self._hashers: dict[str, ContextHasher] = (
            {"context": context_hasher} if context_hasher is not None else {})
        self._lock = threading.RLock()
        self._reaped = False
        self._scratch_dir: Path | None = None
        self._downloads: dict[str, Path] = {}
        # (step label, files reused by hardlink) per incremental COPY (worker/copyreuse.py)
        self.copy_reuse: list[tuple[str, int]] = []

    def close(self) -> None:
        for hasher in self._hashers.values():
            hasher.close()
        if self._scratch_dir is not None:
            _remove_tree(self._scratch_dir)
        for path in self._downloads.values():
            _remove_tree(path.parent)

    # -- sources ---------------------------------------------------------------------

    def resolve_base(self, ref: str, platform: str) -> BaseState:
        return self.bases.base_state(ref, platform)

    def load_source(self, op: SourceOp) -> StepResult | None:
        if op.kind in ("image", "local"):
            return self.bases.load(op.ref or op.name, op.platform)
        return None

    def _context_root(self, name: str) -> Path:
        if name in ("", "context"):
            return self.context_dir
        ctx = self.contexts.get(name.lower())
        if ctx is None or ctx.kind != "local":
            raise BuildError(f"no build context named {name!r}",
                             hint=f"pass --build-context {name}=DIR", reference="build-context")
        return ctx.path

    def _hasher(self, name: str) -> ContextHasher:
        from layerkit.context.checksum import ContextHasher
        from layerkit.context.dockerignore import load_ignore_rules

        key = name or "context"
        with self._lock:
            if key not in self._hashers:
                root = self._context_root(key)
                df = self.dockerfile if key == "context" else None
                rules = load_ignore_rules(root, df)
                self._hashers[key] = ContextHasher(root, rules, self.store.root / "statcache")
            return self._hashers[key]

    def checksum_context(
        self, sources: Sequence[str], excludes: Sequence[str], *, follow_links: bool = True,
        context: str = "context",
    ) -> SourceChecksum:
        hasher = self._hasher(context)
        with self._lock:  # one hasher serves every stage thread
            return hasher.checksum_sources(list(sources), excludes=list(excludes),
                                           follow_source_links=follow_links)

    def checksum_paths(
        self, result: StepResult | None, paths: Sequence[str], excludes: Sequence[str]
    ) -> SourceChecksum:
        from layerkit.context.checksum import ContextHasher
        from layerkit.context.dockerignore import parse_ignore_file

        query = json.dumps([list(paths), list(excludes)])
        if result is not None:
            cached = self.store.path_sum(result.ref, query)
            if cached is not None:
                data = json.loads(cached)
                return SourceChecksum(data["digest"], data["files"], data["matched"])
        with self._view(result) as root, \
                ContextHasher(root, parse_ignore_file("", "none")) as hasher:
            cs = hasher.checksum_sources(list(paths), excludes=list(excludes))
        if result is not None:
            self.store.record_path_sum(result.ref, query, json.dumps(
                {"digest": cs.digest, "files": dict(cs.files), "matched": list(cs.matched)}))
        return cs

    def has_result(self, result: StepResult) -> bool:
        root = self.store.root
        if result.ref.startswith(REMOTE_PREFIX):
            # A layer chain (a registry base, or an imported cache record): usable when it
            # is unpacked here already, or when this build knows where to fetch it.
            image = result.meta.get("image")
            if image and not blob_exists(root, image):
                return False
            chain = result.ref.removeprefix(REMOTE_PREFIX)
            if self.store.chain_snapshot(chain) is not None:
                top = self.store.chain_diff(chain)
                if top and blob_exists(root, top):
                    return True
            return self.access is not None and self.access.knows(result.ref)
        if not snapshot_committed(root, result.ref):
            return False
        for key in ("diff_id", "image"):
            digest = result.meta.get(key)
            if digest and not blob_exists(root, digest):
                return False
        return True

    # -- remote results --------------------------------------------------------------

    def _local(self, result: StepResult | None) -> StepResult | None:
        """``result`` as a local snapshot: a ``remote:<chainID>`` chain is downloaded (only
        the layers the store lacks) and unpacked on demand. None: an empty filesystem."""
        if result is None or not result.ref.startswith(REMOTE_PREFIX):
            return result
        chain = result.ref.removeprefix(REMOTE_PREFIX)
        sid = self.store.chain_snapshot(chain)
        if sid is None:
            if self.access is None or not self.access.knows(result.ref):
                raise BuildError(f"a cached result ({result.ref}) is neither unpacked here "
                                 "nor in any --cache-from of this build",
                                 hint="build again (with the --cache-from that provided it)",
                                 reference="cache-import")
            diff_ids = self.access.results.ensure_chain(result.ref)
            if not diff_ids:
                return None
            sid = self.bases.unpack_chain(diff_ids)
        return StepResult(sid, dict(result.meta))

    def fetch_layers(self, results: Sequence[StepResult | None]) -> None:
        """Make the uncompressed layers of ``results`` present in the content store
        (downloading remote chains; nothing is unpacked): what an image commit needs."""
        for result in results:
            if (result is not None and result.ref.startswith(REMOTE_PREFIX)
                    and self.access is not None and self.access.knows(result.ref)):
                self.access.results.ensure_chain(result.ref)
        self.bases.name_complete_pulls()

    # -- mounts of results -------------------------------------------------------------

    @contextlib.contextmanager
    def _view(self, result: StepResult | None) -> Iterator[Path]:
        """A read-only directory showing ``result``'s whole filesystem."""
        from layerkit.snapshot.mount import mounted

        result = self._local(result)
        if result is None:
            import tempfile  # rare: an empty directory to mount

            with tempfile.TemporaryDirectory(dir=self._scratch()) as empty:
                yield Path(empty)
            return
        snaps = self.store.snapshots
        target = self._scratch() / f"view-{os.urandom(16).hex()[:12]}"
        target.mkdir()
        try:
            with mounted(snaps.view(result.ref), target) as path:
                yield path
        finally:
            with contextlib.suppress(OSError):
                target.rmdir()

    def _scratch(self) -> Path:
        """This process's directory for view mounts; named like a container id so
        ``executor.reap`` cleans it up after a killed build."""
        from layerkit.executor.runtime import new_container_id

        with self._lock:
            if self._scratch_dir is None:
                self._scratch_dir = self.store.root / "executor" / new_container_id()
            self._scratch_dir.mkdir(parents=True, exist_ok=True)
            return self._scratch_dir

    # -- steps -----------------------------------------------------------------------

    def run_exec(
        self, parent: StepResult | None, op: ExecOp, inputs: Sequence[InputValue],
        ctx: ExecContext,
    ) -> StepResult:
        from layerkit.executor import ExecutorConfig, ProcessSpec, reap, run_step
        from layerkit.executor.run import anything_to_reap

        config = ExecutorConfig(root=self.store.root)
        with self._lock:
            if not self._reaped:
                self._reaped = True
                if anything_to_reap(config):
                    reap(config)  # containers and mounts a killed build left behind
        parent = self._local(parent)
        snaps = self.store.snapshots
        key = f"run-{os.urandom(16).hex()}"
        mount = snaps.prepare(key, [parent.ref] if parent else [])
        try:
            with contextlib.ExitStack() as stack:
                mounts = self._exec_mounts(op, inputs, ctx, stack)
                env = tuple(f"{k}={v}" for k, v in (*op.env, *op.proxy_env))
                spec = ProcessSpec(args=op.args, env=env, cwd=op.cwd or "/", user=op.user)
                network = self.network if op.network == "default" else op.network
                done = run_step(mount, spec, mounts, network, ctx.on_output, config=config)
            if ctx.cancelled.is_set():
                raise ExecFailed("canceled", command=_shown(op))
            if not done.ok:
                code = "timed out" if done.timed_out else f"exit code: {done.exit_code}"
                raise ExecFailed(
                    f"process \"{_shown(op)}\" did not complete successfully: {code}",
                    command=_shown(op), exit_code=done.exit_code, output_tail=done.output_tail,
                    hint="fix the command (the last lines of its output are above); the steps "
                         "before it stay cached",
                )
            return self._commit(key)
        except BaseException:
            with contextlib.suppress(Exception):
                snaps.remove(key)
            raise

    def _exec_mounts(
        self, op: ExecOp, inputs: Sequence[InputValue], ctx: ExecContext,
        stack: contextlib.ExitStack,
    ) -> list[MountSpec]:
        from layerkit.executor import (
            BindMount,
            CacheMount,
            SecretMount,
            SshMount,
            TmpfsMount,
        )
        from layerkit.executor.mounts import cache_dir

        out: list[MountSpec] = []
        for m in op.mounts:
            if m.type == "bind":
                src = self._mount_source(m, inputs, stack)
                out.append(BindMount(m.target, src, readwrite=not m.readonly))
            elif m.type == "cache":
                seed = self._mount_source(m, inputs, stack) if m.input is not None else None
                cid = m.id or m.target
                if ctx.no_cache:
                    # --no-cache: the cache starts empty, and the real one is left alone.
                    cid = f"{cid}\0no-cache-{os.urandom(16).hex()}"
                    stack.callback(_remove_tree, cache_dir(self.store.root, cid))
                sharing = m.sharing if m.sharing in ("shared", "private", "locked") else "shared"
                out.append(CacheMount(
                    m.target, cid, sharing, m.readonly and not ctx.no_cache,  # type: ignore[arg-type]
                    0o755 if m.mode is None else m.mode, m.uid or 0, m.gid or 0, seed))
            elif m.type == "secret":
                sid = m.id or os.path.basename(m.target)
                secret = self.secrets.get(sid)
                if secret is None:
                    if m.required:
                        raise BuildError(
                            f"secret {sid!r} is required but was not given",
                            hint=f"pass --secret id={sid},src=FILE (or env=VAR)",
                            reference="secret-missing")
                    continue
                target = m.target or (None if m.env else f"/run/secrets/{sid}")
                out.append(SecretMount(sid, secret.read(), target, m.env or None,
                                       0o400 if m.mode is None else m.mode, m.uid or 0,
                                       m.gid or 0))
            elif m.type == "tmpfs":
                out.append(TmpfsMount(m.target, m.size))
            elif m.type == "ssh":
                sid = m.id or "default"
                agent = self.ssh.get(sid)
                if agent is None:
                    if m.required:
                        raise BuildError(f"ssh agent {sid!r} is required but was not forwarded",
                                         hint=f"pass --ssh {sid}", reference="ssh-missing")
                    continue
                out.append(SshMount(m.target or "/run/buildkit/ssh_agent.0", agent.socket, sid))
        if op.inline_files:
            pipes = create_dir(self._scratch(), "pipes-")
            stack.callback(_remove_tree, pipes)
            for name, data in op.inline_files:
                path = pipes / name
                path.write_text(data)
                path.chmod(0o755)
            out.append(BindMount("/dev/pipes", pipes))
        return out

    def _mount_source(self, m: ExecMount, inputs: Sequence[InputValue],
                      stack: contextlib.ExitStack) -> Path:
        value = inputs[m.input] if m.input is not None else None
        sub = (m.source or "/").lstrip("/")
        if isinstance(value, ContextInput):
            root = self._context_root(value.name)
            path = (root / sub).resolve()
            if path != root.resolve() and root.resolve() not in path.parents:
                raise BuildError(f"--mount source {m.source!r} is outside the build context",
                                 hint="mount a path inside the context", reference="run-mount")
            return path
        if isinstance(value, UrlInput):
            raise BuildError("a URL cannot be mounted", reference="run-mount")
        root = stack.enter_context(self._view(value))
        from layerkit.context.checksum import resolve_in_root

        return resolve_in_root(root, sub) if sub else root

    def run_file(
        self, parent: StepResult | None, op: FileOp, inputs: Sequence[InputValue],
        ctx: ExecContext,
    ) -> StepResult:
        parent = self._local(parent)
        workdir = ctx.config.working_dir or "/"
        plan = self._copy_plan(parent, op, inputs, workdir)
        prev = None
        if plan is not None:
            from layerkit.worker import copyreuse

            prev = copyreuse.previous(self.store.root, self.store.snapshots.dir, plan)
            if prev is not None and not prev.reusable:
                prev = None
        try:
            return self._run_file(parent, op, inputs, ctx, workdir, plan, prev)
        except Exception as exc:
            from layerkit.worker.copyreuse import ReuseFailed

            if not isinstance(exc, ReuseFailed):
                raise
            # The old snapshot is not what its record says: copy everything.
            return self._run_file(parent, op, inputs, ctx, workdir, plan, None)

    def _copy_plan(self, parent: StepResult | None, op: FileOp, inputs: Sequence[InputValue],
                   workdir: str) -> CopyPlan | None:
        """An incremental-COPY plan (worker/copyreuse.py) when the step qualifies."""
        from layerkit.worker import copyreuse

        if not copyreuse.enabled():
            return None
        ctx_input = next((v for v in inputs if isinstance(v, ContextInput)), None)
        if ctx_input is None:
            return None
        return copyreuse.plan_copy(
            op, inputs, parent_ref=parent.ref if parent else "",
            context_root=self._context_root(ctx_input.name),
            ignore=self._hasher(ctx_input.name).rules, workdir=workdir, epoch=self.epoch,
            driver=self.store.snapshots.driver)

    def _run_file(
        self, parent: StepResult | None, op: FileOp, inputs: Sequence[InputValue],
        ctx: ExecContext, workdir: str, plan: CopyPlan | None, prev: Previous | None,
    ) -> StepResult:
        from layerkit.snapshot.mount import mounted

        snaps = self.store.snapshots
        key = f"file-{os.urandom(16).hex()}"
        mount = snaps.prepare(key, [parent.ref] if parent else [])
        try:
            target = snaps.fs(key).parent / "mnt"
            target.mkdir()
            with contextlib.ExitStack() as stack:
                roots: dict[int, Path | None] = {}
                for i, value in enumerate(inputs):
                    if i == 0:
                        continue  # the parent is the destination itself
                    if isinstance(value, ContextInput):
                        roots[i] = self._context_root(value.name)
                    elif isinstance(value, StepResult):
                        roots[i] = stack.enter_context(self._view(value))
                    else:
                        roots[i] = None
                dest = stack.enter_context(mounted(mount, target))
                if prev is None or plan is None:
                    self._apply_file_op(op, dest, roots, inputs, workdir)
                else:
                    top = self._apply_incremental(op, dest, roots, inputs, workdir, plan, prev)
            target.rmdir()
            if prev is not None and plan is not None:
                from layerkit.worker.copyreuse import link_unchanged

                linked = link_unchanged(prev, snaps.fs(key), plan, top[0], dest_existed=top[1])
                with self._lock:
                    self.copy_reuse.append((ctx.label, linked))
            if ctx.cancelled.is_set():
                raise ExecFailed("canceled")
            if plan is None:
                return self._commit(key)
            return self._commit_copy(key, plan, prev)
        except BaseException:
            with contextlib.suppress(Exception):
                snaps.remove(key)
            raise

    def _apply_incremental(
        self, op: FileOp, dest: Path, roots: Mapping[int, Path | None],
        inputs: Sequence[InputValue], workdir: str, plan: CopyPlan, prev: Previous,
    ) -> tuple[str, bool]:
        """The copy without the reusable files; returns the destination directory relative
        to the root and whether it existed before the copy."""
        from layerkit.snapshot.scope import resolve_in_root
        from layerkit.worker.copyreuse import SkipUnchanged

        top = resolve_in_root(dest, plan.dest, follow_final=True)
        existed = os.path.isdir(top)
        rules = self._hasher(next(v for v in inputs if isinstance(v, ContextInput)).name).rules
        self._apply_file_op(op, dest, roots, inputs, workdir,
                            ignore=SkipUnchanged(rules, prev))
        if existed and prev.skipped:
            # A full copy creates entries in an existing destination, which copies it up
            # into this layer; the links made later need it there too. chown to its own
            # owner is the smallest change that copies a directory up.
            st = os.lstat(top)
            os.chown(top, st.st_uid, st.st_gid, follow_symlinks=False)
        return os.path.relpath(top, dest), existed

    def _apply_file_op(self, op: FileOp, dest: Path, roots: Mapping[int, Path | None],
                       inputs: Sequence[InputValue], workdir: str,
                       ignore: IgnoreRules | None = None) -> None:
        from layerkit.context.dockerignore import parse_ignore_file
        from layerkit.fileops import apply_file_op

        context_inputs = [i for i, v in enumerate(inputs) if isinstance(v, ContextInput)]
        # One ignore rule set per op: a COPY reads from one context (main or named).
        if ignore is None:
            ignore = (self._hasher(inputs[context_inputs[0]].name).rules  # type: ignore[union-attr]
                      if context_inputs else parse_ignore_file("", "none"))
        apply_file_op(op, dest_root=dest, inputs=roots, ignore=ignore, epoch=self.epoch,
                      fetch=self._fetch, context_inputs=context_inputs, workdir=workdir)

    def _fetch(self, url: str) -> Path:
        """Download ``url`` once per build: ``checksum_url`` and the ADD share the file."""
        from layerkit.fileops import fetch_url

        with self._lock:
            path = self._downloads.get(url)
        if path is None or not path.exists():
            path = fetch_url(url)
            with self._lock:
                self._downloads[url] = path
        return path

    def checksum_url(self, url: str) -> str:
        import hashlib

        h = hashlib.sha256()
        with open(self._fetch(url), "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        return "sha256:" + h.hexdigest()

    def _commit_copy(self, key: str, plan: CopyPlan, prev: Previous | None) -> StepResult:
        """``_commit`` for a COPY that may be reused later: its source fingerprints are
        kept with the snapshot, and its layer tar copies the unchanged entries of the
        previous one (``prev``) instead of encoding them again."""
        from layerkit.worker import copyreuse

        copyreuse.record(self.store.snapshots.fs(key).parent, plan)
        reuse = copyreuse.layer_reuse(self.store.root, prev, plan) if prev else None
        result = self._commit(key, reuse=reuse,
                              entries_out=copyreuse.entries_path(self.store.root, plan))
        copyreuse.remember(self.store.root, plan, result.ref, result.meta["diff_id"])
        return result

    def _commit(self, key: str, *, reuse: LayerReuse | None = None,
                entries_out: Path | None = None) -> StepResult:
        """Diff the finished snapshot while its files are made durable, commit it, then
        publish its layer (worker/publish.py)."""
        from layerkit.worker.publish import diff_layer, publish_layer

        snaps = self.store.snapshots
        syncing = snaps.start_sync(key)
        try:
            diff = diff_layer(self.store, key, self.epoch, reuse,
                              record_entries=entries_out is not None)
        except BaseException:
            with contextlib.suppress(Exception):
                syncing.wait()
            raise
        try:
            sid = snaps.commit(key, syncing)
        except BaseException:
            diff.path.unlink(missing_ok=True)
            raise
        return StepResult(sid, publish_layer(self.store, diff, self.epoch, entries_out))


def _shown(op: ExecOp) -> str:
    """The command as the user wrote it (without the prepended shell)."""
    if len(op.args) >= 3 and op.args[-2] in ("-c", "/S /C", "/c"):
        return op.args[-1]
    return " ".join(op.args)


def _remove_tree(path: Path) -> None:
    from layerkit.snapshot.mount import remove_tree

    if path.exists():
        remove_tree(path)
