"""Turns a store root into its reference graph: what names what, and what is reachable.

Roots of the graph:

* **tagged images** (``images.db``): the config blob (the image id), the manifest
  blob when one is recorded, every layer blob (by diff_id) and the compressed
  variants of those layers that ``content-index.db`` knows;
* **key-store records** (``cache.db``): ``result.result.ref`` and every value of
  ``result.result.meta``. A value naming a committed snapshot references that
  snapshot *and all its ancestors*; a ``sha256:`` digest references that blob; a
  ``remote:<chainID>`` ref (a registry base or imported cache layer chain, fetched
  on demand) references the chain's snapshot when it is unpacked here, and is
  never missing: when it is not unpacked the worker fetches it again;
* **base-layer chains** (``worker.db`` table ``chains``): chainID → snapshot and
  its top layer's diff_id;
* **in-progress snapshots**: an uncommitted snapshot directory lists its
  parents in ``meta.json``; those parents are in use by a running step.

:func:`walk` only reads. It is the shared base of ``prune`` and (later)
``fsck``: each node carries what it needs but the store lacks (``missing``).
Reading the walk must happen under the exclusive ``gc`` lock to be exact;
without the lock it is a best-effort view (``du`` uses it that way).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from layerkit.fastclass import dataclass, field
from layerkit.store.paths import StorePaths

MARKER = "committed"  # snapshot/snapshotter.py: only a directory with it is a snapshot
REMOTE_PREFIX = "remote:"  # worker/baseimage.py: a result that is a layer chain
WORKER_DB = "worker.db"  # worker/store.py: tables ``chains`` and ``path_sums``
CONTENT_INDEX_DB = "content-index.db"

_HEX = frozenset("0123456789abcdef")


def is_digest(value: object) -> bool:
    if not isinstance(value, str) or not value.startswith("sha256:"):
        return False
    hexpart = value[7:]
    return len(hexpart) == 64 and set(hexpart) <= _HEX


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """containerd chainIDs of a layer stack: ``chain(n) = sha256(chain(n-1) + " " + diff(n))``."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            text = f"{out[-1]} {diff_id}".encode()
            out.append(f"sha256:{hashlib.sha256(text).hexdigest()}")
    return out


@dataclass(frozen=True)
class ImageNode:
    """A tagged image and the blobs it pins."""

    name: str
    image_id: str
    manifest: str | None
    diff_ids: tuple[str, ...]
    blobs: frozenset[str]  # everything of the image that is present in the store
    missing: tuple[str, ...]  # config or layers the image needs but the store lacks
    created: str | None = None  # config "created"


@dataclass(frozen=True)
class RecordNode:
    """One key-store record and what its result names."""

    key: str
    last_used: float
    snapshots: tuple[str, ...]  # committed snapshot named by the result (stack not expanded)
    blobs: frozenset[str]  # blobs named by the result that are present
    missing: tuple[str, ...]  # named snapshots / blobs that are gone: the record is broken
    has_result: bool  # False: a step that produced no filesystem result


@dataclass(frozen=True)
class ChainNode:
    """A base-image layer stack unpacked into a snapshot (worker.db ``chains``)."""

    chain_id: str
    snapshot: str
    diff_id: str


@dataclass(frozen=True)
class Reachable:
    snapshots: frozenset[str]
    blobs: frozenset[str]


