"""The no-op rebuild fast path: a memo from "everything the build read" to its result.

A no-op rebuild should cost little more than Python start-up plus one ``stat`` per
context file. The full path (parse, frontend, solver, key probes) is correct but pays
imports and work before it can say "all CACHED". So, after every successful build,
we record a *fingerprint* of its inputs and the outcome a rebuild would report. The
next ``layerkit build`` computes the same fingerprint with ``os.scandir``, the stat
cache and a few SQLite reads; when it matches and every result
it names is still in the store, the outcome is replayed (every step CACHED, as the
solver would report it) and the image is re-tagged.

The fingerprint covers, conservatively:

- the layerkit version and this memo's schema;
- the Dockerfile's bytes and its absolute path, the context's absolute path;
- every option that can change keys or results (tags, build args with their values,
  target, platform, network), and ``SOURCE_DATE_EPOCH``;
- the ``.dockerignore`` files' bytes, and the content digest of the whole visible
  context (names, modes, link targets, xattrs and file contents, as ``COPY . .``
  would key it), taken from the persistent stat cache: an unchanged file costs one
  ``stat``, a touched or just-written one is read again (so ``touch`` still hits).
  When no entry's stat identity changed since an earlier build computed that digest
  (and its newest change was older than the stat cache's racy window then), the
  digest is taken from that build's record without loading the stat cache;
- every row of the image index except the build's own tags (a re-tagged base misses).

It is only an optimisation: anything it cannot vouch for falls back to the full
path. Builds with outputs, pushes, remote caches, ``--pull``, ``--no-cache``, secrets,
ssh or named contexts never use it, nor do Dockerfiles that ADD from a URL or git
(the full path checks those sources every build). A record is used only if the
image's blobs, every step's snapshot and every key-store record it names still
exist.

The full path reuses the capture's :class:`~layerkit.context.checksum.ContextHasher`,
so the fingerprint describes exactly the context snapshot the build's COPY keys were
computed from, and the context is walked once per build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from layerkit import __version__
from layerkit.fastclass import dataclass, field
from layerkit.worker.options import BuildOptions
from layerkit.worker.store import blob_exists, default_root, snapshot_committed

if TYPE_CHECKING:
    from layerkit.context.checksum import ContextHasher

MEMO_SCHEMA = "layerkit.memo.v2"
_REMOTE = "remote:"  # a layer-chain result (worker.local.REMOTE_PREFIX)
# ADD <url> and ADD <git> are checked against their source by the full path every build.
_ADD_LINE = re.compile(rb"(?im)^[ \t]*(?:onbuild[ \t]+)?add[ \t]")
_REMOTE_SOURCE = re.compile(rb"(?i)https?://|git@|\.git\b")
_BUSY_TIMEOUT_S = 30.0
# Set to any value to always take the full path (tests compare the two).
DISABLE_ENV = "LAYERKIT_NO_FASTPATH"
# Names a file that gets one line per build answered from the memo (for tests).
TRACE_ENV = "LAYERKIT_MEMO_TRACE"


@dataclass
class Capture:
    """What a build saw of its inputs when it started."""

    root: Path
    inputs_digest: str  # everything but the image index
    # The context as checksummed for the fingerprint: the full path keys COPY with it.
    hasher: ContextHasher = field(compare=False, repr=False)
    # Everything but the context and the image index: what lowering the Dockerfile
    # depends on (with the index), so a lowered build is kept under it (see below).
    plan_digest: str = ""
    # A lowered build kept by an earlier build with the same plan_digest and image
    # index (worker/session.py checks its bases before using it); None: lower afresh.
    lowered: Any = field(default=None, compare=False, repr=False)

    def close(self) -> None:
        self.hasher.close()


@dataclass(frozen=True)
class Replayed:
    """A build answered from the memo."""

    image_id: str
    manifest_digest: str | None
    names: tuple[str, ...]
    metadata: Mapping[str, Any]


def eligible(options: BuildOptions) -> bool:
    return not (
        options.outputs or options.push or options.cache_from or options.cache_to
        or options.pull or options.no_cache or options.no_cache_filter or options.secrets
        or options.ssh or options.build_contexts
    )


def root_of(options: BuildOptions) -> Path:
    return Path(options.root).absolute() if options.root else default_root().absolute()


def capture(options: BuildOptions, memo_db: sqlite3.Connection | None = None) -> Capture | None:
    """Fingerprint the inputs (not the image index); None when not eligible or unreadable.

    ``memo_db``: an open memo.db connection to use (else one is opened if needed).
    The caller owns the result and must ``close()`` it (or hand its hasher on)."""
    if not eligible(options):
        return None
    try:
        return _capture(options, memo_db)
    except (OSError, ValueError):
        return None
    except Exception as exc:  # a bad .dockerignore etc.: the full path reports it
        from layerkit.errors import LayerkitError

        if isinstance(exc, LayerkitError):
            return None
        raise


def _capture(options: BuildOptions, memo_db: sqlite3.Connection | None) -> Capture:
    from layerkit.context.checksum import ContextHasher
    from layerkit.context.dockerignore import load_ignore_rules

    context = Path(options.context).absolute()
    dockerfile = (Path(options.file) if options.file else context / "Dockerfile").absolute()
    text = dockerfile.read_bytes()
    if _ADD_LINE.search(text) and _REMOTE_SOURCE.search(text):
        raise ValueError("ADD from a URL or git: the full path checks the source")
    h = hashlib.sha256()
    _feed(h, MEMO_SCHEMA, __version__, str(context), str(dockerfile))
    _feed(h, hashlib.sha256(text).hexdigest())
    for ignore in (context / ".dockerignore", Path(f"{dockerfile}.dockerignore")):
        _feed(h, str(ignore), _file_digest(ignore))
    _feed(h, json.dumps(_option_inputs(options), sort_keys=True))
    plan = h.copy()
    _feed(plan, _lowering_code_stamp())
    root = root_of(options)
    hasher = ContextHasher(context, load_ignore_rules(context, dockerfile), root / "statcache")
    try:
        _feed(h, _context_digest(root, h.hexdigest(), hasher, memo_db))
    except BaseException:
        hasher.close()
        raise
    return Capture(root, h.hexdigest(), hasher, plan.hexdigest())


def _context_digest(root: Path, inputs: str, hasher: ContextHasher,
                    memo_db: sqlite3.Connection | None) -> str:
    """The content digest of the whole visible context, as ``COPY . .`` keys it.

    An unchanged context is answered from the stat fingerprint of its entries (one
    ``stat`` each, taken by the walk) mapped to the content digest an earlier build
    computed; otherwise the digest is computed from the stat cache and the files, and
    the mapping is recorded once the newest change is older than the racy window."""
    from layerkit.context.statcache import RACY_WINDOW_NS

    stats, newest = hasher.stat_fingerprint()
    key = _combine(inputs, stats)
    known = _known_context(root, key, memo_db)
    if known is not None:
        trace("stat fingerprint hit")
        return known
    digest = hasher.checksum_sources(["."]).digest
    if time.time_ns() - newest >= RACY_WINDOW_NS:
        _remember_context(root, key, digest, memo_db)
    return digest


@contextlib.contextmanager
def _memo_conn(root: Path, conn: sqlite3.Connection | None) -> Iterator[sqlite3.Connection]:
    """``conn`` when the caller has one open, else a connection of our own."""
    if conn is not None:
        yield conn
        return
    own = _memo_db(root)
    try:
        yield own
    finally:
        own.close()


def _known_context(root: Path, key: str, memo_db: sqlite3.Connection | None) -> str | None:
    if memo_db is None and not (root / "memo.db").exists():
        return None
    try:
        with _memo_conn(root, memo_db) as conn:
            row = conn.execute("SELECT digest FROM contexts WHERE stats=?", (key,)).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row is not None and isinstance(row[0], str) else None


def _remember_context(root: Path, key: str, digest: str,
                      memo_db: sqlite3.Connection | None) -> None:
    try:
        with _memo_conn(root, memo_db) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT OR REPLACE INTO contexts VALUES (?, ?, ?)",
                             (key, digest, time.time()))
                _trim(conn, "contexts")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")  # a shared connection stays usable
                raise
    except (OSError, sqlite3.Error):
        pass  # an optimisation: the next build computes the digest again


_CODE_STAMP: list[str] = []


def _lowering_code_stamp() -> str:
    """Identity of the code that lowers a Dockerfile (name, size, mtime of every module
    of the parser, frontend, graph and solver): a kept lowered build is only valid for
    the code that made it, even between two edits of an editable install."""
    if not _CODE_STAMP:
        package = Path(__file__).resolve().parent.parent
        h = hashlib.sha256()
        for sub in ("dockerfile", "frontend", "graph", "solver"):
            with os.scandir(package / sub) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    if entry.name.endswith(".py"):
                        s = entry.stat()
                        _feed(h, sub, entry.name, str(s.st_size), str(s.st_mtime_ns))
        _CODE_STAMP.append(h.hexdigest())
    return _CODE_STAMP[0]


def _option_inputs(options: BuildOptions) -> dict[str, Any]:
    args = {k: (v if v is not None else os.environ.get(k)) for k, v in options.build_args.items()}
    return {
        "tags": sorted(options.tags), "build_args": args, "target": options.target,
        "platform": options.platform, "network": options.network,
        "epoch": os.environ.get("SOURCE_DATE_EPOCH"),
        "runtime": os.environ.get("LAYERKIT_RUNTIME"),
        "snapshotter": os.environ.get("LAYERKIT_SNAPSHOTTER"),
    }


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return "-"


def _feed(h: Any, *parts: str) -> None:
    for part in parts:
        data = part.encode("utf-8", "surrogateescape")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)


def _images_digest(root: Path, own_names: Iterable[str]) -> str:
    """Every image-index row but the build's own tags (which it rewrites itself)."""
    own = set(own_names)
    h = hashlib.sha256()
    path = root / "images.db"
    if not path.exists():
        return "-"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT_S)
    try:
        rows = conn.execute(
            "SELECT name, config_digest, manifest_digest FROM images ORDER BY name"
        ).fetchall()
    finally:
        conn.close()
    for name, config, manifest in rows:
        if name not in own:
            _feed(h, name, config, manifest or "")
    return h.hexdigest()


