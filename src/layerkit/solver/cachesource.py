"""Cache sources: where a step's key can be found. The local key store is one; a remote
cache importer is another source of keys with the same two lookups."""

from __future__ import annotations

from typing import Protocol

from layerkit.cache.keystore import KeyStore, StepRecord


class CacheSource(Protocol):
    """Something that maps keys to step records (BuildKit: an imported cache manager)."""

    name: str  # shown as "CACHED (from <name>)"

    def get(self, key: str) -> StepRecord | None: ...

    def get_by_content(self, content_key: str) -> StepRecord | None: ...


class LocalCache:
    """The local SQLite key store as a cache source."""

    name = "local cache"

    def __init__(self, store: KeyStore) -> None:
        self.store = store

    def get(self, key: str) -> StepRecord | None:
        return self.store.get(key)

    def get_by_content(self, content_key: str) -> StepRecord | None:
        return self.store.get_by_content(content_key)
