"""``@dataclass`` without the import-time cost.

CPython 3.11's :mod:`dataclasses` writes up to six methods per class as source
text and compiles each with ``exec`` when the class is defined: about 0.7 ms a
class. A build imports ~160 of layerkit's dataclasses, so that alone was 0.1 s
of a 0.35 s one-line rebuild, paid again by every CLI start.

:func:`dataclass` here makes the same classes from shared, generic methods (no
code is generated; a class costs ~20 us), and mypy checks them as dataclasses
(``dataclass_transform``). Instances take ~1 us longer to create, which no
layerkit path notices.

It covers what layerkit uses: ``frozen``, ``kw_only``, ``eq``, ``repr``,
``ClassVar``, inheritance, and ``field(default, default_factory, init, repr,
compare, hash, metadata, kw_only)``. Anything else (``slots``, ``order``,
``unsafe_hash``, ``InitVar``) and any Python whose private field marker we
cannot find is handed to the standard decorator, which stays the reference:
``tests/unit/test_fastclass.py`` compares the two on every behaviour above.

Importing :mod:`dataclasses` itself costs 5-9 ms (it imports ``inspect``, ``ast``,
``dis`` and ``tokenize``), so this module does not: its own :func:`field`,
:func:`replace`, :func:`asdict` and :func:`fields` serve layerkit's classes, and
the standard ``__dataclass_fields__`` (real ``dataclasses.Field`` objects) is built
on first access, importing :mod:`dataclasses` then (``dataclasses.replace``,
``asdict``, ``is_dataclass`` and subclassing by the standard decorator work).
"""

from __future__ import annotations

import reprlib
import sys
from collections.abc import Callable, Mapping
from types import MemberDescriptorType, SimpleNamespace
from typing import Any, ClassVar, TypeVar, dataclass_transform, overload

__all__ = ["Field", "asdict", "dataclass", "field", "fields", "replace"]

_T = TypeVar("_T")
_CLASSVAR_PREFIXES = ("ClassVar", "typing.ClassVar", "t.ClassVar")
_OWN_FIELDS = "__fastclass_fields__"
# The standard view (_StandardFields) relies on dataclasses' private field marker,
# checked on these versions by tests/unit/test_fastclass.py; elsewhere, the standard
# decorator makes every class.
_CHECKED_PYTHON = sys.version_info[:2] in ((3, 11), (3, 12))


class _MissingType:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _MissingType()
_MISSING: Any = MISSING


class Field:
    """A field's options, as :class:`dataclasses.Field` holds them."""

    __slots__ = ("compare", "default", "default_factory", "hash", "init", "kw_only",
                 "metadata", "name", "repr", "type")

    def __init__(self, default: Any, default_factory: Any, init: bool, repr: bool,
                 hash: bool | None, compare: bool, metadata: Mapping[Any, Any] | None,
                 kw_only: Any) -> None:
        self.name: str = ""
        self.type: Any = None
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr
        self.hash = hash
        self.compare = compare
        self.metadata: Mapping[Any, Any] = metadata if metadata is not None else {}
        self.kw_only = kw_only

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r})"


@overload
def field(*, default: _T, init: bool = ..., repr: bool = ..., hash: bool | None = ...,
          compare: bool = ..., metadata: Mapping[Any, Any] | None = ...,
          kw_only: bool = ...) -> _T: ...


@overload
def field(*, default_factory: Callable[[], _T], init: bool = ..., repr: bool = ...,
          hash: bool | None = ..., compare: bool = ..., metadata: Mapping[Any, Any] | None = ...,
          kw_only: bool = ...) -> _T: ...


@overload
def field(*, init: bool = ..., repr: bool = ..., hash: bool | None = ..., compare: bool = ...,
          metadata: Mapping[Any, Any] | None = ..., kw_only: bool = ...) -> Any: ...


def field(*, default: Any = MISSING, default_factory: Any = MISSING, init: bool = True,
          repr: bool = True, hash: bool | None = None, compare: bool = True,
          metadata: Mapping[Any, Any] | None = None, kw_only: Any = MISSING) -> Any:
    """Drop-in for :func:`dataclasses.field`."""
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory, init, repr, hash, compare, metadata, kw_only)


def _from_std(f: Any) -> Field:
    """A ``dataclasses.Field`` written in a class body, as our own."""
    return Field(_own(f.default), _own(f.default_factory), f.init, f.repr, f.hash, f.compare,
                 f.metadata, _own(f.kw_only))