@dataclass(frozen=True)
class StoreGraph:
    """Everything :func:`walk` found under one root."""

    paths: StorePaths
    images: tuple[ImageNode, ...]
    records: tuple[RecordNode, ...]
    chains: tuple[ChainNode, ...]
    snapshots: Mapping[str, tuple[str, ...]]  # committed id -> stack (ancestors first, self last)
    active_parents: frozenset[str]  # committed snapshots under an in-progress snapshot
    blobs: frozenset[str]  # every blob on disk
    compressed: Mapping[str, frozenset[str]] = field(default_factory=dict)  # diff_id -> variants

    @property
    def pinned_blobs(self) -> frozenset[str]:
        """Blobs a tagged image needs: always kept by prune."""
        out: set[str] = set()
        for image in self.images:
            out |= image.blobs
        return frozenset(out)

    @property
    def image_chain_ids(self) -> frozenset[str]:
        return frozenset(c for image in self.images for c in chain_ids(image.diff_ids))

    def stack(self, sid: str) -> tuple[str, ...]:
        return self.snapshots.get(sid, ())

    def reachable(
        self, records: Iterable[RecordNode], chains: Iterable[ChainNode] = ()
    ) -> Reachable:
        """What the tagged images, the given records and chains and running steps hold."""
        snaps: set[str] = set()
        blobs: set[str] = set(self.pinned_blobs)
        for sid in self.active_parents:
            snaps.update(self.stack(sid) or (sid,))
        for rec in records:
            for sid in rec.snapshots:
                snaps.update(self.stack(sid))
            blobs |= rec.blobs
        for chain in chains:
            snaps.update(self.stack(chain.snapshot))
        # A kept chain snapshot keeps its layer blob: the worker reuses both together.
        blobs.update(c.diff_id for c in self.chains if c.snapshot in snaps)
        # A kept layer keeps the compressed copies an export or push would reuse.
        for diff_id in list(blobs):
            blobs |= self.compressed.get(diff_id, frozenset())
        return Reachable(frozenset(snaps), frozenset(blobs & self.blobs))


# -- reading the store ---------------------------------------------------------------


@contextlib.contextmanager
def _sqlite_ro(path: Path) -> Iterator[sqlite3.Connection | None]:
    """A read connection, or None when the database does not exist or is unreadable."""
    if not path.is_file():
        yield None
        return
    try:
        conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    except sqlite3.Error:
        yield None
        return
    try:
        conn.execute("PRAGMA busy_timeout=60000")
        yield conn
    finally:
        conn.close()


def read_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with _sqlite_ro(path) as conn:
        if conn is None:
            return []
        try:
            return list(conn.execute(sql).fetchall())
        except sqlite3.Error:  # table absent (older store) or corrupt: nothing to read
            return []


def _blobs_on_disk(paths: StorePaths) -> frozenset[str]:
    try:
        with os.scandir(paths.blobs) as entries:
            return frozenset(
                f"sha256:{e.name}" for e in entries
                if len(e.name) == 64 and set(e.name) <= _HEX and e.is_file(follow_symlinks=False)
            )
    except FileNotFoundError:
        return frozenset()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _snapshots(paths: StorePaths) -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    committed: dict[str, tuple[str, ...]] = {}
    active: set[str] = set()
    try:
        entries = sorted(paths.snapshots.iterdir())
    except FileNotFoundError:
        return committed, frozenset()
    for path in entries:
        if path.name.startswith(".") or path.name.startswith("flat-") or not path.is_dir():
            continue
        marker = _read_json(path / MARKER)
        if isinstance(marker, dict):
            parents = [str(p) for p in marker.get("parents") or []]
            committed[path.name] = (*parents, path.name)
            continue
        # Not committed: an in-progress step (or garbage). Its parents are in use.
        meta = _read_json(path / "meta.json")
        if isinstance(meta, dict):
            active.update(str(p) for p in meta.get("parents") or [])
    return committed, frozenset(active)


def _image_nodes(paths: StorePaths, blobs: frozenset[str]) -> list[ImageNode]:
    rows = read_rows(paths.images_db,
                 "SELECT name, config_digest, manifest_digest FROM images ORDER BY name")
    nodes: list[ImageNode] = []
    for name, config_digest, manifest_digest in rows:
        diff_ids: tuple[str, ...] = ()
        created: str | None = None
        present: set[str] = set()
        missing: list[str] = []
        if config_digest in blobs:
            present.add(config_digest)
            config = _read_json(paths.blobs / str(config_digest).removeprefix("sha256:"))
            if isinstance(config, dict):
                rootfs = config.get("rootfs") or {}
                diff_ids = tuple(str(d) for d in rootfs.get("diff_ids") or [] if is_digest(d))
                created = config.get("created") if isinstance(config.get("created"), str) else None
        else:
            missing.append(str(config_digest))
        if manifest_digest and manifest_digest in blobs:
            present.add(manifest_digest)
        for diff_id in diff_ids:
            (present.add(diff_id) if diff_id in blobs else missing.append(diff_id))
        nodes.append(ImageNode(str(name), str(config_digest), manifest_digest, diff_ids,
                               frozenset(present), tuple(missing), created))
    return nodes


