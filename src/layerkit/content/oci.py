"""Turns OCI / Docker schema-2 JSON documents into typed, validated models and back.

Serialisation rule (kept forever, since digests are over exact bytes):
fields are written in the order of the Go structs in opencontainers/image-spec
(``Descriptor``: mediaType, digest, size, ...), map keys (annotations, labels,
unknown extra fields) sorted, empty optional fields omitted, no whitespace
(``separators=(",", ":")``), UTF-8 without ``\\uXXXX`` escapes. This is what
``to_json()`` produces for documents *we author*. Documents we only pass
through (pulled manifests, loaded configs) are never re-serialised: keep the
original bytes, the models are for reading them.

Parsing is as strict as the Go reference validator's decode step
(``schema/validator.go``): JSON types, media-type and digest grammar, strict
base64 in ``data``, ``uri`` urls, ``KEY=value`` Env entries. The one place it is
looser than the JSON schema: an image manifest with an empty ``layers`` array is
accepted, because BuildKit and Docker write one for ``FROM scratch`` images.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from layerkit.content import mediatypes as mt
from layerkit.content._jsonfields import JSONObject, Obj, fail, load_json, put, sorted_map
from layerkit.content.digest import digest_problem
from layerkit.fastclass import dataclass, field

_MEDIA_TYPE_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
)
_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s\"<>\\^`{|}]*$")
_ENV_RE = re.compile(r"[^=]+=.*")
_RFC3339_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_MAX_SIZE = 2**63 - 1

T = TypeVar("T")


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The one serialisation layerkit uses for documents it authors."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _media_type(obj: Obj, key: str, *, required: bool = False) -> str | None:
    value = obj.get_str(key, required=required)
    if value is not None and not _MEDIA_TYPE_RE.match(value):
        raise fail(obj.at(key), f"{value!r} is not a valid media type (type/subtype)")
    return value


def _created(obj: Obj, key: str) -> str | None:
    value = obj.get_str(key)
    if value is not None and not _RFC3339_RE.match(value):
        raise fail(obj.at(key), f"{value!r} is not an RFC 3339 date-time")
    return value


def _doc(data: bytes | str | Mapping[str, Any], what: str) -> Obj:
    value = dict(data) if isinstance(data, Mapping) else load_json(data, what)
    return Obj(value, what)


def _schema_version(obj: Obj) -> int:
    version = obj.get_int("schemaVersion", required=True)
    if version != 2:
        raise fail(obj.at("schemaVersion"), f"expected 2, got {version}")
    return version


@dataclass(frozen=True)
class Platform:
    architecture: str
    os: str
    os_version: str | None = None
    os_features: tuple[str, ...] = ()
    variant: str | None = None
    features: tuple[str, ...] = ()

    @classmethod
    def from_obj(cls, obj: Obj) -> Platform:
        return cls(
            architecture=obj.req_str("architecture"),
            os=obj.req_str("os"),
            os_version=obj.get_str("os.version"),
            os_features=obj.str_list("os.features") or (),
            variant=obj.get_str("variant"),
            features=obj.str_list("features") or (),
        )

    def to_dict(self) -> JSONObject:
        out: JSONObject = {"architecture": self.architecture, "os": self.os}
        put(out, "os.version", self.os_version)
        put(out, "os.features", list(self.os_features))
        put(out, "variant", self.variant)
        put(out, "features", list(self.features))
        return out

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    data: str | None = None  # base64 text, exactly as written
    platform: Platform | None = None
    artifact_type: str | None = None

    @classmethod
    def from_json(cls, data: bytes | str | Mapping[str, Any]) -> Descriptor:
        return cls.from_obj(_doc(data, "descriptor"))

    @classmethod
    def from_obj(cls, obj: Obj) -> Descriptor:
        media_type = _media_type(obj, "mediaType", required=True)
        digest = obj.req_str("digest")
        if (problem := digest_problem(digest)) is not None:
            raise fail(obj.at("digest"), problem)
        size = obj.get_int("size", required=True)
        assert media_type is not None and size is not None
        if not 0 <= size <= _MAX_SIZE:
            raise fail(obj.at("size"), f"size {size} is out of range")
        urls = obj.str_list("urls") or ()
        for i, url in enumerate(urls):
            if not _URI_RE.match(url):
                raise fail(f"{obj.at('urls')}[{i}]", f"{url!r} is not an absolute URI")
        data = obj.get_str("data")
        if data is not None:
            try:
                import base64  # only descriptors with embedded data

                base64.b64decode(data, validate=True)
            except binascii.Error as e:
                raise fail(obj.at("data"), f"invalid base64: {e}") from None
        platform = obj.obj("platform")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            urls=urls,
            annotations=obj.str_map("annotations") or {},
            data=data,
            platform=Platform.from_obj(platform) if platform else None,
            artifact_type=_media_type(obj, "artifactType"),
        )

    def to_dict(self) -> JSONObject:
        out: JSONObject = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        put(out, "urls", list(self.urls))
        put(out, "annotations", sorted_map(self.annotations))
        put(out, "data", self.data)
        put(out, "platform", self.platform.to_dict() if self.platform else None)
        put(out, "artifactType", self.artifact_type)
        return out

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())


def _descriptors(obj: Obj, key: str) -> tuple[Descriptor, ...]:
    items = obj.obj_list(key, required=True)
    assert items is not None
    return tuple(Descriptor.from_obj(item) for item in items)


def _subject(obj: Obj) -> Descriptor | None:
    subject = obj.obj("subject")
    return Descriptor.from_obj(subject) if subject else None


@dataclass(frozen=True)
class ImageManifest:
    """An OCI image manifest or a Docker v2 schema-2 manifest (by ``media_type``)."""

    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str | None = mt.OCI_MANIFEST
    schema_version: int = 2
    artifact_type: str | None = None
    subject: Descriptor | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: bytes | str | Mapping[str, Any]) -> ImageManifest:
        obj = _doc(data, "manifest")
        media_type = _media_type(obj, "mediaType")
        if media_type in mt.INDEX_TYPES:
            raise fail(obj.at("mediaType"), f"{media_type} is an index, not a manifest")
        config = obj.obj("config", required=True)
        assert config is not None
        return cls(
            schema_version=_schema_version(obj),
            media_type=media_type,
            artifact_type=_media_type(obj, "artifactType"),
            config=Descriptor.from_obj(config),
            layers=_descriptors(obj, "layers"),
            subject=_subject(obj),
            annotations=obj.str_map("annotations") or {},
        )

    def to_dict(self) -> JSONObject:
        out: JSONObject = {"schemaVersion": self.schema_version}
        put(out, "mediaType", self.media_type)
        put(out, "artifactType", self.artifact_type)
        out["config"] = self.config.to_dict()
        out["layers"] = [layer.to_dict() for layer in self.layers]
        put(out, "subject", self.subject.to_dict() if self.subject else None)
        put(out, "annotations", sorted_map(self.annotations))
        return out

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())


@dataclass(frozen=True)
class ImageIndex:
    """An OCI image index or a Docker manifest list (by ``media_type``)."""

    manifests: tuple[Descriptor, ...]
    media_type: str | None = mt.OCI_INDEX
    schema_version: int = 2
    artifact_type: str | None = None
    subject: Descriptor | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: bytes | str | Mapping[str, Any]) -> ImageIndex:
        obj = _doc(data, "index")
        media_type = _media_type(obj, "mediaType")
        if media_type in mt.MANIFEST_TYPES:
            raise fail(obj.at("mediaType"), f"{media_type} is a manifest, not an index")
        for item in obj.obj_list("manifests", required=True) or []:
            # Each entry's platform, when present, must name os and architecture.
            if (platform := item.obj("platform")) is not None:
                Platform.from_obj(platform)
        return cls(
            schema_version=_schema_version(obj),
            media_type=media_type,
            artifact_type=_media_type(obj, "artifactType"),
            manifests=_descriptors(obj, "manifests"),
            subject=_subject(obj),
            annotations=obj.str_map("annotations") or {},
        )

    def to_dict(self) -> JSONObject:
        out: JSONObject = {"schemaVersion": self.schema_version}
        put(out, "mediaType", self.media_type)
        put(out, "artifactType", self.artifact_type)
        out["manifests"] = [m.to_dict() for m in self.manifests]
        put(out, "subject", self.subject.to_dict() if self.subject else None)
        put(out, "annotations", sorted_map(self.annotations))
        return out

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())


_CONTAINER_CONFIG_KEYS = frozenset(
    {
        "User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir",
        "Labels", "StopSignal", "ArgsEscaped", "Healthcheck", "OnBuild", "Shell",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ContainerConfig:
    """The ``config`` object of an image config (what a container runs with).

    Docker-only keys layerkit writes (Healthcheck, OnBuild, Shell) are typed;
    any other key (Hostname, AttachStdin, ...) is kept verbatim in ``extra``.
    """

    user: str | None = None
    exposed_ports: Mapping[str, Mapping[str, Any]] | None = None
    env: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    volumes: Mapping[str, Mapping[str, Any]] | None = None
    working_dir: str | None = None
    labels: Mapping[str, str] | None = None
    stop_signal: str | None = None
    args_escaped: bool | None = None
    healthcheck: Mapping[str, Any] | None = None
    on_build: tuple[str, ...] | None = None
    shell: tuple[str, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_obj(cls, obj: Obj) -> ContainerConfig:
        for i, entry in enumerate(obj.str_list("Env") or ()):
            if not _ENV_RE.fullmatch(entry):
                raise fail(f"{obj.at('Env')}[{i}]", f"{entry!r} is not of the form KEY=value")
        healthcheck = obj.obj("Healthcheck")
        # Empty values mean the same as absent ones and are omitted on output, so
        # they are normalised to None here to make parse(serialise(x)) == x.
        return cls(
            user=obj.get_str("User") or None,
            exposed_ports=obj.obj_map("ExposedPorts") or None,
            env=obj.str_list("Env") or None,
            entrypoint=obj.str_list("Entrypoint") or None,
            cmd=obj.str_list("Cmd") or None,
            volumes=obj.obj_map("Volumes") or None,
            working_dir=obj.get_str("WorkingDir") or None,
            labels=obj.str_map("Labels") or None,
            stop_signal=obj.get_str("StopSignal") or None,
            args_escaped=obj.get_bool("ArgsEscaped"),
            healthcheck=(healthcheck.data or None) if healthcheck else None,
            on_build=obj.str_list("OnBuild") or None,
            shell=obj.str_list("Shell") or None,
            extra=obj.extra(_CONTAINER_CONFIG_KEYS),
        )

    def to_dict(self) -> JSONObject:
        out: JSONObject = {}
        put(out, "User", self.user)
        put(out, "ExposedPorts", sorted_map(self.exposed_ports))
        put(out, "Env", None if self.env is None else list(self.env))
        put(out, "Entrypoint", None if self.entrypoint is None else list(self.entrypoint))
        put(out, "Cmd", None if self.cmd is None else list(self.cmd))
        put(out, "Volumes", sorted_map(self.volumes))
        put(out, "WorkingDir", self.working_dir)
        put(out, "Labels", sorted_map(self.labels))
        put(out, "StopSignal", self.stop_signal)
        put(out, "ArgsEscaped", self.args_escaped)
        put(out, "Healthcheck", self.healthcheck)
        put(out, "OnBuild", None if self.on_build is None else list(self.on_build))
        put(out, "Shell", None if self.shell is None else list(self.shell))
        out.update(sorted_map(self.extra) or {})
        return out


@dataclass(frozen=True)
class RootFS:
    diff_ids: tuple[str, ...]
    type: str = "layers"

    @classmethod
    def from_obj(cls, obj: Obj) -> RootFS:
        kind = obj.req_str("type")
        if kind != "layers":
            raise fail(obj.at("type"), f"expected 'layers', got {kind!r}")
        diff_ids = obj.str_list("diff_ids", required=True)
        assert diff_ids is not None
        for i, diff_id in enumerate(diff_ids):
            if (problem := digest_problem(diff_id)) is not None:
                raise fail(f"{obj.at('diff_ids')}[{i}]", problem)
        return cls(diff_ids=diff_ids, type=kind)

    def to_dict(self) -> JSONObject:
        return {"type": self.type, "diff_ids": list(self.diff_ids)}


@dataclass(frozen=True)
class History:
    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False

    @classmethod
    def from_obj(cls, obj: Obj) -> History:
        return cls(
            created=_created(obj, "created") or None,
            created_by=obj.get_str("created_by") or None,
            author=obj.get_str("author") or None,
            comment=obj.get_str("comment") or None,
            empty_layer=bool(obj.get_bool("empty_layer")),
        )

    def to_dict(self) -> JSONObject:
        out: JSONObject = {}
        put(out, "created", self.created)
        put(out, "created_by", self.created_by)
        put(out, "author", self.author)
        put(out, "comment", self.comment)
        if self.empty_layer:
            out["empty_layer"] = True
        return out


_IMAGE_CONFIG_KEYS = frozenset(
    {
        "created", "author", "architecture", "os", "os.version", "os.features", "variant",
        "config", "rootfs", "history",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ImageConfig:
    """An OCI image config (``application/vnd.oci.image.config.v1+json``, and Docker's)."""

    architecture: str
    os: str
    rootfs: RootFS
    created: str | None = None
    author: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()
    variant: str | None = None
    config: ContainerConfig | None = None
    history: tuple[History, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: bytes | str | Mapping[str, Any]) -> ImageConfig:
        obj = _doc(data, "config")
        rootfs = obj.obj("rootfs", required=True)
        config = obj.obj("config")
        history = obj.obj_list("history") or []
        assert rootfs is not None
        return cls(
            created=_created(obj, "created") or None,
            author=obj.get_str("author") or None,
            architecture=obj.req_str("architecture"),
            os=obj.req_str("os"),
            os_version=obj.get_str("os.version") or None,
            os_features=obj.str_list("os.features") or (),
            variant=obj.get_str("variant") or None,
            config=ContainerConfig.from_obj(config) if config else None,
            rootfs=RootFS.from_obj(rootfs),
            history=tuple(History.from_obj(h) for h in history),
            extra=obj.extra(_IMAGE_CONFIG_KEYS),
        )

    @property
    def platform(self) -> Platform:
        return Platform(
            architecture=self.architecture,
            os=self.os,
            os_version=self.os_version,
            os_features=self.os_features,
            variant=self.variant,
        )

    def to_dict(self) -> JSONObject:
        out: JSONObject = {}
        put(out, "created", self.created)
        put(out, "author", self.author)
        out["architecture"] = self.architecture
        out["os"] = self.os
        put(out, "os.version", self.os_version)
        put(out, "os.features", list(self.os_features))
        put(out, "variant", self.variant)
        put(out, "config", self.config.to_dict() if self.config else None)
        out["rootfs"] = self.rootfs.to_dict()
        put(out, "history", [h.to_dict() for h in self.history])
        out.update(sorted_map(self.extra) or {})
        return out

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())