def _own(value: Any) -> Any:
    return MISSING if type(value).__name__ == "_MISSING_TYPE" else value


def _is_std_field(value: object) -> bool:
    cls = type(value)
    return cls.__name__ == "Field" and cls.__module__ == "dataclasses"


@overload
def dataclass(cls: type[_T], /) -> type[_T]: ...


@overload
def dataclass(
    *, init: bool = True, repr: bool = True, eq: bool = True, order: bool = False,
    unsafe_hash: bool = False, frozen: bool = False, match_args: bool = True,
    kw_only: bool = False, slots: bool = False,
) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(field_specifiers=(field, Field))
def dataclass(
    cls: type[_T] | None = None, /, *, init: bool = True, repr: bool = True,
    eq: bool = True, order: bool = False, unsafe_hash: bool = False, frozen: bool = False,
    match_args: bool = True, kw_only: bool = False, slots: bool = False,
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """Drop-in for :func:`dataclasses.dataclass` (same arguments, same result)."""

    def wrap(c: type[_T]) -> type[_T]:
        if not init or order or unsafe_hash or slots or _has_initvar(c) or not _CHECKED_PYTHON:
            import dataclasses

            return dataclasses.dataclass(
                c, init=init, repr=repr, eq=eq, order=order, unsafe_hash=unsafe_hash,
                frozen=frozen, match_args=match_args, kw_only=kw_only, slots=slots)
        return _process(c, repr=repr, eq=eq, frozen=frozen, match_args=match_args,
                        kw_only=kw_only)

    return wrap if cls is None else wrap(cls)


def _has_initvar(cls: type) -> bool:
    # Not inspect.get_annotations: importing inspect costs more than this module saves.
    annotations = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    return any("InitVar" in str(a) for a in annotations.values())


def _is_classvar(annotation: object) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(_CLASSVAR_PREFIXES)
    return annotation is ClassVar or getattr(annotation, "__origin__", None) is ClassVar


def _base_fields(base: type) -> dict[str, Field] | None:
    own = base.__dict__.get(_OWN_FIELDS)
    if own is not None:
        result: dict[str, Field] = own
        return result
    std = base.__dict__.get("__dataclass_fields__")
    if isinstance(std, dict):  # a base made by the standard decorator
        converted = {}
        for f in std.values():
            if type(f._field_type).__name__ == "_FIELD_BASE" and str(f._field_type) == "_FIELD":
                mine = _from_std(f)
                mine.name, mine.type = f.name, f.type
                converted[f.name] = mine
        return converted
    return None


def _collect_fields(cls: type, kw_only: bool, frozen: bool) -> dict[str, Field]:
    fields: dict[str, Field] = {}
    for base in cls.__mro__[-1:0:-1]:
        base_fields = _base_fields(base)
        if base_fields is None:
            continue
        if base.__dict__["__dataclass_params__"].frozen != frozen:
            raise TypeError("cannot inherit frozen dataclass from a non-frozen one" if frozen
                            else "cannot inherit non-frozen dataclass from a frozen one")
        for f in base_fields.values():
            fields[f.name] = f
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 (see _has_initvar)
    for name, annotation in own.items():
        if _is_classvar(annotation):
            continue
        default = cls.__dict__.get(name, _MISSING)
        explicit = isinstance(default, Field) or _is_std_field(default)
        if isinstance(default, Field):
            f = default
        elif explicit:
            f = _from_std(default)
        else:
            if isinstance(default, MemberDescriptorType):
                default = _MISSING
            f = field(default=default)
        f.name = name
        f.type = annotation
        if f.kw_only is _MISSING:
            f.kw_only = kw_only
        if f.default is not _MISSING and f.default.__class__.__hash__ is None:
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not "
                             "allowed: use default_factory")
        if explicit:
            if f.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        fields[name] = f
    seen_default = False
    for f in fields.values():
        if not f.init or f.kw_only:
            continue
        has_default = f.default is not _MISSING or f.default_factory is not _MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
        seen_default = seen_default or has_default
    return fields


