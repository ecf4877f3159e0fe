"""Key-store records whose result is a ``remote:<chainID>`` layer chain (a base image
from a registry, or an imported cache record) in the reachability walk, prune and fsck.

Regression: every build FROM a registry image writes such a record for its FROM step;
the walk used to read the ref as a snapshot name, so ``layerkit fsck`` called the
record broken (exit 1) right after a healthy build and ``fsck --repair`` deleted it.
"""

from __future__ import annotations

from pathlib import Path

from test_store_prune import Fixture

from layerkit.store import walk
from layerkit.store.fsck import fsck
from layerkit.store.reachability import chain_ids


def _base(fx: Fixture) -> tuple[str, str, str]:
    """A base image's layer blob, its config (image id) and the chainID of its stack."""
    layer = fx.blob()
    config = fx.image("base:1", [layer])
    return layer, config, chain_ids([layer])[-1]


def test_remote_chain_not_unpacked_is_not_missing(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    _layer, config, chain = _base(fx)
    fx.record("from", f"remote:{chain}", None, image=config)
    (rec,) = walk(tmp_path).records
    assert rec.missing == ()
    assert rec.snapshots == ()
    assert config in rec.blobs
    report = fsck(tmp_path)
    assert report.clean, [p.to_json() for p in report.problems]
    assert not [p for p in report.problems if p.kind == "broken-record"]


def test_remote_chain_unpacked_references_its_snapshot(tmp_path: Path) -> None:
    fx = Fixture(tmp_path)
    layer, config, chain = _base(fx)
    sid = fx.snapshot()
    fx.chain(chain, sid, layer)
    fx.record("from", f"remote:{chain}", None, image=config)
    graph = walk(tmp_path)
    (rec,) = graph.records
    assert rec.missing == () and rec.snapshots == (sid,)
    # Reachable through the record alone, not only through the chains table.
    assert sid in graph.reachable(graph.records).snapshots
    assert fsck(tmp_path).clean


def test_a_gone_snapshot_ref_is_still_broken(tmp_path: Path) -> None:
    """Control: the remote case must not hide an ordinary ref to a missing snapshot."""
    fx = Fixture(tmp_path)
    _layer, config, _chain = _base(fx)
    fx.record("step", "snapshot-that-is-gone", None, image=config)
    (rec,) = walk(tmp_path).records
    assert rec.missing == ("snapshot-that-is-gone",)
    report = fsck(tmp_path)
    assert not report.clean
    assert [p.kind for p in report.serious] == ["broken-record"]
