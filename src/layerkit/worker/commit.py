"""Image commit: a solved build's final stage → an OCI image config and manifest in the store.

* ``rootfs.diff_ids``: the base image's layers, then one per layer-making step
  whose diff is not empty (an empty diff, e.g. a WORKDIR that already existed,
  adds no layer and its history entry gets ``empty_layer``, as in BuildKit);
* ``history``: the base image's entries exactly as it had them, then one per
  instruction of the build (``created`` = ``SOURCE_DATE_EPOCH`` when set);
* the config blob is the image id; the manifest written to the local store
  lists the **uncompressed** layer blobs (compression happens at export), so a
  commit never reads a layer. Identical inputs give identical bytes, so with
  ``SOURCE_DATE_EPOCH`` two cold builds give the same digests.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from layerkit.errors import BuildError
from layerkit.fastclass import dataclass
from layerkit.solver.result import StageResult
from layerkit.solver.worker import StepResult
from layerkit.worker.store import Store, blob_exists

__all__ = ["CommittedImage", "commit_image", "rfc3339"]


@dataclass(frozen=True)
class CommittedImage:
    config: bytes
    config_digest: str  # the image id
    manifest_digest: str  # the manifest listing uncompressed layers (local store)
    diff_ids: tuple[str, ...]


def rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def _base_parts(store: Store, base: StepResult | None) -> tuple[list[str], list[dict[str, Any]]]:
    """The base image's diff_ids and raw history entries (kept byte-for-byte in meaning)."""
    if base is None:
        return [], []
    image = base.meta.get("image")
    if image:
        doc = json.loads(store.content.read_bytes(image))
        return list(doc.get("rootfs", {}).get("diff_ids") or ()), list(doc.get("history") or ())
    diff_id = base.meta.get("diff_id")
    if diff_id:  # a named local context used as a base: one layer
        return [diff_id], [{"created_by": "local context", "comment": "layerkit"}]
    return [], []


def commit_image(
    store: Store, final: StageResult, *, platform: str, epoch: int | None = None,
    tags: Sequence[str] = (), extra: Mapping[str, Any] | None = None,
) -> CommittedImage:
    """Write the config and manifest blobs of ``final`` and tag them; nothing else is read.
    ``extra`` adds top-level config keys (the inline cache, ``moby.buildkit.cache.v0``)."""
    diff_ids, history = _base_parts(store, final.base)
    base_len = len(history)
    # Times come from the results (when each layer was made), not from the clock,
    # so a fully cached rebuild gives the same image id; SOURCE_DATE_EPOCH wins.
    last = history[-1].get("created") if history else None
    now = rfc3339(time.time())
    layers = list(final.layers)
    for entry in final.config.history[base_len:]:
        item: dict[str, Any] = {"created_by": entry.created_by}
        if entry.comment:
            item["comment"] = entry.comment
        empty = entry.empty_layer
        if not empty:
            if not layers:
                raise BuildError("internal: more history entries with layers than layers",
                                 reference="commit-bug")
            layer = layers.pop(0)
            if layer.meta.get("created"):
                last = rfc3339(int(layer.meta["created"]))
            if layer.meta.get("empty") == "1":
                empty = True
            else:
                diff_ids.append(layer.meta["diff_id"])
        created = rfc3339(epoch) if epoch is not None else (last or now)
        item = {"created": created, **item}
        if empty:
            item["empty_layer"] = True
        history.append(item)
    created = rfc3339(epoch) if epoch is not None else (last or now)
    for layer in layers:  # defensive: a layer without history still belongs in rootfs
        if layer.meta.get("empty") != "1":
            diff_ids.append(layer.meta["diff_id"])

    os_name, _, rest = platform.partition("/")
    arch, _, variant = rest.partition("/")
    doc: dict[str, Any] = {
        "created": created, "architecture": arch, "os": os_name,
        "config": final.config.to_oci_config(),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    if final.config.author:
        doc["author"] = final.config.author
    if variant:
        doc["variant"] = variant
    doc.update(extra or {})
    doc_key = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    known = store.commit_of(doc_key)
    if known is not None and all(blob_exists(store.root, d) for d in (*known, *diff_ids)):
        # The same image as an earlier build: skip the OCI models (a no-op rebuild).
        config_digest, manifest_digest = known
        with store.content.lease():
            for name in tags:
                store.images.tag(name, config_digest, manifest_digest)
        return CommittedImage(store.content.read_bytes(config_digest), config_digest,
                              manifest_digest, tuple(diff_ids))
    from layerkit.content import mediatypes as mt
    from layerkit.content.oci import Descriptor, ImageConfig, ImageManifest

    config_bytes = ImageConfig.from_json(json.dumps(doc)).to_json()
    content = store.content
    with content.lease():
        config_info = _put(store, config_bytes)
        layer_descs = tuple(Descriptor(mt.OCI_LAYER, d, content.size(d)) for d in diff_ids)
        manifest = ImageManifest(
            config=Descriptor(mt.OCI_CONFIG, config_info[0], config_info[1]),
            layers=layer_descs,
        ).to_json()
        manifest_digest = _put(store, manifest)[0]
        for name in tags:
            store.images.tag(name, config_info[0], manifest_digest)
    store.record_commit(doc_key, config_info[0], manifest_digest)
    return CommittedImage(config_bytes, config_info[0], manifest_digest, tuple(diff_ids))


def _put(store: Store, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if not store.content.has(digest):
        store.content.write_bytes(data, expected_digest=digest)
    return digest, len(data)
