"""Base images: a FROM (or ``--from``) reference → a resolved image and its unpacked layers.

Where an image can come from, in order:

1. ``scratch`` (handled by the solver: no filesystem);
2. a ``--build-context NAME=…`` whose name matches: an OCI layout directory
   (``oci-layout://DIR[:TAG]``, its blobs imported into the content store) or a
   local directory (its files become the filesystem; its digest is the content
   checksum of the directory, so edits invalidate what uses it);
3. the local image store (names as ``layerkit load`` or ``-t`` recorded them,
   or an image id), then registry images an earlier build resolved (their
   manifest and config are kept, so a known base builds offline);
4. otherwise the registry (``--pull`` goes there first): the tag is resolved to
   a manifest for the build platform and its config fetched; the cache key uses
   the config digest; the layers stay remote (``remote:<chainID>``) until a
   step or an output needs them, then they are named in the image store.

Layers are unpacked into a chain of snapshots keyed by containerd's chainID
(``chain(n) = sha256(chain(n-1) + " " + diff_id(n))``), recorded in
``worker.db`` so every build (and every process) shares one unpacked copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerkit.errors import BuildError
from layerkit.fastclass import dataclass
from layerkit.solver.imageconfig import ImageConfig
from layerkit.solver.worker import BaseState, StepResult
from layerkit.worker.specs import NamedContext
from layerkit.worker.store import Store

if TYPE_CHECKING:
    from layerkit.cache.remote.layers import RemoteLayer
    from layerkit.worker.remote import RemoteAccess

REMOTE_PREFIX = "remote:"  # layerkit.cache.remote.layers.REMOTE_PREFIX (not imported: cost)

__all__ = ["BaseImages", "ResolvedImage", "chain_ids"]

_OCI_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json")
_REF_NAME = "org.opencontainers.image.ref.name"


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """containerd's chainIDs: the identity of each layer stack, bottom first."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


@dataclass(frozen=True)
class ResolvedImage:
    """What a base reference resolved to. ``config_digest`` is the image id."""

    ref: str
    digest: str  # what enters the cache key: manifest or config digest, or a content sum
    config_digest: str
    diff_ids: tuple[str, ...]
    config: ImageConfig
    history_len: int
    layout: Path | None = None  # oci-layout: where the layer blobs still are
    layer_blobs: tuple[str, ...] = ()  # oci-layout: compressed blob digests
    local_dir: Path | None = None  # named local context
    remote_layers: tuple[RemoteLayer, ...] = ()  # a registry image: its layers, lazily


def candidate_names(ref: str) -> list[str]:
    """The names ``ref`` may be stored under: as given, ``name:latest``, fully qualified."""
    names = [ref]
    if "@" in ref:
        return names
    slash, colon = ref.rfind("/"), ref.rfind(":")
    tagged = ref if colon > slash else f"{ref}:latest"
    names.append(tagged)
    first, _, rest = tagged.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        path = tagged if rest else f"library/{tagged}"
        names.append(f"docker.io/{path}")
    if tagged.startswith("docker.io/"):
        short = tagged.removeprefix("docker.io/").removeprefix("library/")
        names.append(short)
    return list(dict.fromkeys(names))


def _not_local(ref: str) -> BuildError:
    return BuildError(
        f"base image {ref!r} is not in the local image store, and pulling from registries "
        "is not supported yet",
        hint=(f"get it in first: `docker save {ref} -o image.tar` (or `skopeo copy "
              f"docker://{ref} docker-archive:image.tar`) then `layerkit load -i image.tar`; "
              f"or pass --build-context {ref.split(':')[0].split('/')[-1]}=oci-layout://DIR"),
        reference="image-not-found",
    )