# The result fields the worker names content with (worker/local.py, has_result):
# ``ref`` a committed snapshot, ``meta["diff_id"]`` its layer blob, ``meta["image"]``
# a base image's config blob. A record missing any of them is a miss (broken).
_CHECKED_META = ("diff_id", "image")


def _result_of(record: Any) -> Mapping[str, Any] | None:
    inner = record.get("result") if isinstance(record, Mapping) else None
    return inner if isinstance(inner, Mapping) else None


def _config_diff_ids(paths: StorePaths, config_digest: str) -> list[str]:
    config = _read_json(paths.blobs / config_digest.removeprefix("sha256:"))
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    return [str(d) for d in ids or [] if is_digest(d)]


def _record_nodes(
    paths: StorePaths, snapshots: Mapping[str, tuple[str, ...]], blobs: frozenset[str],
    chains: Mapping[str, str],
) -> list[RecordNode]:
    rows = read_rows(paths.cache_db, "SELECT key, result, last_used FROM steps")
    nodes: list[RecordNode] = []
    for key, raw, last_used in rows:
        try:
            inner = _result_of(json.loads(raw))
        except (TypeError, ValueError):
            inner = None
        snaps: list[str] = []
        named: set[str] = set()
        missing: list[str] = []
        if inner is not None:
            ref = inner.get("ref")
            if isinstance(ref, str) and ref.startswith(REMOTE_PREFIX):
                unpacked = chains.get(ref.removeprefix(REMOTE_PREFIX))
                if unpacked in snapshots:
                    snaps.append(str(unpacked))
            elif isinstance(ref, str) and ref:
                (snaps.append(ref) if ref in snapshots else missing.append(ref))
            meta = inner.get("meta")
            for name, value in (meta.items() if isinstance(meta, Mapping) else ()):
                if not is_digest(value):
                    continue
                if value in blobs:
                    named.add(value)
                    if name == "image":  # a base image config keeps its layers
                        named.update(d for d in _config_diff_ids(paths, value) if d in blobs)
                elif name in _CHECKED_META:
                    missing.append(value)
                # other digests (e.g. a local context's checksum) name no blob
        nodes.append(RecordNode(str(key), float(last_used), tuple(snaps), frozenset(named),
                                tuple(missing), inner is not None))
    return nodes


def _chain_nodes(paths: StorePaths) -> list[ChainNode]:
    rows = read_rows(paths.root / WORKER_DB, "SELECT chain_id, snapshot, diff_id FROM chains")
    return [ChainNode(str(c), str(s), str(d)) for c, s, d in rows]


def _compressed(paths: StorePaths) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for diff_id, digest in read_rows(paths.root / CONTENT_INDEX_DB,
                                 "SELECT diff_id, digest FROM compressed"):
        out.setdefault(str(diff_id), set()).add(str(digest))
    return {k: frozenset(v) for k, v in out.items()}


def walk(root: Path) -> StoreGraph:
    """Read every reference in the store at ``root`` (see the module docstring)."""
    paths = StorePaths(Path(root))
    blobs = _blobs_on_disk(paths)
    snapshots, active = _snapshots(paths)
    chains = _chain_nodes(paths)
    unpacked = {c.chain_id: c.snapshot for c in chains}
    return StoreGraph(
        paths=paths,
        images=tuple(_image_nodes(paths, blobs)),
        records=tuple(_record_nodes(paths, snapshots, blobs, unpacked)),
        chains=tuple(chains),
        snapshots=snapshots,
        active_parents=active,
        blobs=blobs,
        compressed=_compressed(paths),
    )
