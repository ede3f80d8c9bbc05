"""The @udf decorator, UdfSpec, UdfError and collect (fletch._udf)."""

from __future__ import annotations

import decimal
import pickle
import types
import unittest.mock
from collections.abc import Callable
from typing import Annotated, Any, Optional

import pyarrow as pa
import pytest

import fletch
from fletch import Param, UdfError, UdfSpec, collect, udf
from fletch._eval import exception_type_name


def spec_of(function: Callable[..., Any]) -> UdfSpec:
    spec = getattr(function, "__fletch_udf__", None)
    assert isinstance(spec, UdfSpec)
    return spec


def signature(spec: UdfSpec) -> tuple[list[tuple[str, str, bool]], tuple[str, bool]]:
    described = spec.describe()
    params = [(p["name"], p["type"], p["nullable"]) for p in described["params"]]
    return params, (described["return"]["type"], described["return"]["nullable"])


# -- the decorator -------------------------------------------------------------------------------------------


def test_decorator_returns_the_function_unchanged() -> None:
    def double(x: int) -> int:
        return x * 2

    code = double.__code__
    decorated = udf(double)
    assert decorated is double
    assert double.__code__ is code
    assert double(21) == 42
    assert spec_of(double).function is double


def test_decorator_with_options_returns_the_function_unchanged() -> None:
    def double(x: int) -> int:
        return x * 2

    assert udf(name="twice", volatility="immutable")(double) is double
    assert double(4) == 8
    assert spec_of(double).name == "twice"


def test_bare_and_called_forms_agree() -> None:
    @udf
    def bare(x: int, y: Optional[str]) -> float:
        return 0.0

    @udf()
    def called(x: int, y: Optional[str]) -> float:
        return 0.0

    assert signature(spec_of(bare)) == signature(spec_of(called))


def test_decorated_functions_keep_their_types() -> None:
    # Checked by mypy --strict over this file: the decorator must not erase the signature.
    @udf
    def typed(x: int, name: str) -> str:
        return name * x

    @udf(name="typed_too")
    def typed_too(x: int) -> list[int]:
        return [x]

    def misuse() -> None:
        # Were the signature lost, these ignores would be unused, which mypy --strict reports.
        typed("ab", 2)  # type: ignore[arg-type]
        typed_too("3")  # type: ignore[arg-type]

    text: str = typed(2, "ab")
    items: list[int] = typed_too(3)
    assert (text, items) == ("abab", [3])
    assert callable(misuse)


def test_udf_rejects_a_positional_non_function() -> None:
    with pytest.raises(
        TypeError, match=r"udf\(\) takes the function as its only positional argument, not str"
    ):
        udf("name")  # type: ignore[call-overload]


def test_spec_attributes() -> None:
    @udf(volatility="stable")
    def scale(x: float, factor: Optional[float]) -> float:
        """Scale x.

        By factor.
        """
        return x * (factor or 1.0)

    spec = spec_of(scale)
    assert spec.name == "scale"
    assert spec.function is scale
    assert spec.params == [Param("x", pa.float64(), False), Param("factor", pa.float64(), True)]
    assert spec.result == Param("scale", pa.float64(), False)
    assert spec.vectorized is False
    assert spec.volatility == "stable"
    assert spec.doc == "Scale x.\n\nBy factor."
    assert spec.module == __name__
    assert spec.qualname == "test_spec_attributes.<locals>.scale"


def test_spec_is_frozen() -> None:
    @udf
    def f(x: int) -> int:
        return x

    with pytest.raises(AttributeError):
        spec_of(f).name = "g"  # type: ignore[misc]


DOCS: list[tuple[dict[str, Any], str | None, str]] = [
    ({}, None, ""),
    ({}, "  Indented.\n    More.", "Indented.\nMore."),
    ({"doc": "Explicit."}, "Ignored.", "Explicit."),
    ({"doc": ""}, "Ignored.", ""),
]


@pytest.mark.parametrize(("options", "docstring", "doc"), DOCS)
def test_doc(options: dict[str, Any], docstring: str | None, doc: str) -> None:
    def f(x: int) -> int:
        return x

    f.__doc__ = docstring
    assert spec_of(udf(**options)(f)).doc == doc


def test_describe() -> None:
    @udf(name="weighted", volatility="immutable", doc="Weighted sum.")
    def weighted_sum(
        values: list[Optional[float]], weight: Annotated[Optional[int], pa.int32()]
    ) -> float | None:
        return None

    assert spec_of(weighted_sum).describe() == {
        "name": "weighted",
        "kind": "scalar",
        "language": "python",
        "params": [
            {"name": "values", "type": "list<float64>", "nullable": False},
            {"name": "weight", "type": "int32", "nullable": True},
        ],
        "return": {"name": "weighted", "type": "float64", "nullable": True},
        "doc": "Weighted sum.",
        "volatility": "immutable",
        "on_error": "raise",
        "version": "",
    }


