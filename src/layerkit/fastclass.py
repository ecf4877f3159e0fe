"""``@dataclass`` without the import-time cost.

CPython 3.11's :mod:`dataclasses` writes up to six methods per class as source
text and compiles each with ``exec`` when the class is defined: about 0.7 ms a
class. A build imports ~160 of layerkit's dataclasses, so that alone was 0.1 s
of a 0.35 s one-line rebuild, paid again by every CLI start.

:func:`dataclass` here makes the same classes from shared, generic methods (no
code is generated; a class costs ~20 us) and fills in ``__dataclass_fields__``
with ordinary :class:`dataclasses.Field` objects, so ``dataclasses.fields``,
``replace``, ``asdict`` and ``is_dataclass`` work unchanged, and mypy checks
them as dataclasses (``dataclass_transform``). Instances take ~1 us longer to
create, which no layerkit path notices.

It covers what layerkit uses: ``frozen``, ``kw_only``, ``eq``, ``repr``,
``ClassVar``, inheritance, and ``field(default, default_factory, init, repr,
compare, hash, kw_only)``. Anything else (``slots``, ``order``,
``unsafe_hash``, ``InitVar``) and any Python whose private field marker we
cannot find is handed to the standard decorator, which stays the reference:
``tests/unit/test_fastclass.py`` compares the two on every behaviour above.
"""

from __future__ import annotations

import abc
import dataclasses
import reprlib
from collections.abc import Callable
from types import MemberDescriptorType, SimpleNamespace
from typing import Any, ClassVar, TypeVar, dataclass_transform, overload

__all__ = ["dataclass"]

_T = TypeVar("_T")
_MISSING: Any = dataclasses.MISSING
# The marker ``dataclasses.fields()`` filters on. Private, so only used when present.
_FIELD: Any = getattr(dataclasses, "_FIELD", None)
_CLASSVAR_PREFIXES = ("ClassVar", "typing.ClassVar", "t.ClassVar")


@overload
def dataclass(cls: type[_T], /) -> type[_T]: ...


@overload
def dataclass(
    *, init: bool = True, repr: bool = True, eq: bool = True, order: bool = False,
    unsafe_hash: bool = False, frozen: bool = False, match_args: bool = True,
    kw_only: bool = False, slots: bool = False,
) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def dataclass(
    cls: type[_T] | None = None, /, *, init: bool = True, repr: bool = True,
    eq: bool = True, order: bool = False, unsafe_hash: bool = False, frozen: bool = False,
    match_args: bool = True, kw_only: bool = False, slots: bool = False,
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """Drop-in for :func:`dataclasses.dataclass` (same arguments, same result)."""

    def wrap(c: type[_T]) -> type[_T]:
        if not init or order or unsafe_hash or slots or _FIELD is None or _has_initvar(c):
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


def _collect_fields(cls: type, kw_only: bool, frozen: bool) -> dict[str, dataclasses.Field[Any]]:
    fields: dict[str, dataclasses.Field[Any]] = {}
    for base in cls.__mro__[-1:0:-1]:
        base_fields = base.__dict__.get("__dataclass_fields__")
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
        if isinstance(default, dataclasses.Field):
            f = default
        else:
            if isinstance(default, MemberDescriptorType):
                default = _MISSING
            f = dataclasses.field(default=default)
        f.name = name
        f.type = annotation
        f._field_type = _FIELD
        if f.kw_only is _MISSING:
            f.kw_only = kw_only
        if f.default is not _MISSING and f.default.__class__.__hash__ is None:
            raise ValueError(f"mutable default {type(f.default)} for field {name} is not "
                             "allowed: use default_factory")
        if isinstance(default, dataclasses.Field):
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
    cls.__dataclass_fields__ = fields  # type: ignore[attr-defined]
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
        abc.update_abstractmethods(cls)
    return cls


def _set_new(cls: type, name: str, value: object) -> None:
    if name not in cls.__dict__:
        setattr(cls, name, value)


def _make_init(cls: type, all_fields: tuple[dataclasses.Field[Any], ...],
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
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)  # type: ignore[arg-type]

    return __setattr__


def _make_delattr(cls: type, names: frozenset[str]) -> Callable[[Any, str], None]:
    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)  # type: ignore[arg-type]

    return __delattr__