def _process(cls: type[_T], *, repr: bool, eq: bool, frozen: bool, match_args: bool,
             kw_only: bool) -> type[_T]:
    fields = _collect_fields(cls, kw_only, frozen)
    all_fields = tuple(fields.values())
    setattr(cls, _OWN_FIELDS, fields)
    cls.__dataclass_fields__ = _StandardFields()  # type: ignore[attr-defined]
    cls.__dataclass_params__ = SimpleNamespace(  # type: ignore[attr-defined]
        init=True, repr=repr, eq=eq, order=False, unsafe_hash=False, frozen=frozen,
        match_args=match_args, kw_only=kw_only, slots=False)
    positional = tuple(f.name for f in all_fields if not f.kw_only)
    _set_new(cls, "__init__", _make_init(cls, all_fields, positional, frozen))
    if repr:
        _set_new(cls, "__repr__", _make_repr(tuple(f.name for f in all_fields if f.repr)))
    compared = tuple(f.name for f in all_fields if f.compare)
    if eq:
        _set_new(cls, "__eq__", _make_eq(compared))
    if frozen:
        names = frozenset(fields)
        for name, method in (("__setattr__", _make_setattr(cls, names)),
                             ("__delattr__", _make_delattr(cls, names))):
            if name in cls.__dict__:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
            setattr(cls, name, method)
    class_hash = cls.__dict__.get("__hash__", _MISSING)
    explicit_hash = not (class_hash is _MISSING or (class_hash is None and "__eq__" in
                                                    cls.__dict__))
    if eq and not explicit_hash:
        if frozen:
            hashed = tuple(f.name for f in all_fields
                           if (f.compare if f.hash is None else f.hash))
            cls.__hash__ = _make_hash(hashed)  # type: ignore[assignment]
        else:
            cls.__hash__ = None  # type: ignore[assignment]
    if match_args:
        _set_new(cls, "__match_args__", positional)
    if getattr(cls, "__abstractmethods__", None):
        import abc

        abc.update_abstractmethods(cls)
    return cls


def _set_new(cls: type, name: str, value: object) -> None:
    if name not in cls.__dict__:
        setattr(cls, name, value)


def _make_init(cls: type, all_fields: tuple[Field, ...],
               positional: tuple[str, ...], frozen: bool) -> Callable[..., None]:
    qualname = f"{cls.__qualname__}.__init__()"
    init_names = frozenset(f.name for f in all_fields if f.init)
    plan: tuple[tuple[str, bool, Any, Any], ...] = tuple(
        (f.name, f.init, f.default, f.default_factory) for f in all_fields)
    set_attr = object.__setattr__ if frozen else setattr
    post_init = hasattr(cls, "__post_init__")
    # The interpreter's own wording for a bad call, as the generated __init__ gives.
    optional = sum(1 for f in all_fields if f.name in positional and (
        f.default is not _MISSING or f.default_factory is not _MISSING))
    most, least = len(positional) + 1, len(positional) + 1 - optional
    too_many = (f"takes {most} positional argument{'s' if most != 1 else ''}" if least == most
                else f"takes from {least} to {most} positional arguments")
    required = tuple((f.name, "keyword-only" if f.kw_only else "positional")
                     for f in all_fields if f.init and f.default is _MISSING
                     and f.default_factory is _MISSING)

    names = tuple(f.name for f in all_fields)
    # Every field given by position, the common call in hot loops: no bookkeeping.
    simple = len(positional) == len(all_fields)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if simple and not kwargs and len(args) == len(names):
            for name, value in zip(names, args, strict=True):
                set_attr(self, name, value)
            if post_init:
                self.__post_init__()
            return
        if len(args) > len(positional):
            raise TypeError(f"{qualname} {too_many} but {len(args) + 1} were given")
        values = dict(zip(positional, args, strict=False))  # fewer args: rest by name
        for key, value in kwargs.items():
            if key not in init_names:
                raise TypeError(f"{qualname} got an unexpected keyword argument {key!r}")
            if key in values:
                raise TypeError(f"{qualname} got multiple values for argument {key!r}")
            values[key] = value
        for name, in_init, default, factory in plan:
            if in_init and name in values:
                value = values[name]
            elif default is not _MISSING:
                value = default
            elif factory is not _MISSING:
                value = factory()
            else:
                raise TypeError(_missing(qualname, required, values))
            set_attr(self, name, value)
        if post_init:
            self.__post_init__()

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _missing(qualname: str, required: tuple[tuple[str, str], ...],
             given: dict[str, Any]) -> str:
    for kind in ("positional", "keyword-only"):
        names = [repr(n) for n, k in required if k == kind and n not in given]
        if names:
            listed = (names[0] if len(names) == 1 else f"{names[0]} and {names[1]}"
                      if len(names) == 2 else ", ".join(names[:-1]) + f", and {names[-1]}")
            plural = "s" if len(names) > 1 else ""
            return f"{qualname} missing {len(names)} required {kind} argument{plural}: {listed}"
    return f"{qualname} missing a required argument"