def test_describe_key_order_is_stable() -> None:
    @udf
    def f() -> int:
        return 1

    described = spec_of(f).describe()
    assert list(described) == [
        "name",
        "kind",
        "language",
        "params",
        "return",
        "doc",
        "volatility",
        "on_error",
        "version",
    ]
    assert list(described["return"]) == ["name", "type", "nullable"]


# -- explicit types ------------------------------------------------------------------------------------------


def _untyped(a, b):  # type: ignore[no-untyped-def]
    return a


def _optional_first(a: Optional[int], b: int) -> Optional[str]:
    return None


def _complex_types(a: complex) -> complex:
    return a


def _partly_typed(a: int, b: str) -> int:
    return a


def _unresolvable(a: Missing) -> Missing:  # type: ignore[name-defined]  # noqa: F821
    return a


def _none_default(a: int = None, b: Optional[int] = None) -> int:  # type: ignore[assignment]  # noqa: RUF013
    return 0


def _decimal_return(a: int) -> decimal.Decimal:
    return decimal.Decimal(a)


def test_none_default_does_not_make_a_parameter_optional() -> None:
    # Python 3.10's get_type_hints would say Optional[int] for `a`; every version must describe it alike.
    assert signature(spec_of(udf(_none_default)))[0] == [("a", "int64", False), ("b", "int64", True)]


OVERRIDES: list[tuple[Callable[..., Any], dict[str, Any], list[tuple[str, str, bool]], tuple[str, bool]]] = [
    (
        _untyped,
        {"input_types": ["int32", "utf8"], "result_type": "large_utf8"},
        [("a", "int32", False), ("b", "utf8", False)],
        ("large_utf8", True),
    ),
    (
        _untyped,
        {"input_types": [pa.int16(), pa.list_(pa.float32())], "result_type": pa.bool_()},
        [("a", "int16", False), ("b", "list<float32>", False)],
        ("bool", True),
    ),
    (
        _untyped,
        {"input_types": ("string", "map<string, list<item: double>>"), "result_type": "decimal(12, 2)"},
        [("a", "utf8", False), ("b", "map<utf8, list<float64>>", False)],
        ("decimal128(12, 2)", True),
    ),
    (
        _optional_first,
        {"input_types": ["int8", "int8"], "result_type": "utf8"},
        [("a", "int8", True), ("b", "int8", False)],
        ("utf8", True),
    ),
    (
        _partly_typed,
        {"input_types": ["uint32", "large_utf8"], "result_type": "int32"},
        [("a", "uint32", False), ("b", "large_utf8", False)],
        ("int32", False),  # the annotation says int, not Optional[int]
    ),
    (
        _complex_types,
        {"input_types": ["float64"], "result_type": "float64"},
        [("a", "float64", False)],
        ("float64", False),
    ),
    (
        _unresolvable,
        {"input_types": ["binary"], "result_type": "binary"},
        [("a", "binary", False)],
        ("binary", True),  # annotations that do not resolve are ignored when every type is explicit
    ),
    (
        _partly_typed,
        {"result_type": "utf8"},
        [("a", "int64", False), ("b", "utf8", False)],
        ("utf8", False),
    ),
    (
        _decimal_return,
        {"input_types": ["int16"]},
        [("a", "int16", False)],
        ("decimal128(38, 9)", False),
    ),
]


@pytest.mark.parametrize(
    ("function", "options", "params", "result"),
    OVERRIDES,
    ids=[f"{f.__name__}-{o}" for f, o, _, _ in OVERRIDES],
)
def test_explicit_types(
    function: Callable[..., Any],
    options: dict[str, Any],
    params: list[tuple[str, str, bool]],
    result: tuple[str, bool],
) -> None:
    assert signature(spec_of(udf(**options)(function))) == (params, result)


# -- vectorized detection ------------------------------------------------------------------------------------


def _vec_int(a: pa.Int64Array, b: pa.Int64Array) -> pa.Int64Array:
    return a


def _vec_annotated(x: Annotated[pa.Array, pa.float32()]) -> Annotated[pa.Array, pa.float32()]:
    return x


def _vec_optional(x: Optional[pa.StringArray]) -> pa.BooleanArray:
    return x


def _vec_mixed(x: pa.LargeStringArray, n: int) -> pa.LargeStringArray:
    return x


def _vec_timestamp(t: Annotated[pa.TimestampArray, pa.timestamp("ms", tz="UTC")]) -> pa.Date32Array:
    return t


def _vec_return_only() -> pa.DoubleArray:
    return pa.array([1.0])


def _plain(x: float, flag: bool) -> float:
    return x


def _vec_input_types(x: pa.Array) -> pa.Array:
    return x