@dataclass(frozen=True)
class OCILayout:
    """The ``oci-layout`` file at the root of an image layout."""

    image_layout_version: str = "1.0.0"

    @classmethod
    def from_json(cls, data: bytes | str | Mapping[str, Any]) -> OCILayout:
        obj = _doc(data, "oci-layout")
        version = obj.req_str("imageLayoutVersion")
        if version != "1.0.0":
            raise fail(obj.at("imageLayoutVersion"), f"unsupported version {version!r}")
        return cls(version)

    def to_json(self) -> bytes:
        return canonical_json({"imageLayoutVersion": self.image_layout_version})


Document = Descriptor | ImageManifest | ImageIndex | ImageConfig | OCILayout

_PARSERS: dict[str, Any] = {
    mt.OCI_DESCRIPTOR: Descriptor.from_json,
    mt.OCI_LAYOUT_HEADER: OCILayout.from_json,
    mt.OCI_MANIFEST: ImageManifest.from_json,
    mt.DOCKER_MANIFEST: ImageManifest.from_json,
    mt.OCI_INDEX: ImageIndex.from_json,
    mt.DOCKER_MANIFEST_LIST: ImageIndex.from_json,
    mt.OCI_CONFIG: ImageConfig.from_json,
    mt.DOCKER_CONFIG: ImageConfig.from_json,
}


def parse_document(data: bytes | str, media_type: str) -> Document:
    """Parse ``data`` as the document kind named by ``media_type``."""
    try:
        parser = _PARSERS[media_type]
    except KeyError:
        raise ValueError(f"no model for media type {media_type!r}") from None
    result: Document = parser(data)
    return result