def _make_repr(names: tuple[str, ...]) -> Callable[[Any], str]:
    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{self.__class__.__qualname__}({inner})"

    return __repr__


def _make_eq(names: tuple[str, ...]) -> Callable[[Any, object], Any]:
    def __eq__(self: Any, other: object) -> Any:
        if other.__class__ is self.__class__:
            # Tuples, as the standard method compares (identity first, then ==).
            return tuple(getattr(self, n) for n in names) == tuple(
                getattr(other, n) for n in names)
        return NotImplemented

    return __eq__


def _make_hash(names: tuple[str, ...]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, n) for n in names))

    return __hash__


def _make_setattr(cls: type, names: frozenset[str]) -> Callable[[Any, str, Any], None]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            from dataclasses import FrozenInstanceError

            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)  # type: ignore[arg-type]

    return __setattr__


def _make_delattr(cls: type, names: frozenset[str]) -> Callable[[Any, str], None]:
    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            from dataclasses import FrozenInstanceError

            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)  # type: ignore[arg-type]

    return __delattr__


class _StandardFields:
    """``__dataclass_fields__`` of a fastclass: real ``dataclasses.Field`` objects,
    made (importing :mod:`dataclasses`) the first time anything asks."""

    def __get__(self, obj: object, cls: type) -> dict[str, Any]:
        import dataclasses

        marker = dataclasses._FIELD  # type: ignore[attr-defined]
        real: dict[str, Any] = {}
        for f in getattr(cls, _OWN_FIELDS).values():
            std: Any = dataclasses.field(
                default=dataclasses.MISSING if f.default is MISSING else f.default,
                default_factory=(dataclasses.MISSING if f.default_factory is MISSING
                                 else f.default_factory),
                init=f.init, repr=f.repr, hash=f.hash, compare=f.compare,
                metadata=f.metadata or None, kw_only=f.kw_only)
            std.name, std.type = f.name, f.type
            std._field_type = marker
            real[f.name] = std
        cls.__dataclass_fields__ = real  # type: ignore[attr-defined]  # computed once
        return real


def fields(obj: Any) -> tuple[Field, ...]:
    """Drop-in for :func:`dataclasses.fields` on layerkit's classes (own Field objects,
    with the same attributes)."""
    own = getattr(obj if isinstance(obj, type) else type(obj), _OWN_FIELDS, None)
    if own is None:
        import dataclasses

        return dataclasses.fields(obj)  # type: ignore[return-value]
    return tuple(own.values())


def replace(obj: _T, /, **changes: Any) -> _T:
    """Drop-in for :func:`dataclasses.replace`."""
    own = getattr(type(obj), _OWN_FIELDS, None)
    if own is None:
        import dataclasses

        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    for name in own:
        if name not in changes:
            changes[name] = getattr(obj, name)
    return type(obj)(**changes)


_ATOMIC = (str, int, float, bool, bytes, type(None), complex)


def asdict(obj: Any) -> dict[str, Any]:
    """Drop-in for :func:`dataclasses.asdict` (same recursion, same copies)."""
    if getattr(type(obj), _OWN_FIELDS, None) is None:
        import dataclasses

        return dataclasses.asdict(obj)
    result: dict[str, Any] = _asdict_inner(obj)
    return result


def _asdict_inner(obj: Any) -> Any:
    if type(obj) in _ATOMIC:
        return obj  # what deepcopy returns for them
    own = getattr(type(obj), _OWN_FIELDS, None)
    if own is not None:
        return {name: _asdict_inner(getattr(obj, name)) for name in own}
    if hasattr(type(obj), "__dataclass_fields__"):  # one made by the standard decorator
        import dataclasses

        return dataclasses.asdict(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return type(obj)(*[_asdict_inner(v) for v in obj])
    if isinstance(obj, (list, tuple)):
        return type(obj)(_asdict_inner(v) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((_asdict_inner(k), _asdict_inner(v)) for k, v in obj.items())
    import copy

    return copy.deepcopy(obj)
