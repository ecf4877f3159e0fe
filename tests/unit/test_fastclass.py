"""layerkit.fastclass.dataclass against the standard decorator, behaviour by behaviour.

Every class here is defined twice from one body, once by each decorator; the
two must be indistinguishable through every feature layerkit uses.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from layerkit import fastclass

Decorator = Callable[..., Any]
DECORATORS = {"stdlib": dataclasses.dataclass, "fast": fastclass.dataclass}


def make(decorator: Decorator, **options: Any) -> dict[str, type]:
    """A family of classes covering the features, decorated by ``decorator``."""

    @decorator(frozen=True)
    class Point:
        x: int
        y: int = 0
        label: str = dataclasses.field(default="", compare=False)
        tags: tuple[str, ...] = ()
        extra: list[int] = dataclasses.field(default_factory=list, repr=False, compare=False)
        unit: ClassVar[str] = "px"

        def norm(self) -> int:
            return abs(self.x) + abs(self.y)

    @decorator(frozen=True, kw_only=True)
    class Base:
        line: int
        text: str = ""

    @decorator(frozen=True, kw_only=True)
    class Child(Base):
        keyword: ClassVar[str] = "CHILD"
        value: str
        count: int = 1
        hidden: int = dataclasses.field(default=0, hash=False)

    @decorator
    class Mutable:
        name: str
        items: dict[str, int] = dataclasses.field(default_factory=dict)

    @decorator(eq=False)
    class NoEq:
        a: int

    @decorator(frozen=True)
    class ExplicitHash:
        a: int

        def __hash__(self) -> int:
            return 42

    @decorator(frozen=True)
    class Location:
        file: str
        line: int | None = None

    class Failure(Exception):
        pass

    @decorator(frozen=True)
    class Diagnostic(Failure):
        where: Location
        hint: str = ""

    return {c.__name__: c for c in (Point, Base, Child, Mutable, NoEq, ExplicitHash,
                                    Location, Diagnostic)}


STD, FAST = make(dataclasses.dataclass), make(fastclass.dataclass)


def both(name: str) -> tuple[type, type]:
    return STD[name], FAST[name]


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    """What a call does: its value's repr, or the exception type and message."""
    try:
        return "value", repr(fn())
    except Exception as exc:  # the comparison is the point
        return type(exc).__name__, str(exc).replace("__init__()", "")


CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("Point", (1,), {}),
    ("Point", (1, 2), {"label": "a", "tags": ("t",)}),
    ("Point", (), {"x": 3, "y": 4, "extra": [1]}),
    ("Point", (1, 2, "l", (), [], 9), {}),
    ("Point", (1,), {"x": 2}),
    ("Point", (), {}),
    ("Point", (1,), {"nope": 1}),
    ("Point", (1,), {"unit": "em"}),
    ("Child", (), {"line": 1, "value": "v"}),
    ("Child", (), {"line": 1, "value": "v", "text": "t", "count": 3, "hidden": 5}),
    ("Child", (1, "v"), {}),
    ("Child", (), {"value": "v"}),
    ("Child", (), {}),
    ("Location", (), {}),
    ("Mutable", ("n",), {}),
    ("NoEq", (1,), {}),
    ("Location", ("Dockerfile", 3), {}),
    ("Diagnostic", (), {"where": None, "hint": "fix it"}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), CALLS)
