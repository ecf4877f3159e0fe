"""One build's remote caches: ``--cache-from`` imported up front, ``--cache-to`` written
after the build. The glue the build session calls; each part lives in its own module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from layerkit.cache.keystore import KeyStore, StepRecord
from layerkit.cache.remote.exporter import CacheExport, export_cache
from layerkit.cache.remote.importer import RemoteCache, import_cache
from layerkit.cache.remote.layers import RemoteResults, is_remote
from layerkit.cache.remote.records import ExportRecord, collect_records
from layerkit.cache.remote.spec import CacheFromSpec, CacheToSpec
from layerkit.solver.result import SolveResult
from layerkit.solver.worker import StepResult

if TYPE_CHECKING:
    from layerkit.content.store import ContentStore

__all__ = ["RemoteCaches"]


class RemoteCaches:
    """The imported caches of one build, and the exports it asked for."""

    def __init__(
        self, content: ContentStore, *, cache_from: Sequence[CacheFromSpec] = (),
        cache_to: Sequence[CacheToSpec] = (), client: Callable[[], Any] | None = None,
        platform: str | None = None, max_workers: int = 4,
        results: RemoteResults | None = None,
    ) -> None:
        self.content = content
        self.cache_from = list(cache_from)
        self.cache_to = list(cache_to)
        self._client_factory = client
        self._client: Any = None
        self.platform = platform
        # Shared with the worker's registry bases when given: one download per layer.
        self.results = results or RemoteResults(content, max_workers=max_workers)
        self.sources: list[RemoteCache] = []
        self.warnings: list[str] = []

    def client(self) -> Any:
        if self._client is None:
            if self._client_factory is not None:
                self._client = self._client_factory()
            else:
                from layerkit.registry.client import RegistryClient

                self._client = RegistryClient()
        return self._client

    def load(self) -> list[RemoteCache]:
        """Import every ``--cache-from`` (documents only; no layer is downloaded)."""
        for spec in self.cache_from:
            client = self.client() if spec.type == "registry" else None
            cache = import_cache(spec, self.results, client, platform=self.platform)
            if cache.problem:
                self.warnings.append(cache.problem)
            self.sources.append(cache)
        return self.sources

    # -- results the worker sees -----------------------------------------------------

    def knows(self, result: StepResult) -> bool:
        return is_remote(result.ref) and self.results.knows(result.ref)

    def lookup(self, local: KeyStore) -> Callable[[str], StepRecord | None]:
        def find(key: str) -> StepRecord | None:
            rec = local.get(key)
            if rec is not None:
                return rec
            for source in self.sources:
                rec = source.get(key)
                if rec is not None:
                    return rec
            return None
        return find

    # -- export ----------------------------------------------------------------------

    def export(self, result: SolveResult, local: KeyStore, *,
               max_workers: int | None = None) -> list[CacheExport]:
        """Write every registry/local ``--cache-to`` (inline is the commit's job)."""
        done: list[CacheExport] = []
        for spec in self.cache_to:
            if spec.type == "inline":
                continue
            records = self.records(result, local, spec.mode)
            client = self.client() if spec.type == "registry" else None
            exported = export_cache(spec, records, self.content, remote=self.results,
                                    client=client, max_workers=max_workers)
            if exported.warning:
                self.warnings.append(exported.warning)
            done.append(exported)
        return done

    def records(self, result: SolveResult, local: KeyStore, mode: str) -> list[ExportRecord]:
        def remote_chain(r: StepResult) -> Any:
            return self.results.chain(r.ref) if self.knows(r) else None

        return collect_records(result, self.lookup(local), self.base_layers, remote_chain,
                               "max" if mode == "max" else "min")

    def base_layers(self, base: StepResult | None) -> list[str]:
        """The diff_ids under a stage's first layer: a FROM image's, or a local context's."""
        if base is None:
            return []
        if self.knows(base):
            return [layer.diff_id for layer in self.results.chain(base.ref)]
        image = base.meta.get("image")
        if image and self.content.has(image):
            doc = json.loads(self.content.read_bytes(image))
            return list((doc.get("rootfs") or {}).get("diff_ids") or [])
        diff_id = base.meta.get("diff_id")
        return [diff_id] if diff_id else []

    def close(self) -> None:
        if self._client is not None and self._client_factory is None:
            self._client.close()
