"""Reads untyped JSON values into typed Python values, naming the JSON path on error.

The OCI models use it so that every rejection says exactly which field is wrong,
for example ``manifest.layers[2].size: expected an integer, got string``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from layerkit.content.errors import InvalidDocumentError

JSONObject = dict[str, Any]


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def load_json(data: bytes | str, what: str) -> object:
    """Parse JSON text; raise InvalidDocumentError naming ``what`` when it is not JSON."""
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidDocumentError(
            f"{what}: not valid JSON: {e}",
            hint="the document is corrupted or not a JSON document at all",
        ) from None


def fail(where: str, problem: str) -> InvalidDocumentError:
    return InvalidDocumentError(f"{where}: {problem}")


class Obj:
    """A JSON object plus its path, with typed getters."""

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise fail(where, f"expected an object, got {_type_name(value)}")
        self.data: JSONObject = value
        self.where = where

    def at(self, key: str) -> str:
        return f"{self.where}.{key}"

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> object:
        return self.data.get(key)

    def get_str(self, key: str, *, required: bool = False) -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise fail(self.at(key), f"expected a string, got {_type_name(value)}")
        return value

    def req_str(self, key: str) -> str:
        value = self.get_str(key, required=True)
        assert value is not None
        return value

    def get_int(self, key: str, *, required: bool = False) -> int | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise fail(self.at(key), f"expected an integer, got {_type_name(value)}")
        return value

    def get_bool(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise fail(self.at(key), f"expected a boolean, got {_type_name(value)}")
        return value

    def str_list(self, key: str, *, required: bool = False) -> tuple[str, ...] | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise fail(self.at(key), f"expected an array of strings, got {_type_name(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise fail(f"{self.at(key)}[{i}]", f"expected a string, got {_type_name(item)}")
        return tuple(value)

    def str_map(self, key: str) -> dict[str, str] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise fail(self.at(key), f"expected an object of strings, got {_type_name(value)}")
        for k, v in value.items():
            if not isinstance(v, str):
                raise fail(f"{self.at(key)}[{k!r}]", f"expected a string, got {_type_name(v)}")
        return dict(value)

    def obj_map(self, key: str) -> dict[str, JSONObject] | None:
        """An object whose values are objects (ExposedPorts, Volumes: a string set)."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise fail(self.at(key), f"expected an object, got {_type_name(value)}")
        for k, v in value.items():
            if not isinstance(v, dict):
                raise fail(f"{self.at(key)}[{k!r}]", f"expected an object, got {_type_name(v)}")
        return dict(value)

    def obj(self, key: str, *, required: bool = False) -> Obj | None:
        value = self._get(key, required)
        return None if value is None else Obj(value, self.at(key))

    def obj_list(self, key: str, *, required: bool = False) -> list[Obj] | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise fail(self.at(key), f"expected an array, got {_type_name(value)}")
        return [Obj(item, f"{self.at(key)}[{i}]") for i, item in enumerate(value)]

    def extra(self, known: frozenset[str]) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k not in known}

    def _get(self, key: str, required: bool) -> object:
        value = self.data.get(key)
        if value is None and required:
            raise fail(self.at(key), "required field is missing")
        return value


def put(out: JSONObject, key: str, value: object) -> None:
    """Set ``key`` unless ``value`` is None or an empty mapping/sequence (Go's omitempty)."""
    if value is None:
        return
    if isinstance(value, Mapping | tuple | list | str) and len(value) == 0:
        return
    out[key] = value


def sorted_map(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Go's encoding/json writes map keys sorted; so do we."""
    if value is None:
        return None
    return {k: value[k] for k in sorted(value)}
