"""Base images: a FROM (or ``--from``) reference → a resolved image and its unpacked layers.

Where an image can come from, in order:

1. ``scratch`` (handled by the solver: no filesystem);
2. a ``--build-context NAME=…`` whose name matches: an OCI layout directory
   (``oci-layout://DIR[:TAG]``, its blobs imported into the content store) or a
   local directory (its files become the filesystem; its digest is the content
   checksum of the directory, so edits invalidate what uses it);
3. the local image store (names as ``layerkit load`` or ``-t`` recorded them,
   or an image id);
4. otherwise a :class:`~layerkit.errors.BuildError` saying registries are not
   supported yet and how to get the image in.

Layers are unpacked into a chain of snapshots keyed by containerd's chainID
(``chain(n) = sha256(chain(n-1) + " " + diff_id(n))``), recorded in
``worker.db`` so every build (and every process) shares one unpacked copy.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerkit.errors import BuildError
from layerkit.solver.imageconfig import ImageConfig
from layerkit.solver.worker import BaseState, StepResult
from layerkit.worker.specs import NamedContext
from layerkit.worker.store import Store

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
                 platform: str) -> None:
        self.store = store
        self.contexts = contexts
        self.platform = platform
        self.resolved: dict[str, ResolvedImage] = {}

    # -- resolution (metadata only) --------------------------------------------------

    def resolve(self, ref: str, platform: str) -> ResolvedImage:
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
        for name in candidate_names(ref):
            try:
                record = self.store.images.resolve(name)
                break
            except ContentError as e:
                if e.reference == "image-ambiguous":
                    raise
        if record is None:
            record = self._pull(ref, platform)
        raw = self.store.content.read_bytes(record.config_digest)
        doc = json.loads(raw)
        _check_platform(ref, doc, platform)
        diff_ids = tuple(doc.get("rootfs", {}).get("diff_ids") or ())
        return ResolvedImage(ref, record.config_digest, record.config_digest, diff_ids,
                             ImageConfig.from_oci(doc), len(doc.get("history") or ()))

    def _pull(self, ref: str, platform: str) -> Any:
        """The registry seam: pull ``ref`` into the store (layers kept uncompressed under
        their diff_ids) and name it there, so later builds resolve it locally.
        ``LAYERKIT_NO_PULL=1`` turns it off (the store is then the only source)."""
        import os

        if os.environ.get("LAYERKIT_NO_PULL") or "@" in ref:
            raise _not_local(ref)
        try:
            from layerkit.registry.pull import pull_image
        except ImportError:
            raise _not_local(ref) from None
        from layerkit.errors import LayerkitError
        from layerkit.worker.session import normalize_tag

        content = self.store.content
        try:
            with content.lease():
                pulled = pull_image(ref, content, platform=platform or None)
                for desc, diff_id in zip(pulled.layers, pulled.diff_ids, strict=True):
                    if not content.has(diff_id):
                        _decompress_into(content, desc.digest, diff_id)
                name = normalize_tag(ref)
                return self.store.images.tag(name, pulled.config_digest, pulled.digest)
        except LayerkitError as e:
            raise BuildError(
                f"base image {ref!r} is not in the local image store and pulling it failed: "
                f"{e.message}",
                hint=("check the name and the network, or get it in without a registry: "
                      f"`skopeo copy docker://{ref} docker-archive:image.tar` then "
                      "`layerkit load -i image.tar`, or --build-context NAME=oci-layout://DIR"),
                reference="image-not-found",
            ) from e

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
        key = f"unpack-{uuid.uuid4().hex}"
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
            key = f"local-{uuid.uuid4().hex}"
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


def _decompress_into(content: Any, blob: str, diff_id: str) -> None:
    """Store the plain tar of compressed layer ``blob`` under ``diff_id`` (verified)."""
    from layerkit.content.layers import open_decompressed

    with content.open(blob) as raw:
        plain, _kind = open_decompressed(raw)
        with content.writer(expected_digest=diff_id) as out:
            while chunk := plain.read(1 << 20):
                out.write(chunk)


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
