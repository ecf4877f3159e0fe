"""The exporters' input: an image config (exact bytes) plus its layers in the store."""

from __future__ import annotations

from collections.abc import Sequence

from layerkit.content.digest import check_sha256_digest, sha256_digest
from layerkit.content.errors import ExportError
from layerkit.content.oci import ImageConfig
from layerkit.content.store import ContentStore
from layerkit.fastclass import dataclass, field


@dataclass(frozen=True)
class ExportImage:
    """An image to export.

    ``config`` is the config JSON exactly as its digest is computed over;
    ``diff_ids`` name the uncompressed layer tars held in the content store and
    must equal ``rootfs.diff_ids`` in the config (checked by :meth:`check`).
    """

    config: bytes
    diff_ids: tuple[str, ...]
    parsed: ImageConfig = field(compare=False, repr=False)

    @classmethod
    def create(cls, config: bytes, diff_ids: Sequence[str] | None = None) -> ExportImage:
        parsed = ImageConfig.from_json(config)
        ids = tuple(parsed.rootfs.diff_ids if diff_ids is None else diff_ids)
        if ids != parsed.rootfs.diff_ids:
            raise ExportError(
                "the layers given do not match rootfs.diff_ids in the image config "
                f"({len(ids)} layers given, {len(parsed.rootfs.diff_ids)} in the config)",
                hint="this is a bug in the caller: the config must list every layer's diff_id",
            )
        for diff_id in ids:
            check_sha256_digest(diff_id)
        return cls(config=config, diff_ids=ids, parsed=parsed)

    @property
    def config_digest(self) -> str:
        return sha256_digest(self.config)

    def check(self, store: ContentStore) -> None:
        """Raise ExportError unless every layer is in the store."""
        missing = [d for d in self.diff_ids if not store.has(d)]
        if missing:
            raise ExportError(
                f"{len(missing)} layer(s) of the image are missing from the content store, "
                f"first: {missing[0]}",
                hint="the store was pruned during the build; run the build again",
            )
