"""Registry access for one build: the shared client (made on first use) and the lazily
downloaded layer chains (base images pulled from a registry, ``--cache-from`` results).

Both base images and imported caches name their layers as ``remote:<chainID>``
results in one :class:`~layerkit.cache.remote.layers.RemoteResults`, so a layer
is downloaded at most once per build, and only when a step runs on top of it or
an output needs its bytes. Nothing here touches the network until a document or
a blob is really asked for: a build whose bases are already known and whose
steps are all cached stays offline.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from layerkit.cache.remote.layers import RemoteResults
    from layerkit.registry.client import BlobSink, RegistryClient
    from layerkit.registry.reference import Reference
    from layerkit.worker.store import Store

__all__ = ["LazyRegistrySource", "RemoteAccess"]


class RemoteAccess:
    """The registry client and remote layer chains of one build (thread-safe)."""

    def __init__(self, store: Store, *, insecure_registries: Sequence[str] = (),
                 registry_config: str | None = None, max_workers: int = 4) -> None:
        self.store = store
        self.insecure_registries = tuple(insecure_registries)
        self.registry_config = registry_config
        self.max_workers = max_workers
        self._client: RegistryClient | None = None
        self._lock = threading.Lock()

    @cached_property
    def results(self) -> RemoteResults:
        from layerkit.cache.remote.layers import RemoteResults

        return RemoteResults(self.store.content, max_workers=self.max_workers)

    def client(self) -> RegistryClient:
        """The build's registry client (config, credentials and insecure hosts applied)."""
        with self._lock:
            if self._client is None:
                from layerkit.registry.client import RegistryClient
                from layerkit.registry.config import load_config

                config = load_config(Path(self.registry_config) if self.registry_config
                                     else None)
                self._client = RegistryClient(config=config,
                                              insecure_registries=self.insecure_registries,
                                              max_workers=self.max_workers)
            return self._client

    def knows(self, ref: str) -> bool:
        return "results" in self.__dict__ and self.results.knows(ref)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class LazyRegistrySource:
    """A repository's blobs, fetched through the build's client made only when needed."""

    def __init__(self, access: RemoteAccess, ref: Reference, name: str) -> None:
        self.access = access
        self.ref = ref
        self.name = name

    def fetch(self, digest: str, size: int | None, sink: BlobSink) -> None:
        self.access.client().fetch_blob(self.ref, digest, size, sink)
