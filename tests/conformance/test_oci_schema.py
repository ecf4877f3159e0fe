"""OCI image-spec conformance: the spec's JSON schemas and layerkit's model parser.

Reads ../shared/conformance/oci-image-spec in place. Every valid document must
pass the schema and parse; every invalid one must be rejected by at least one
of the two layers (the four documents Go rejects outside the schema must be
rejected by our parser); everything our models serialise must validate.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # type: ignore[import-untyped]
import pytest
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT4 as _DRAFT4

from layerkit.content import mediatypes as mt
from layerkit.content.errors import InvalidDocumentError
from layerkit.content.oci import (
    ContainerConfig,
    Descriptor,
    History,
    ImageConfig,
    ImageIndex,
    ImageManifest,
    OCILayout,
    Platform,
    RootFS,
    parse_document,
)

SCHEMA_FOR_KIND = {
    "manifest": "image-manifest-schema.json",
    "index": "image-index-schema.json",
    "config": "config-schema.json",
    "descriptor": "content-descriptor.json",
    "layout": "image-layout-schema.json",
}


def _spec_dir(conformance_dir: Path) -> Path:
    spec = conformance_dir / "oci-image-spec"
    if not spec.is_dir():
        pytest.skip(f"OCI corpus missing at {spec}")
    return spec


def _index(conformance_dir: Path) -> list[dict[str, Any]]:
    data = json.loads((_spec_dir(conformance_dir) / "index.json").read_text())
    docs: list[dict[str, Any]] = data["documents"]
    return docs


class SchemaSet:
    """Draft-04 validators whose $refs resolve to the local schema files, never the network.

    The schemas' ``id``s and nested ids make refs like ``defs-descriptor.json``
    resolve under several base URIs; any URI whose last path segment names a
    local schema file is served from disk.
    """

    def __init__(self, schema_dir: Path) -> None:
        self.schema_dir = schema_dir

        def retrieve(uri: str) -> Resource[Any]:
            name = urlsplit(uri).path.rsplit("/", 1)[-1]
            path = schema_dir / name
            if not name.endswith(".json") or not path.is_file():
                raise NoSuchResource(ref=uri)  # type: ignore[call-arg]
            return Resource.from_contents(
                json.loads(path.read_text()), default_specification=_DRAFT4
            )

        self.registry: Registry[Any] = Registry(retrieve=retrieve)  # type: ignore[call-arg]

    def validator(self, kind: str) -> jsonschema.Draft4Validator:
        schema = json.loads((self.schema_dir / SCHEMA_FOR_KIND[kind]).read_text())
        return jsonschema.Draft4Validator(
            schema,
            registry=self.registry,
            format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER,
        )

    def errors(self, kind: str, document: object) -> list[str]:
        return [e.message for e in self.validator(kind).iter_errors(document)]


@pytest.fixture(scope="module")
def schemas(conformance_dir: Path) -> SchemaSet:
    return SchemaSet(_spec_dir(conformance_dir) / "schema")


def _parse_with_model(kind: str, raw: bytes) -> object:
    media_type = {
        "manifest": mt.OCI_MANIFEST,
        "index": mt.OCI_INDEX,
        "config": mt.OCI_CONFIG,
        "descriptor": mt.OCI_DESCRIPTOR,
        "layout": mt.OCI_LAYOUT_HEADER,
    }[kind]
    return parse_document(raw, media_type)


def _corpus_ids(conformance_dir: Path) -> list[dict[str, Any]]:
    return [d for d in _index(conformance_dir) if d["expect_valid"] is not None]


def test_corpus_is_complete(conformance_dir: Path) -> None:
    docs = _corpus_ids(conformance_dir)
    assert sum(d["expect_valid"] for d in docs) == 44
    assert sum(not d["expect_valid"] for d in docs) == 40


def test_valid_documents_pass_schema_and_parse(
    conformance_dir: Path, schemas: SchemaSet
) -> None:
    spec = _spec_dir(conformance_dir)
    failures = []
    for doc in _corpus_ids(conformance_dir):
        if not doc["expect_valid"]:
            continue
        raw = (spec / doc["file"]).read_bytes()
        errors = schemas.errors(doc["kind"], json.loads(raw))
        if errors:
            failures.append(f"{doc['file']}: schema: {errors}")
        try:
            _parse_with_model(doc["kind"], raw)
        except InvalidDocumentError as e:
            failures.append(f"{doc['file']}: model: {e}")
    assert failures == []


def test_invalid_documents_are_rejected(conformance_dir: Path, schemas: SchemaSet) -> None:
    spec = _spec_dir(conformance_dir)
    accepted_by_both = []
    checked = 0
    for doc in _corpus_ids(conformance_dir):
        if doc["expect_valid"]:
            continue
        checked += 1
        raw = (spec / doc["file"]).read_bytes()
        schema_rejects = True
        if doc["parses_as_json"]:
            schema_errors = schemas.errors(doc["kind"], json.loads(raw))
            schema_rejects = bool(schema_errors)
            # Our schema setup must agree with the recorded pure-jsonschema result.
            assert schema_rejects == (not doc["pure_jsonschema_draft4_result"]), doc["file"]
        try:
            _parse_with_model(doc["kind"], raw)
            model_rejects = False
        except InvalidDocumentError:
            model_rejects = True
        if doc["pure_jsonschema_draft4_result"] is True:
            # The Go validator rejects these outside the schema; so must our parser.
            assert model_rejects, f"{doc['file']}: parser accepted it ({doc['reason']})"
        if not (schema_rejects or model_rejects):
            accepted_by_both.append(doc["file"])
    assert checked == 40
    assert accepted_by_both == []


def test_parser_alone_rejects_almost_all_invalid(conformance_dir: Path) -> None:
    """The parser is the layer that runs in production (no schema): measure it."""
    spec = _spec_dir(conformance_dir)
    accepted = []
    for doc in _corpus_ids(conformance_dir):
        if doc["expect_valid"]:
            continue
        try:
            _parse_with_model(doc["kind"], (spec / doc["file"]).read_bytes())
        except InvalidDocumentError:
            continue
        accepted.append(Path(doc["file"]).name)
    # Only the empty-layers manifest is deliberately accepted (see content/oci.py).
    assert accepted == ["TestManifest-05.json"]


@pytest.mark.parametrize("kind", ["manifest", "index", "config"])
def test_docker_originals_keep_exact_bytes_and_parse(
    conformance_dir: Path, kind: str
) -> None:
    spec = _spec_dir(conformance_dir)
    originals = [
        d for d in _index(conformance_dir)
        if d["file"].startswith("docker-compat/") and d["kind"] == kind
    ]
    assert originals
    model: Any = {"manifest": ImageManifest, "index": ImageIndex, "config": ImageConfig}[kind]
    for doc in originals:
        raw = (spec / doc["file"]).read_bytes()
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == doc["exact_bytes_sha256"]
        parsed = model.from_json(raw)
        if isinstance(parsed, ImageManifest):
            assert parsed.media_type == mt.DOCKER_MANIFEST
            assert all(layer.media_type == mt.DOCKER_LAYER_GZIP for layer in parsed.layers)
        elif isinstance(parsed, ImageIndex):
            assert parsed.media_type == mt.DOCKER_MANIFEST_LIST
        else:
            assert isinstance(parsed, ImageConfig)
            assert parsed.rootfs.diff_ids
            # Legacy keys survive in `extra`.
            assert "container_config" in parsed.extra


def test_valid_documents_round_trip_through_models(
    conformance_dir: Path, schemas: SchemaSet
) -> None:
    """Parse → serialise → the result still validates and re-parses to an equal model."""
    spec = _spec_dir(conformance_dir)
    for doc in _corpus_ids(conformance_dir):
        if not doc["expect_valid"] or doc["kind"] == "descriptor":
            continue
        raw = (spec / doc["file"]).read_bytes()
        model = _parse_with_model(doc["kind"], raw)
        out = model.to_json()  # type: ignore[attr-defined]
        assert schemas.errors(doc["kind"], json.loads(out)) == [], doc["file"]
        assert _parse_with_model(doc["kind"], out) == model, doc["file"]
        assert model.to_json() == out  # type: ignore[attr-defined]  # deterministic


def _sample_documents() -> dict[str, bytes]:
    layer = Descriptor(mt.OCI_LAYER_GZIP, "sha256:" + "ab" * 32, 1234)
    config_desc = Descriptor(mt.OCI_CONFIG, "sha256:" + "cd" * 32, 567)
    manifest = ImageManifest(
        config=config_desc, layers=(layer,), annotations={"b": "2", "a": "1"}
    )
    docker_manifest = ImageManifest(
        config=Descriptor(mt.DOCKER_CONFIG, config_desc.digest, 567),
        layers=(Descriptor(mt.DOCKER_LAYER_GZIP, layer.digest, 1234),),
        media_type=mt.DOCKER_MANIFEST,
    )
    index = ImageIndex(
        manifests=(
            Descriptor(
                mt.OCI_MANIFEST,
                "sha256:" + "ef" * 32,
                999,
                platform=Platform("arm64", "linux", variant="v8"),
                annotations={mt.ANNOTATION_REF_NAME: "latest"},
            ),
        )
    )
    config = ImageConfig(
        architecture="amd64",
        os="linux",
        created="2024-01-01T00:00:00Z",
        config=ContainerConfig(
            env=("PATH=/bin",),
            cmd=("sh",),
            exposed_ports={"80/tcp": {}},
            labels={"z": "1", "a": "2"},
            volumes={"/data": {}},
        ),
        rootfs=RootFS(diff_ids=("sha256:" + "12" * 32,)),
        history=(
            History(created="2024-01-01T00:00:00Z", created_by="ADD rootfs /"),
            History(created_by="CMD [\"sh\"]", empty_layer=True),
        ),
    )
    return {
        "manifest": manifest.to_json(),
        "docker-manifest": docker_manifest.to_json(),
        "index": index.to_json(),
        "config": config.to_json(),
        "descriptor": layer.to_json(),
        "layout": OCILayout().to_json(),
    }


@pytest.mark.parametrize("name", sorted(_sample_documents()))
def test_serialised_documents_validate(schemas: SchemaSet, name: str) -> None:
    raw = _sample_documents()[name]
    kind = "manifest" if name == "docker-manifest" else name
    assert schemas.errors(kind, json.loads(raw)) == []
    # The chosen serialisation: compact, map keys sorted, Go struct field order.
    assert b" " not in raw.replace(b'"CMD [\\"sh\\"]"', b"").replace(b"ADD rootfs /", b"")
    if name == "manifest":
        assert raw.index(b'"a":"1"') < raw.index(b'"b":"2"')
        assert raw.startswith(b'{"schemaVersion":2,"mediaType":')


def test_schema_layer_rejects_a_broken_serialisation(schemas: SchemaSet) -> None:
    """Guard against a validator that accepts everything (e.g. unresolved $refs)."""
    doc = json.loads(_sample_documents()["manifest"])
    doc["layers"][0]["size"] = "12"
    assert schemas.errors("manifest", doc)
    doc = json.loads(_sample_documents()["index"])
    doc["manifests"][0]["digest"] = "nope"
    assert schemas.errors("index", doc)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"mediaType":"a/b","digest":"sha256:' + b"A" * 64 + b'","size":1}', "digest"),
        (b'{"mediaType":"a/b","digest":"sha256:' + b"a" * 64 + b'","size":-1}', "size"),
        (b'{"mediaType":"a/b","digest":"sha256:' + b"a" * 64 + b'","size":true}', "size"),
        (b'{"mediaType":"ab","digest":"sha256:' + b"a" * 64 + b'","size":1}', "mediaType"),
        (b'{"mediaType":"a/b","size":1}', "digest"),
        (b"[1]", "expected an object"),
        (b"{", "not valid JSON"),
    ],
)
def test_descriptor_errors_name_the_field(raw: bytes, fragment: str) -> None:
    with pytest.raises(InvalidDocumentError) as exc:
        Descriptor.from_json(raw)
    assert fragment in str(exc.value)


def test_manifest_and_index_media_types_are_not_confused() -> None:
    manifest = json.loads(_sample_documents()["manifest"])
    with pytest.raises(InvalidDocumentError, match="is a manifest, not an index"):
        ImageIndex.from_json({**manifest, "manifests": []})
    index = json.loads(_sample_documents()["index"])
    with pytest.raises(InvalidDocumentError, match="is an index, not a manifest"):
        ImageManifest.from_json({**index, "config": manifest["config"], "layers": []})


def test_buildkit_cache_config_media_type_constant() -> None:
    assert mt.BUILDKIT_CACHE_CONFIG == "application/vnd.buildkit.cacheconfig.v0"
    desc = Descriptor(mt.BUILDKIT_CACHE_CONFIG, "sha256:" + "00" * 32, 10)
    assert Descriptor.from_json(desc.to_json()) == desc