class BaseImages:
    """Resolves base references and unpacks their layers into snapshots (thread-safe)."""

    def __init__(self, store: Store, contexts: Mapping[str, NamedContext],
                 platform: str, *, access: RemoteAccess | None = None,
                 refresh: bool = False) -> None:
        self.store = store
        self.contexts = contexts
        self.platform = platform
        self.access = access  # None: the local store is the only source
        self.refresh = refresh  # --pull: ask the registry even if the store has the image
        self.resolved: dict[str, ResolvedImage] = {}
        self.pulled: dict[str, tuple[str, str]] = {}  # config → (reference, manifest)
        self._lock = threading.Lock()

    # -- resolution (metadata only) --------------------------------------------------

    def resolve(self, ref: str, platform: str) -> ResolvedImage:
        with self._lock:  # stages resolve in parallel: one pull per reference
            return self._resolve(ref, platform)

    def _resolve(self, ref: str, platform: str) -> ResolvedImage:
        if ref in self.resolved:
            return self.resolved[ref]
        named = self.contexts.get(ref.lower())
        if named is not None and named.kind == "oci-layout":
            img = self._from_layout(ref, named, platform or self.platform)
        elif named is not None:
            img = self._from_dir(ref, named)
        else:
            img = self._from_store(ref, platform or self.platform)
        self.resolved[ref] = img
        return img

    def base_state(self, ref: str, platform: str) -> BaseState:
        img = self.resolve(ref, platform)
        return BaseState(ref, img.digest, img.config, platform)

    def _from_store(self, ref: str, platform: str) -> ResolvedImage:
        from layerkit.content.errors import ContentError

        record = None
        for name in () if self.refresh else candidate_names(ref):
            try:
                record = self.store.images.resolve(name)
                break
            except ContentError as e:
                if e.reference == "image-ambiguous":
                    raise
        if record is None or self.refresh:
            known = None if self.refresh else self._known_pull(ref, platform)
            return known if known is not None else self._pull(ref, platform)
        raw = self.store.content.read_bytes(record.config_digest)
        doc = json.loads(raw)
        _check_platform(ref, doc, platform)
        diff_ids = tuple(doc.get("rootfs", {}).get("diff_ids") or ())
        return ResolvedImage(ref, record.config_digest, record.config_digest, diff_ids,
                             ImageConfig.from_oci(doc), len(doc.get("history") or ()))

    def _pull(self, ref: str, platform: str) -> ResolvedImage:
        """The registry: resolve ``ref`` to a manifest for ``platform`` and fetch its config
        (documents only; the layers become a ``remote:`` chain fetched when a step or an
        output needs them). The manifest digest is recorded in ``worker.db`` so later
        builds resolve the same image offline, until ``--pull``.
        ``LAYERKIT_NO_PULL=1`` turns it off (the store is then the only source)."""
        import os

        if os.environ.get("LAYERKIT_NO_PULL") or self.access is None:
            raise _not_local(ref)
        from layerkit.content.oci import ImageIndex
        from layerkit.errors import LayerkitError
        from layerkit.registry.platforms import select_manifest
        from layerkit.registry.reference import parse_reference

        content = self.store.content
        try:
            reference = parse_reference(ref)
            client = self.access.client()
            fetched = client.get_manifest(reference)
            for _ in range(3):  # an index may point at another index, but not forever
                if fetched.media_type not in _OCI_INDEX_TYPES:
                    break
                chosen = select_manifest(ImageIndex.from_json(fetched.data),
                                         platform or None, what=str(reference))
                fetched = client.get_manifest(reference.with_digest(chosen.digest))
            manifest = json.loads(fetched.data)
            config_desc = manifest["config"]
            with content.lease():
                if not content.has(fetched.digest):
                    content.write_bytes(fetched.data, expected_digest=fetched.digest)
                if not content.has(config_desc["digest"]):
                    client.fetch_blob(reference, config_desc["digest"],
                                      int(config_desc.get("size") or 0) or None, content)
            self.store.record_pulled(str(reference), platform, fetched.digest,
                                     config_desc["digest"])
            return self._lazy(ref, reference, fetched.digest, platform)
        except LayerkitError as e:
            raise BuildError(
                f"base image {ref!r} is not in the local image store and pulling it failed: "
                f"{e.message}",
                hint=("check the name and the network, or get it in without a registry: "
                      f"`skopeo copy docker://{ref} docker-archive:image.tar` then "
                      "`layerkit load -i image.tar`, or --build-context NAME=oci-layout://DIR"),
                reference="image-not-found",
            ) from e
        except (KeyError, TypeError, ValueError) as e:
            raise BuildError(f"base image {ref!r}: the registry sent a malformed manifest "
                             f"({type(e).__name__}: {e})",
                             hint="push the image again with a standard tool",
                             reference="image-corrupt") from e

    def _known_pull(self, ref: str, platform: str) -> ResolvedImage | None:
        """A registry image an earlier build resolved (no network: its documents are here)."""
        if self.access is None:
            return None
        from layerkit.errors import LayerkitError
        from layerkit.registry.reference import parse_reference

        try:
            reference = parse_reference(ref)
        except LayerkitError:
            return None
        row = self.store.pulled(str(reference), platform)
        if row is None or not all(self.store.content.has(d) for d in row):
            return None
        return self._lazy(ref, reference, row[0], platform)

    def _lazy(self, ref: str, reference: Any, manifest_digest: str,
              platform: str) -> ResolvedImage:
        """A registry image whose documents are in the store: its layers as a remote chain
        (registered with the build's RemoteResults; nothing is downloaded here)."""
        from layerkit.cache.remote.layers import RemoteLayer
        from layerkit.worker.remote import LazyRegistrySource

        assert self.access is not None
        content = self.store.content
        manifest = json.loads(content.read_bytes(manifest_digest))
        config_digest = str(manifest["config"]["digest"])
        doc = json.loads(content.read_bytes(config_digest))
        _check_platform(ref, doc, platform)
        diff_ids = tuple(doc.get("rootfs", {}).get("diff_ids") or ())
        layers = manifest.get("layers") or []
        if len(layers) != len(diff_ids):
            raise BuildError(f"base image {ref!r}: the manifest lists {len(layers)} layers but "
                             f"the config has {len(diff_ids)}",
                             hint="push the image again with a standard tool",
                             reference="image-corrupt")
        remote = tuple(RemoteLayer(d, str(layer["digest"]), str(layer.get("mediaType") or ""),
                                   int(layer.get("size") or 0))
                       for d, layer in zip(diff_ids, layers, strict=True))
        if remote:
            source = LazyRegistrySource(self.access, reference, f"base image {reference}")
            self.access.results.register(remote, source)
        self.pulled[config_digest] = (str(reference), manifest_digest)
        return ResolvedImage(ref, config_digest, config_digest, diff_ids,
                             ImageConfig.from_oci(doc), len(doc.get("history") or ()),
                             remote_layers=remote)

    def name_complete_pulls(self) -> None:
        """Name registry bases in the image store once all their layers are here (so
        ``layerkit images`` lists them and every blob a record names exists)."""
        from layerkit.worker.session import normalize_tag

        content = self.store.content
        for config_digest, (name, manifest) in list(self.pulled.items()):
            img = next((i for i in self.resolved.values()
                        if i.config_digest == config_digest), None)
            if img is None or not all(content.has(d) for d in img.diff_ids):
                continue
            # The registry's manifest names compressed blobs; record it only when they
            # are here too (the layers may have come uncompressed, e.g. from a load).
            whole = all(content.has(layer.blob) for layer in img.remote_layers)
            try:
                tag = normalize_tag(name)
            except BuildError:
                continue
            with content.lease():
                self.store.images.tag(tag, config_digest, manifest if whole else None)
            del self.pulled[config_digest]

    def _from_layout(self, ref: str, ctx: NamedContext, platform: str) -> ResolvedImage:
        def blob(digest: str) -> bytes:
            algo, _, hexpart = digest.partition(":")
            return (ctx.path / "blobs" / algo / hexpart).read_bytes()

        index = json.loads((ctx.path / "index.json").read_text())
        entries = index.get("manifests") or []
        if ctx.tag:
            entries = [m for m in entries
                       if (m.get("annotations") or {}).get(_REF_NAME) == ctx.tag
                       or m.get("digest") == ctx.tag]
        if not entries:
            raise BuildError(f"OCI layout {ctx.path} has no image tagged {ctx.tag!r}",
                             hint="check the tag after the ':' in --build-context",
                             reference="image-not-found")
        desc: dict[str, Any] = entries[0]
        while desc.get("mediaType") in _OCI_INDEX_TYPES:
            nested = json.loads(blob(desc["digest"])).get("manifests") or []
            match = [m for m in nested if _platform_str(m.get("platform") or {}) == platform]
            if not match:
                raise BuildError(f"OCI layout {ctx.path} has no image for {platform}",
                                 hint="build for a platform the index contains",
                                 reference="image-platform")
            desc = match[0]
        manifest = json.loads(blob(desc["digest"]))
        config_digest = manifest["config"]["digest"]
        raw = blob(config_digest)
        if "sha256:" + hashlib.sha256(raw).hexdigest() != config_digest:
            raise BuildError(f"OCI layout {ctx.path}: config blob {config_digest} is corrupt",
                             hint="re-create the layout", reference="image-corrupt")
        doc = json.loads(raw)
        _check_platform(ref, doc, platform)
        diff_ids = tuple(doc.get("rootfs", {}).get("diff_ids") or ())
        layers = tuple(str(layer["digest"]) for layer in manifest.get("layers") or ())
        if len(layers) != len(diff_ids):
            raise BuildError(f"OCI layout {ctx.path}: manifest and config disagree on layers",
                             hint="re-create the layout", reference="image-corrupt")
        return ResolvedImage(ref, str(desc["digest"]), config_digest, diff_ids,
                             ImageConfig.from_oci(doc), len(doc.get("history") or ()),
                             layout=ctx.path, layer_blobs=layers)

    def _from_dir(self, ref: str, ctx: NamedContext) -> ResolvedImage:
        from layerkit.context.checksum import ContextHasher
        from layerkit.context.dockerignore import load_ignore_rules

        rules = load_ignore_rules(ctx.path, None)
        with ContextHasher(ctx.path, rules, self.store.root / "statcache") as hasher:
            digest = hasher.checksum_sources(["."]).digest
        from layerkit.solver.imageconfig import scratch_config

        return ResolvedImage(ref, digest, "", (), scratch_config(), 0, local_dir=ctx.path)

    # -- unpacking (only when a step needs the filesystem) ---------------------------

    def load(self, ref: str, platform: str) -> StepResult | None:
        img = self.resolve(ref, platform)
        if img.local_dir is not None:
            return self._load_dir(img)
        if img.layout is not None:
            self._import_layout(img)
        if not img.diff_ids:
            return None
        if img.remote_layers:
            top = chain_ids(img.diff_ids)[-1]
            sid = self.store.chain_snapshot(top)
            if sid is None:  # not unpacked here yet: a remote chain, fetched when needed
                return StepResult(REMOTE_PREFIX + top, {"image": img.config_digest})
            return StepResult(sid, {"image": img.config_digest})
        sid = self.unpack_chain(img.diff_ids)
        return StepResult(sid, {"image": img.config_digest})

    def unpack_chain(self, diff_ids: Sequence[str]) -> str:
        """The snapshot holding ``diff_ids`` applied in order (made once, then shared)."""
        from layerkit.content.locks import exclusive_lock

        parent = ""
        for diff_id, chain in zip(diff_ids, chain_ids(diff_ids), strict=True):
            found = self.store.chain_snapshot(chain)
            if found is None:
                hexpart = chain.removeprefix("sha256:")[:40]
                with exclusive_lock(self.store.root / "locks", f"chain-{hexpart}"):
                    found = self.store.chain_snapshot(chain)  # another build may have won
                    if found is None:
                        found = self._apply(parent, diff_id, chain)
            parent = found
        return parent

    def _apply(self, parent: str, diff_id: str, chain: str) -> str:
        snaps = self.store.snapshots
        content = self.store.content
        if not content.has(diff_id):
            raise BuildError(f"layer {diff_id} of a base image is missing from the store",
                             hint="load the image again (`layerkit load -i image.tar`)",
                             reference="image-corrupt")
        key = f"unpack-{os.urandom(16).hex()}"
        snaps.prepare(key, [parent] if parent else [])
        try:
            snaps.apply(key, content.path(diff_id))
            sid = snaps.commit(key)
        except BaseException:
            snaps.remove(key)
            raise
        self.store.record_chain(chain, sid, diff_id)
        return sid

    def _import_layout(self, img: ResolvedImage) -> None:
        from layerkit.content.layers import open_decompressed

        content = self.store.content
        assert img.layout is not None
        if not content.has(img.config_digest):
            algo, _, hexpart = img.config_digest.partition(":")
            content.write_bytes((img.layout / "blobs" / algo / hexpart).read_bytes(),
                                expected_digest=img.config_digest)
        for blob, diff_id in zip(img.layer_blobs, img.diff_ids, strict=True):
            if content.has(diff_id):
                continue
            algo, _, hexpart = blob.partition(":")
            with open(img.layout / "blobs" / algo / hexpart, "rb") as raw:
                plain, _kind = open_decompressed(raw)
                with content.writer(expected_digest=diff_id) as out:
                    while chunk := plain.read(1 << 20):
                        out.write(chunk)

    def _load_dir(self, img: ResolvedImage) -> StepResult:
        """A named local context used as an image: its files in a snapshot, made once."""
        from layerkit.content.locks import exclusive_lock
        from layerkit.context.dockerignore import load_ignore_rules

        chain = "local:" + img.digest
        found = self._local_result(chain, img.digest)
        if found is not None:
            return found
        assert img.local_dir is not None
        src = img.local_dir
        rules = load_ignore_rules(src, None)
        with exclusive_lock(self.store.root / "locks",
                            "chain-" + img.digest.removeprefix("sha256:")[:40]):
            found = self._local_result(chain, img.digest)
            if found is not None:
                return found
            snaps = self.store.snapshots
            key = f"local-{os.urandom(16).hex()}"
            snaps.prepare(key, [])
            try:
                dest = snaps.fs(key)

                def ignore(directory: str, names: list[str]) -> list[str]:
                    rel = Path(directory).relative_to(src)
                    return [n for n in names
                            if rules.matches(str(rel / n) if str(rel) != "." else n)]

                shutil.copytree(src, dest, symlinks=True, ignore=ignore, dirs_exist_ok=True)
                sid = snaps.commit(key)
            except BaseException:
                snaps.remove(key)
                raise
            from layerkit.worker.publish import publish_diff

            meta = publish_diff(self.store, sid, None)
            self.store.record_chain(chain, sid, meta["diff_id"])
        return StepResult(sid, {"local": f"context {img.digest}", "diff_id": meta["diff_id"]})


    def _local_result(self, chain: str, digest: str) -> StepResult | None:
        sid = self.store.chain_snapshot(chain)
        diff_id = self.store.chain_diff(chain)
        if sid is None or not diff_id:
            return None
        return StepResult(sid, {"local": f"context {digest}", "diff_id": diff_id})


def _platform_str(p: Mapping[str, Any]) -> str:
    parts = [str(p.get("os", "")), str(p.get("architecture", ""))]
    if p.get("variant"):
        parts.append(str(p["variant"]))
    return "/".join(parts)


def _check_platform(ref: str, doc: Mapping[str, Any], platform: str) -> None:
    if not platform or "architecture" not in doc:
        return
    have = _platform_str(doc)
    want_os, _, rest = platform.partition("/")
    want_arch = rest.partition("/")[0]
    if (doc.get("os"), doc.get("architecture")) != (want_os, want_arch):
        raise BuildError(
            f"base image {ref!r} is for {have}, but this build is for {platform}",
            hint="load an image for the build platform (cross-platform builds are not "
                 "supported yet)",
            reference="image-platform",
        )