def _memo_db(root: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(root / "memo.db", timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # an optimisation: a lost row is a miss
    conn.execute(
        "CREATE TABLE IF NOT EXISTS memo (fingerprint TEXT PRIMARY KEY, payload TEXT NOT NULL,"
        " created REAL NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS lowered (plan TEXT PRIMARY KEY, build BLOB NOT NULL,"
        " created REAL NOT NULL)"
    )
    # A context's stat fingerprint (with the other inputs) -> its content digest.
    conn.execute(
        "CREATE TABLE IF NOT EXISTS contexts (stats TEXT PRIMARY KEY, digest TEXT NOT NULL,"
        " created REAL NOT NULL)"
    )
    return conn


_KEEP_ROWS = 512  # per table: the most recent builds' answers are the useful ones


def _trim(conn: sqlite3.Connection, table: str) -> None:
    conn.execute(f"DELETE FROM {table} WHERE rowid NOT IN (SELECT rowid FROM {table}"
                 f" ORDER BY created DESC LIMIT {_KEEP_ROWS})")


def record(
    cap: Capture | None,
    *,
    names: Sequence[str],
    image_id: str,
    manifest_digest: str | None,
    steps: Sequence[Mapping[str, Any]],
    labels: Mapping[int, tuple[str, str, int]],
    results: Sequence[tuple[str, str, Sequence[str]]],
    layer_blobs: Sequence[str],
    lowered: Any = None,
) -> None:
    """Remember a finished build (called by the full path after tagging).

    ``steps`` are the metadata step entries; ``labels`` maps a step number to its
    progress label, stage and index; ``results`` lists ``(key, snapshot id, blobs)``
    of every numbered step (the blobs its result names: layer, base config);
    ``layer_blobs`` the image's layer diff_ids; ``lowered`` the lowered build, kept
    for the next build with the same Dockerfile, options and image index.
    """
    if cap is None:
        return
    try:
        images = _images_digest(cap.root, names)
        fingerprint = _combine(cap.inputs_digest, images)
        payload = {
            "image_id": image_id, "manifest_digest": manifest_digest, "names": list(names),
            "steps": [_as_cached(s) for s in steps],
            "labels": {str(n): list(v) for n, v in labels.items()},
            "results": [[k, ref, list(blobs)] for k, ref, blobs in results],
            "layer_blobs": list(layer_blobs),
        }
        conn = _memo_db(cap.root)
        try:
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR REPLACE INTO memo VALUES (?, ?, ?)",
                         (fingerprint, json.dumps(payload), now))
            if lowered is not None and cap.plan_digest:
                import pickle

                conn.execute("INSERT OR REPLACE INTO lowered VALUES (?, ?, ?)",
                             (_combine(cap.plan_digest, images),
                              pickle.dumps(lowered, protocol=pickle.HIGHEST_PROTOCOL), now))
                _trim(conn, "lowered")
            _trim(conn, "memo")
            conn.execute("COMMIT")
        finally:
            conn.close()
    except (OSError, sqlite3.Error, TypeError, ValueError, AttributeError):
        pass  # the memo is an optimisation; a build never fails because of it


def _fingerprint(cap: Capture, names: Iterable[str]) -> str:
    return _combine(cap.inputs_digest, _images_digest(cap.root, names))


def _combine(inputs: str, images: str) -> str:
    return hashlib.sha256(f"{inputs}\n{images}".encode()).hexdigest()


def _as_cached(step: Mapping[str, Any]) -> dict[str, Any]:
    """How the step reads in a rebuild where nothing changed."""
    out = dict(step)
    if out.get("number") is not None:
        out.update(status="cached", reason="", duration_s=0.0, source="local cache")
    return out


def replay(options: BuildOptions, stream: TextIO) -> Replayed | None:
    """Answer a CLI build from the memo, or None to take the full path."""
    replayed, cap = lookup(options, stream)
    if cap is not None:
        cap.close()
    return replayed


def lookup(options: BuildOptions, stream: TextIO) -> tuple[Replayed | None, Capture | None]:
    """Answer a CLI build from the memo; on a miss, also return the capture, which
    ``run_build(options, capture=...)`` reuses (its context walk and checksums)."""
    from layerkit.worker.cleanup import clean_leftovers

    root = root_of(options)
    clean_leftovers(root)  # a killed build's mounts and containers
    if os.environ.get(DISABLE_ENV):
        return None, None
    conn = None
    if (root / "memo.db").exists():
        with contextlib.suppress(sqlite3.Error):
            conn = _memo_db(root)  # one connection for the context record and the memo
    try:
        cap = capture(options, conn)
        if cap is None or conn is None:
            return None, cap
        names = tuple(dict.fromkeys(_normalize_tag(t) for t in options.tags))
        try:
            images = _images_digest(cap.root, names)
            row = conn.execute("SELECT payload FROM memo WHERE fingerprint=?",
                               (_combine(cap.inputs_digest, images),)).fetchone()
            if row is None or not _still_valid(cap.root, json.loads(row[0])):
                cap.lowered = _kept_lowered(conn, _combine(cap.plan_digest, images))
                return None, cap
        except (OSError, sqlite3.Error, ValueError, KeyError):
            return None, cap
    finally:
        if conn is not None:
            conn.close()
    try:
        payload = json.loads(row[0])
        _touch_and_tag(cap.root, payload, names)
    except (OSError, sqlite3.Error, ValueError, KeyError):
        return None, cap
    cap.close()  # flushes the stat cache rows a touched file produced
    _render(options.progress, stream, payload)
    trace(f"hit {payload['image_id']}")
    metadata: dict[str, Any] = {
        "containerimage.config.digest": payload["image_id"],
        "containerimage.digest": payload["manifest_digest"],
    }
    if names:
        metadata["image.name"] = ",".join(names)
    metadata["steps"] = payload["steps"]
    if options.metadata_file:
        Path(options.metadata_file).write_text(json.dumps(metadata, indent=2) + "\n")
    return Replayed(payload["image_id"], payload["manifest_digest"], names, metadata), None


def trace(line: str) -> None:
    """One line to ``$LAYERKIT_MEMO_TRACE`` (tests see which shortcut answered)."""
    path = os.environ.get(TRACE_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def _kept_lowered(conn: sqlite3.Connection, plan: str) -> Any:
    """The lowered build an earlier build kept for these inputs, or None."""
    row = conn.execute("SELECT build FROM lowered WHERE plan=?", (plan,)).fetchone()
    if row is None:
        return None
    import pickle

    try:
        return pickle.loads(row[0])
    except Exception:  # written by other code (pickles are only as stable as classes)
        return None


def _normalize_tag(tag: str) -> str:
    from layerkit.worker.session import normalize_tag

    return normalize_tag(tag)


def _still_valid(root: Path, payload: Mapping[str, Any]) -> bool:
    blobs = [payload["image_id"], *payload["layer_blobs"]]
    if not all(blob_exists(root, b) for b in blobs):
        return False
    refs = [ref for _, ref, _ in payload["results"] if ref]
    local = [ref for ref in refs if not ref.startswith(_REMOTE)]
    if not all(snapshot_committed(root, sid) for sid in local):
        return False
    chains = [ref.removeprefix(_REMOTE) for ref in refs if ref.startswith(_REMOTE)]
    if chains and not _chains_unpacked(root, chains):
        return False
    if not all(blob_exists(root, d) for _, _, blobs in payload["results"] for d in blobs):
        return False
    keys = sorted({k for k, _, _ in payload["results"]})
    if not keys:
        return True
    conn = sqlite3.connect(f"file:{root / 'cache.db'}?mode=ro", uri=True,
                           timeout=_BUSY_TIMEOUT_S)
    try:
        marks = ",".join("?" * len(keys))
        found = conn.execute(f"SELECT COUNT(*) FROM steps WHERE key IN ({marks})",
                             keys).fetchone()[0]
    finally:
        conn.close()
    return int(found) == len(keys)


def _chains_unpacked(root: Path, chains: Sequence[str]) -> bool:
    """A ``remote:<chainID>`` result (a registry base) is usable offline once its layer
    stack is unpacked here (the worker's ``has_result`` rule); otherwise only the full
    path, which may reach the registry, can tell."""
    path = root / "worker.db"
    if not path.exists():
        return False
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT_S)
    try:
        for chain in chains:
            row = conn.execute("SELECT snapshot, diff_id FROM chains WHERE chain_id=?",
                               (chain,)).fetchone()
            if row is None or not snapshot_committed(root, row[0]) or not blob_exists(
                    root, row[1]):
                return False
    finally:
        conn.close()
    return True


def _touch_and_tag(root: Path, payload: Mapping[str, Any], names: Sequence[str]) -> None:
    """What the full path would write: last-used times (for prune) and the tags."""
    keys = sorted({k for k, _, _ in payload["results"]})
    now = time.time()
    conn = sqlite3.connect(root / "cache.db", timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
        if keys:
            marks = ",".join("?" * len(keys))
            conn.execute(f"UPDATE steps SET last_used=? WHERE key IN ({marks})", [now, *keys])
    finally:
        conn.close()
    if names:
        from layerkit.content.images import ImageIndex

        with ImageIndex(root) as index:
            for name in names:
                current = index.get(name)
                if current is None or current.config_digest != payload["image_id"]:
                    index.tag(name, payload["image_id"], payload["manifest_digest"])


def _render(mode: str, stream: TextIO, payload: Mapping[str, Any]) -> None:
    from layerkit.progress import make_renderer
    from layerkit.progress.events import BuildDone, StepCached, StepStarted

    renderer = make_renderer(mode, stream)
    started = time.monotonic()
    numbers = sorted(int(n) for n in payload["labels"])
    try:
        for number in numbers:
            label, stage, index = payload["labels"][str(number)]
            renderer.emit(StepStarted(number, label, stage, int(index)))
            renderer.emit(StepCached(number, "local cache"))
        renderer.emit(BuildDone(True, time.monotonic() - started, len(numbers), len(numbers)))
    finally:
        renderer.close()