VECTORIZED: list[
    tuple[Callable[..., Any], dict[str, Any], bool, list[tuple[str, str, bool]], tuple[str, bool]]
] = [
    (_vec_int, {}, True, [("a", "int64", False), ("b", "int64", False)], ("int64", True)),
    (_vec_annotated, {}, True, [("x", "float32", False)], ("float32", True)),
    (_vec_optional, {}, True, [("x", "utf8", True)], ("bool", True)),
    (_vec_mixed, {}, True, [("x", "large_utf8", False), ("n", "int64", False)], ("large_utf8", True)),
    (_vec_timestamp, {}, True, [("t", "timestamp[ms, tz=UTC]", False)], ("date32", True)),
    (_vec_return_only, {}, True, [], ("float64", True)),
    (_plain, {}, False, [("x", "float64", False), ("flag", "bool", False)], ("float64", False)),
    (
        _plain,
        {"vectorized": True},
        True,
        [("x", "float64", False), ("flag", "bool", False)],
        ("float64", True),
    ),
    (
        _plain,
        {"vectorized": False},
        False,
        [("x", "float64", False), ("flag", "bool", False)],
        ("float64", False),
    ),
    (
        _vec_input_types,
        {"input_types": ["int8"], "result_type": "int16"},
        True,
        [("x", "int8", False)],
        ("int16", True),
    ),
]


@pytest.mark.parametrize(
    ("function", "options", "vectorized", "params", "result"),
    VECTORIZED,
    ids=[f"{f.__name__}-{o}" for f, o, *_ in VECTORIZED],
)
def test_vectorized_detection(
    function: Callable[..., Any],
    options: dict[str, Any],
    vectorized: bool,
    params: list[tuple[str, str, bool]],
    result: tuple[str, bool],
) -> None:
    spec = spec_of(udf(**options)(function))
    assert spec.vectorized is vectorized
    assert signature(spec) == (params, result)


# -- collect -------------------------------------------------------------------------------------------------

MODULE_SOURCE = """
from fletch import udf

@udf
def second(x: int) -> int:
    return x

def plain(x):
    return x

@udf(name="renamed")
def first(x: int) -> int:
    return x

alias = second
number = 3

class Holder:
    pass

@udf
def third() -> int:
    return 3

second_again = second
"""


def make_module(name: str, source: str, **extra: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(extra)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def test_collect_order_and_deduplication() -> None:
    module = make_module("collect_fixture", MODULE_SOURCE)
    assert [s.name for s in collect(module)] == ["second", "renamed", "third"]
    assert [s.module for s in collect(module)] == ["collect_fixture"] * 3


def test_collect_includes_functions_bound_from_elsewhere() -> None:
    other = make_module("other_fixture", MODULE_SOURCE)
    module = make_module("importer", "@udf\ndef own(x: int) -> int:\n    return x\n", udf=udf)
    module.__dict__["imported"] = other.third
    assert [(s.name, s.module) for s in collect(module)] == [("own", "importer"), ("third", "other_fixture")]


def test_collect_skips_objects_that_fake_attributes() -> None:
    module = make_module("mocked", MODULE_SOURCE, mock=unittest.mock.MagicMock(), builtin=len)
    assert [s.name for s in collect(module)] == ["second", "renamed", "third"]


def test_collect_empty_module() -> None:
    assert collect(types.ModuleType("empty")) == []


# -- UdfError ------------------------------------------------------------------------------------------------

ERRORS: list[tuple[UdfError, str]] = [
    (
        UdfError("scale", 3, "ZeroDivisionError", "division by zero", "tb"),
        "scale: row 3: ZeroDivisionError: division by zero",
    ),
    (UdfError("scale", None, "ValueError", "bad"), "scale: ValueError: bad"),
    (UdfError("scale", 0, "KeyError", ""), "scale: row 0: KeyError"),
]


@pytest.mark.parametrize(("error", "text"), ERRORS, ids=[t for _, t in ERRORS])
def test_udf_error_str(error: UdfError, text: str) -> None:
    assert str(error) == text


def test_udf_error_pickles() -> None:
    error = UdfError("scale", 3, "decimal.InvalidOperation", "bad digits", "Traceback ...\n")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, UdfError)
    assert (copy.function, copy.row, copy.exc_type, copy.message, copy.traceback) == (
        "scale",
        3,
        "decimal.InvalidOperation",
        "bad digits",
        "Traceback ...\n",
    )
    assert str(copy) == str(error)


class Outer:
    class Inner(Exception):
        pass


EXCEPTION_NAMES: list[tuple[type, str]] = [
    (ZeroDivisionError, "ZeroDivisionError"),
    (decimal.InvalidOperation, "decimal.InvalidOperation"),
    (pa.ArrowInvalid, "pyarrow.lib.ArrowInvalid"),
    (Outer.Inner, f"{__name__}.Outer.Inner"),
    (UdfError, "fletch.UdfError"),
]


@pytest.mark.parametrize(("cls", "name"), EXCEPTION_NAMES, ids=[n for _, n in EXCEPTION_NAMES])
def test_exception_type_name(cls: type, name: str) -> None:
    assert exception_type_name(cls) == name


def test_public_api() -> None:
    assert fletch.__version__ == "0.1.0"
    assert {"udf", "UdfSpec", "UdfError", "collect", "Param", "type_text", "parse_type_text"} <= set(
        fletch.__all__
    )
    for name in fletch.__all__:
        assert hasattr(fletch, name)