def test_construction_matches(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    std, fast = both(name)
    assert outcome(lambda: fast(*args, **kwargs)) == outcome(lambda: std(*args, **kwargs))


def pair(name: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
    std, fast = both(name)
    return std(*args, **kwargs), fast(*args, **kwargs)


def test_repr_eq_hash_and_defaults() -> None:
    s, f = pair("Point", 1, 2, label="x")
    assert repr(f) == repr(s)
    assert f == FAST["Point"](1, 2, label="other")  # label is not compared
    assert f != FAST["Point"](1, 3)
    assert f != s  # different classes never compare equal
    assert hash(f) == hash(FAST["Point"](1, 2)) and hash(s) == hash(STD["Point"](1, 2))
    assert f.extra == [] and f.extra is not FAST["Point"](1).extra  # a fresh list each time
    assert f.unit == s.unit == "px" and f.norm() == 3
    nan = float("nan")
    assert FAST["Point"](nan) == FAST["Point"](nan)
    assert (FAST["Point"](nan) == FAST["Point"](nan)) == (STD["Point"](nan) == STD["Point"](nan))


def test_hash_rules() -> None:
    for name in ("Mutable",):
        std, fast = both(name)
        assert (std.__hash__ is None) and (fast.__hash__ is None)  # eq without frozen
    s, f = pair("NoEq", 1)
    assert f != FAST["NoEq"](1) and s != STD["NoEq"](1)  # identity comparison
    assert hash(FAST["ExplicitHash"](1)) == hash(STD["ExplicitHash"](1)) == 42
    a, b = FAST["Child"](line=1, value="v", hidden=1), FAST["Child"](line=1, value="v")
    assert a != b and hash(a) == hash(b)  # hidden is compared but not hashed


def test_frozen() -> None:
    for point in pair("Point", 1):
        with pytest.raises(dataclasses.FrozenInstanceError):
            point.x = 2
        with pytest.raises(dataclasses.FrozenInstanceError):
            del point.y
    for mutable in pair("Mutable", "n"):
        mutable.name = "m"
        assert mutable.name == "m"


def test_frozen_exceptions_keep_working_as_exceptions() -> None:
    for cls in both("Diagnostic"):
        err = cls(where=None, hint="h")
        with pytest.raises(cls) as info:
            raise err
        assert getattr(info.value, "hint", None) == "h"


def test_dataclasses_module_functions() -> None:
    s, f = pair("Child", line=2, value="v", text="t")
    assert dataclasses.is_dataclass(type(f)) and dataclasses.is_dataclass(type(s))
    assert [x.name for x in dataclasses.fields(f)] == [x.name for x in dataclasses.fields(s)]
    assert dataclasses.asdict(f) == dataclasses.asdict(s)
    assert dataclasses.astuple(f) == dataclasses.astuple(s)
    g = dataclasses.replace(f, count=5)
    assert type(g) is type(f) and g.count == 5 and g.line == 2 and f.count == 1
    with pytest.raises(TypeError):
        dataclasses.replace(f, nope=1)
    nested = FAST["Diagnostic"](where=FAST["Location"]("Dockerfile", 1))
    assert dataclasses.asdict(nested) == {"where": {"file": "Dockerfile", "line": 1},
                                          "hint": ""}


def test_match_args_and_pattern_matching() -> None:
    assert FAST["Point"].__match_args__ == STD["Point"].__match_args__  # type: ignore[attr-defined]
    assert FAST["Child"].__match_args__ == STD["Child"].__match_args__ == ()  # type: ignore[attr-defined]
    point_class = FAST["Point"]
    match point_class(5, 6):
        case point_class(x, y):  # type: ignore[misc]
            assert (x, y) == (5, 6)
        case _:
            pytest.fail("positional pattern did not match")


def test_copy_and_pickle() -> None:
    f = FAST["Point"](1, 2, tags=("a",))
    assert copy.copy(f) == f and copy.deepcopy(f) == f
    globals()["PicklePoint"] = fastclass.dataclass(frozen=True)(
        type("PicklePoint", (), {"__annotations__": {"a": "int"}, "__module__": __name__,
                                 "__qualname__": "PicklePoint"}))
    p = globals()["PicklePoint"](7)
    assert pickle.loads(pickle.dumps(p)) == p


def test_definition_errors_match() -> None:
    def mutable_default(decorator: Decorator) -> Any:
        return decorator(type("M", (), {"__annotations__": {"a": "list[int]"}, "a": []}))

    def default_order(decorator: Decorator) -> Any:
        return decorator(type("O", (), {"__annotations__": {"a": "int", "b": "int"}, "a": 1}))

    def unfreeze(decorator: Decorator) -> Any:
        frozen = decorator(frozen=True)(type("F", (), {"__annotations__": {"a": "int"}}))
        return decorator(type("G", (frozen,), {"__annotations__": {"b": "int"}}))

    for definition in (mutable_default, default_order, unfreeze):
        std = outcome(lambda d=definition: d(dataclasses.dataclass))  # type: ignore[misc]
        fast = outcome(lambda d=definition: d(fastclass.dataclass))  # type: ignore[misc]
        assert std[0] != "value" and fast[0] == std[0], (definition.__name__, std, fast)


def test_unsupported_options_use_the_standard_decorator() -> None:
    @fastclass.dataclass(slots=True, frozen=True)
    class Slotted:
        a: int

    @fastclass.dataclass(order=True)
    class Ordered:
        a: int

    assert Slotted.__slots__ == ("a",)
    assert Ordered(1) < Ordered(2)


def test_the_fast_path_is_really_taken() -> None:
    """If this fails, layerkit silently pays the stdlib's import-time cost again."""
    assert fastclass._CHECKED_PYTHON
    init_a: Any = FAST["Point"].__dict__["__init__"]
    init_b: Any = FAST["Mutable"].__dict__["__init__"]
    assert init_a.__code__ is init_b.__code__


def test_own_helpers_match_the_standard_ones() -> None:
    """fastclass.field/replace/asdict/fields (what layerkit's modules use, so that
    dataclasses is never imported on the build path) behave as dataclasses' do."""

    @fastclass.dataclass(frozen=True)
    class Inner:
        n: int
        tags: tuple[str, ...] = ()

    @fastclass.dataclass(frozen=True)
    class Outer:
        inner: Inner
        items: list[Inner] = fastclass.field(default_factory=list)
        meta: dict[str, int] = fastclass.field(default_factory=dict, compare=False,
                                               metadata={"k": 1})

    o = Outer(Inner(1, ("a",)), [Inner(2)], {"x": 3})
    assert fastclass.asdict(o) == dataclasses.asdict(o) == {
        "inner": {"n": 1, "tags": ("a",)}, "items": [{"n": 2, "tags": ()}], "meta": {"x": 3}}
    assert fastclass.asdict(o)["meta"] is not o.meta  # copies, as the standard one does
    assert [f.name for f in fastclass.fields(o)] == [f.name for f in dataclasses.fields(o)]
    assert fastclass.fields(Outer)[2].metadata == {"k": 1} == dataclasses.fields(Outer)[2].metadata
    assert fastclass.replace(o, inner=Inner(5)) == dataclasses.replace(o, inner=Inner(5))
    with pytest.raises(TypeError):
        fastclass.replace(o, nope=1)
    with pytest.raises(ValueError):
        fastclass.field(default=1, default_factory=list)


def test_the_build_path_does_not_import_dataclasses() -> None:
    """Importing dataclasses costs 5-9 ms (inspect, ast, dis): none of the modules a
    cached rebuild loads may need it."""
    import subprocess
    import sys

    code = ("import sys\n"
            "import layerkit.cli, layerkit.worker.memo, layerkit.worker.session, "
            "layerkit.solver.solve, layerkit.worker.local, layerkit.snapshot.snapshotter, "
            "layerkit.worker.commit, layerkit.worker.copyreuse, layerkit.fileops.apply, "
            "layerkit.content.oci, layerkit.graph.ops, layerkit.progress.plain\n"
            "print('dataclasses' in sys.modules, 'inspect' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
