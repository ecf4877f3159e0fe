"""BuildKit cache config shape, our records inside it, and the --cache-to/--cache-from flags."""

from __future__ import annotations

import json

import pytest

import layerkit.cache.remote as remote
from layerkit.cache.keystore import StepRecord
from layerkit.cache.remote import (
    CacheConfigError,
    ChainLayer,
    ExportRecord,
    LayerBlob,
    decode_records,
    encode_records,
    parse_cache_config,
    parse_cache_from,
    parse_cache_to,
)
from layerkit.errors import BuildError


def _digest(ch: str) -> str:
    return "sha256:" + ch * 64


def _record(key: str, meta: dict[str, str] | None, *, content_key: str | None = None,
            origin: str | None = None) -> StepRecord:
    result = {"result": None if meta is None else {"ref": "snap-1", "meta": meta},
              "origin": origin or key}
    return StepRecord(key, content_key, "Dockerfile#0#1", {"instruction": "RUN x"}, result,
                      1.5, 0.0, 0.0)


BLOBS = {
    _digest("1"): LayerBlob(_digest("a"), "application/vnd.oci.image.layer.v1.tar+gzip", 10),
    _digest("2"): LayerBlob(_digest("b"), "application/vnd.oci.image.layer.v1.tar+gzip", 20),
    _digest("3"): LayerBlob(_digest("c"), "application/vnd.oci.image.layer.v1.tar+zstd", 30),
}


def _records() -> list[ExportRecord]:
    base = (ChainLayer(_digest("1")),)
    return [
        ExportRecord(_record("lk1:sha256:" + "d" * 64, {"image": _digest("f")}), base),
        ExportRecord(_record("lk1:sha256:" + "e" * 64,
                             {"diff_id": _digest("2"), "created": "0"},
                             content_key="lk1:sha256:" + "9" * 64),
                     (*base, ChainLayer(_digest("2"), "1970-01-01T00:00:00Z")),
                     parent="lk1:sha256:" + "d" * 64),
        ExportRecord(_record("lk1:sha256:" + "8" * 64, {"diff_id": _digest("3")}),
                     (*base, ChainLayer(_digest("3"))), parent="lk1:sha256:" + "d" * 64),
        ExportRecord(_record("lk1:sha256:" + "7" * 64, None), None),
    ]


def test_public_api_is_pinned() -> None:
    assert "RemoteCaches" in remote.__all__
    assert sorted(remote.__all__) == sorted(set(remote.__all__))
    for name in remote.__all__:
        assert hasattr(remote, name), name


def test_encoding_has_buildkits_shape() -> None:
    doc = json.loads(encode_records(_records(), BLOBS).to_json())
    assert set(doc) == {"layers", "records"}
    # shared base layer once, two children pointing at it
    assert [(layer["blob"], layer["parent"]) for layer in doc["layers"]] == [
        (_digest("a"), -1), (_digest("b"), 0), (_digest("c"), 0)]
    assert doc["layers"][1]["annotations"] == {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "diffID": _digest("2"),
        "size": 20, "createdAt": "1970-01-01T00:00:00Z"}
    recs = doc["records"]
    assert recs[0]["digest"] == "sha256:" + "d" * 64
    assert recs[1]["layers"] == [{"layer": 1, "createdAt": "1970-01-01T00:00:00Z"}]
    assert recs[1]["inputs"] == [[{"link": 0}]]
    assert recs[2]["layers"] == [{"layer": 2}]
    assert "layers" not in recs[3] and "inputs" not in recs[3]
    assert recs[1]["layerkit"]["content_key"] == "lk1:sha256:" + "9" * 64


def test_round_trip_keeps_what_the_solver_needs() -> None:
    config = parse_cache_config(encode_records(_records(), BLOBS).to_json())
    back = {r.key: r for r in decode_records(config)}
    assert len(back) == 4
    child = back["lk1:sha256:" + "e" * 64]
    assert child.content_key == "lk1:sha256:" + "9" * 64
    assert child.inputs == {"instruction": "RUN x"}
    assert child.meta == {"diff_id": _digest("2"), "created": "0"}
    assert [(x.diff_id, x.blob, x.size) for x in child.chain or ()] == [
        (_digest("1"), _digest("a"), 10), (_digest("2"), _digest("b"), 20)]
    assert back["lk1:sha256:" + "7" * 64].chain is None
    step = child.to_step_record("remote:x")
    assert step.result["result"]["ref"] == "remote:x"
    assert step.result["origin"] == child.key


def test_records_written_by_other_tools_are_skipped() -> None:
    doc = {"layers": [{"blob": _digest("a"), "parent": -1}],
           "records": [{"digest": _digest("1"), "layers": [{"layer": 0}]}]}
    assert decode_records(parse_cache_config(json.dumps(doc))) == []


@pytest.mark.parametrize("doc, needle", [
    ({"layers": [{"blob": "nope", "parent": -1}]}, "not a sha256 digest"),
    ({"layers": [{"blob": _digest("a"), "parent": 5}]}, "out of range"),
    ({"layers": [{"blob": _digest("a"), "parent": 1}, {"blob": _digest("b"), "parent": 0}]},
     "broken parent chain"),
    ({"records": [{"digest": _digest("a"), "layers": [{"layer": 3}]}]}, "out of range"),
    ({"records": [{"digest": _digest("a"), "inputs": [[{"link": 9}]]}]}, "out of range"),
    ([], "JSON object"),
])
def test_invalid_documents_are_rejected(doc: object, needle: str) -> None:
    with pytest.raises(CacheConfigError) as err:
        parse_cache_config(json.dumps(doc))
    assert needle in err.value.message


def test_go_omitempty_parent_zero_is_read_as_zero() -> None:
    doc = {"layers": [{"blob": _digest("a"), "parent": -1}, {"blob": _digest("b")}]}
    config = parse_cache_config(json.dumps(doc))
    assert [layer.blob for layer in config.chain(1)] == [_digest("a"), _digest("b")]


def test_cache_to_flags() -> None:
    spec = parse_cache_to("type=registry,ref=127.0.0.1:5000/c:t,mode=max,compression=zstd,"
                          "ignore-error=true")
    assert (spec.type, spec.ref, spec.mode, spec.compression, spec.ignore_error) == (
        "registry", "127.0.0.1:5000/c:t", "max", "zstd", True)
    local = parse_cache_to("type=local,dest=/tmp/x")
    assert (local.type, str(local.dest), local.mode) == ("local", "/tmp/x", "min")
    assert parse_cache_to("type=inline").type == "inline"


@pytest.mark.parametrize("value, needle", [
    ("type=registry", "needs ref="),
    ("type=local", "needs dest="),
    ("type=registry,ref=x,mode=all", "mode="),
    ("type=registry,ref=x,compression=xz", "compression="),
    ("type=s3,bucket=b", "unknown type"),
    ("type=inline,mode=max", "mode=min"),
    ("type=registry,ref=x,colour=red", "unknown option"),
])
def test_bad_cache_to_flags_say_what_is_wrong(value: str, needle: str) -> None:
    with pytest.raises(BuildError) as err:
        parse_cache_to(value)
    assert needle in err.value.message
    assert err.value.hint


def test_cache_from_flags() -> None:
    assert parse_cache_from("myimage:1").ref == "myimage:1"
    assert parse_cache_from("type=registry,ref=r/c").ref == "r/c"
    local = parse_cache_from("type=local,src=/tmp/c")
    assert (local.type, str(local.src)) == ("local", "/tmp/c")
    with pytest.raises(BuildError):
        parse_cache_from("type=local")
