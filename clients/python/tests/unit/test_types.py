"""Canonical type text and annotation inference (fletch._types)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NewType, Optional, TypedDict, Union

import pyarrow as pa
import pytest

from fletch import TypeTextError, UdfSpec, parse_type_text, type_text, udf
from fletch._types import AnnotationError, go_quote, infer

from . import _models

# tests/unit/test_types.py -> the repository root is four levels up.
GOLDEN = Path(__file__).parents[4] / "udfcatalog" / "testdata" / "typetext.golden"

# Canonical text the Go server accepts but pyarrow cannot represent, each with the reason.
GOLDEN_SKIPS: dict[str, str] = {
    "interval_months": "pyarrow has no factory for the interval_months (YEAR_MONTH) type",
    "interval_day_time": "pyarrow has no factory for the interval_day_time (DAY_TIME) type",
}


# -- inference -----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Point:
    x: int
    y: Optional[str]


@dataclasses.dataclass
class Line:
    start: Point
    end: Optional[Point]
    tags: list[str]


class Address(TypedDict):
    street: str
    number: Optional[int]


class Person(TypedDict):
    name: str
    home: Address
    points: list[Point]


class Counts(TypedDict, total=False):
    hits: int


UserId = NewType("UserId", int)


def inferred(tp: object) -> tuple[str, bool]:
    info = infer(tp)
    return type_text(info.type), info.nullable


INFERENCE: list[tuple[object, str, bool]] = [
    # the mapping table
    (int, "int64", False),
    (float, "float64", False),
    (str, "utf8", False),
    (bytes, "binary", False),
    (bool, "bool", False),
    (decimal.Decimal, "decimal128(38, 9)", False),
    (datetime.date, "date32", False),
    (datetime.datetime, "timestamp[us]", False),
    (datetime.time, "time64[us]", False),
    (datetime.timedelta, "duration[us]", False),
    (list[int], "list<int64 not null>", False),
    (dict[str, float], "map<utf8, float64 not null>", False),
    (Point, "struct<x: int64 not null, y: utf8>", False),
    (Address, "struct<street: utf8 not null, number: int64>", False),
    # Optional in all its spellings
    (Optional[int], "int64", True),
    (int | None, "int64", True),
    (Union[int, None], "int64", True),
    (Union[None, str], "utf8", True),
    (Optional[Optional[bool]], "bool", True),
    (Optional[list[int]], "list<int64 not null>", True),
    # nested nullability
    (list[Optional[int]], "list<int64>", False),
    (list[list[str]], "list<list<utf8 not null> not null>", False),
    (list[Optional[list[Optional[str]]]], "list<list<utf8>>", False),
    (dict[str, Optional[float]], "map<utf8, float64>", False),
    (dict[int, list[bytes]], "map<int64, list<binary not null> not null>", False),
    (dict[datetime.date, dict[str, bool]], "map<date32, map<utf8, bool not null> not null>", False),
    (typing.List[int], "list<int64 not null>", False),  # noqa: UP006
    (typing.Dict[str, int], "map<utf8, int64 not null>", False),  # noqa: UP006
    # bool is not int, even inside containers
    (list[bool], "list<bool not null>", False),
    (dict[bool, int], "map<bool, int64 not null>", False),
    # structs, nested
    (
        Line,
        "struct<start: struct<x: int64 not null, y: utf8> not null, end: struct<x: int64 not null, y: utf8>, "
        "tags: list<utf8 not null> not null>",
        False,
    ),
    (list[Point], "list<struct<x: int64 not null, y: utf8> not null>", False),
    (dict[str, Optional[Point]], "map<utf8, struct<x: int64 not null, y: utf8>>", False),
    (
        Person,
        "struct<name: utf8 not null, home: struct<street: utf8 not null, number: int64> not null, "
        "points: list<struct<x: int64 not null, y: utf8> not null> not null>",
        False,
    ),
    (Counts, "struct<hits: int64>", False),  # keys that may be missing are nullable
    (Optional[Point], "struct<x: int64 not null, y: utf8>", True),
    # Annotated overrides
    (Annotated[int, pa.int32()], "int32", False),
    (Annotated[str, pa.large_string()], "large_utf8", False),
    (Annotated[decimal.Decimal, pa.decimal128(10, 2)], "decimal128(10, 2)", False),
    (Annotated[Optional[int], pa.int32()], "int32", True),
    (Optional[Annotated[int, pa.int32()]], "int32", True),
    (Annotated[int, "a comment"], "int64", False),
    (list[Annotated[int, pa.int8()]], "list<int8 not null>", False),
    (Annotated[datetime.datetime, pa.timestamp("ns", tz="UTC")], "timestamp[ns, tz=UTC]", False),
    (Annotated[complex, pa.float64()], "float64", False),  # the Arrow type makes any Python type fine
    (Annotated[Point, pa.struct([("a", pa.int8())])], "struct<a: int8>", False),
    (UserId, "int64", False),
    (Optional[UserId], "int64", True),
]


@pytest.mark.parametrize(("annotation", "text", "nullable"), INFERENCE, ids=[str(r[0]) for r in INFERENCE])
def test_infer(annotation: object, text: str, nullable: bool) -> None:
    assert inferred(annotation) == (text, nullable)


FUTURE_CASES: list[tuple[Callable[..., Any], dict[str, tuple[str, bool]]]] = [
    (
        _models.scalars,
        {
            "i": ("int64", False),
            "f": ("float64", False),
            "s": ("utf8", False),
            "b": ("binary", False),
            "flag": ("bool", False),
            "d": ("decimal128(38, 9)", False),
            "day": ("date32", False),
            "return": ("timestamp[us]", True),
        },
    ),
    (
        _models.nested,
        {
            "points": ("list<struct<x: int64 not null, y: utf8> not null>", False),
            "box": (
                "struct<corners: list<struct<x: int64 not null, y: utf8> not null> not null, "
                "by_name: map<utf8, struct<x: int64 not null, y: utf8>> not null, "
                "origin: struct<x: int64 not null, y: utf8>>",
                True,
            ),
            "tagged": (
                "struct<tag: utf8 not null, weight: float64, "
                "where: struct<x: int64 not null, y: utf8> not null>",
                False,
            ),
            "return": ("map<utf8, list<int64> not null>", False),
        },
    ),
    (
        _models.overridden,
        {"x": ("int32", True), "return": ("decimal128(10, 2)", False)},
    ),
]


@pytest.mark.parametrize(("function", "expected"), FUTURE_CASES, ids=[f.__name__ for f, _ in FUTURE_CASES])
def test_infer_future_annotations(
    function: Callable[..., Any], expected: dict[str, tuple[str, bool]]
) -> None:
    hints = typing.get_type_hints(function, include_extras=True)
    assert all(isinstance(a, str) for a in function.__annotations__.values())
    assert {name: inferred(hint) for name, hint in hints.items()} == expected


def test_infer_future_annotations_through_udf() -> None:
    spec = getattr(udf(_models.nested), "__fletch_udf__", None)
    assert isinstance(spec, UdfSpec)
    assert spec.params[0].describe()["type"] == "list<struct<x: int64 not null, y: utf8> not null>"
    assert spec.result.describe() == {
        "name": "nested",
        "type": "map<utf8, list<int64> not null>",
        "nullable": False,
    }


def test_infer_records_array_class() -> None:
    assert infer(pa.Int64Array).array_class is pa.Int64Array
    assert infer(Annotated[pa.Array, pa.float32()]).array_class is pa.Array
    assert infer(Optional[pa.StringArray]).array_class is pa.StringArray
    assert infer(int).array_class is None


ARRAY_CLASSES: list[tuple[type, str]] = [
    (pa.Int8Array, "int8"),
    (pa.Int16Array, "int16"),
    (pa.Int32Array, "int32"),
    (pa.Int64Array, "int64"),
    (pa.UInt8Array, "uint8"),
    (pa.UInt16Array, "uint16"),
    (pa.UInt32Array, "uint32"),
    (pa.UInt64Array, "uint64"),
    (pa.HalfFloatArray, "float16"),
    (pa.FloatArray, "float32"),
    (pa.DoubleArray, "float64"),
    (pa.BooleanArray, "bool"),
    (pa.StringArray, "utf8"),
    (pa.LargeStringArray, "large_utf8"),
    (pa.BinaryArray, "binary"),
    (pa.LargeBinaryArray, "large_binary"),
    (pa.Date32Array, "date32"),
    (pa.Date64Array, "date64"),
]


@pytest.mark.parametrize(("cls", "text"), ARRAY_CLASSES, ids=[c.__name__ for c, _ in ARRAY_CLASSES])
def test_infer_array_classes(cls: type, text: str) -> None:
    assert inferred(cls) == (text, False)
    assert inferred(Optional[cls]) == (text, True)


def test_dataclass_conversions() -> None:
    info = infer(Line)
    assert info.to_python is not None
    assert info.to_arrow is not None
    value = {"start": {"x": 1, "y": None}, "end": None, "tags": ["a"]}
    line = info.to_python(value)
    assert line == Line(Point(1, None), None, ["a"])
    assert info.to_arrow(line) == value


def test_typeddict_converts_nested_dataclasses_only() -> None:
    info = infer(Person)
    assert info.to_python is not None
    person = info.to_python(
        {"name": "n", "home": {"street": "s", "number": None}, "points": [{"x": 1, "y": "p"}]}
    )
    assert person == {"name": "n", "home": {"street": "s", "number": None}, "points": [Point(1, "p")]}
    assert infer(Address).to_python is None  # nothing to convert: stays the dict to_pylist made


# -- rejections ----------------------------------------------------------------------------------------------

SUPPORTED = (
    "use int, float, str, bytes, bool, Decimal, date, datetime, time, timedelta, list[T], dict[K, V], "
    "a dataclass or TypedDict, Optional[T], or Annotated[T, pa.<type>()]"
)


def _variadic(*args: int) -> int:
    return 0


def _variadic_keywords(x: int, **kwargs: int) -> int:
    return x


def _keyword_only(x: int, *, factor: int) -> int:
    return x * factor


def _unannotated(x, y: int) -> int:  # type: ignore[no-untyped-def]
    return 0


def _no_return(x: int):  # type: ignore[no-untyped-def]
    return x


def _complex(x: complex) -> int:
    return 0


def _complex_return(x: int) -> complex:
    return complex(x)


def _nested_complex(x: list[complex]) -> int:
    return 0


def _field_complex(x: dict[str, complex]) -> int:
    return 0


def _union(x: Union[int, str]) -> int:
    return 0


def _optional_key(m: dict[Optional[str], int]) -> int:
    return 0


def _struct_key(m: dict[Point, int]) -> int:
    return 0


def _bare_list(xs: list) -> int:  # type: ignore[type-arg]
    return 0


def _bare_dict(xs: dict) -> int:  # type: ignore[type-arg]
    return 0


def _plain_array(x: pa.Array) -> pa.Array:
    return x


def _timestamp_array(t: pa.TimestampArray) -> pa.Int64Array:
    return t


def _array_return(x: pa.Int64Array) -> pa.Array:
    return x


def _nested_array(x: list[pa.Int64Array]) -> int:
    return 0


def _any(x: Any) -> int:
    return 0


def _none_return(x: int) -> None:
    return None


@dataclasses.dataclass
class _Node:
    value: int
    next: Optional[_Node]


def _recursive(n: _Node) -> int:
    return 0


@dataclasses.dataclass
class _Derived:
    a: int
    b: int = dataclasses.field(init=False, default=0)


def _init_false(d: _Derived) -> int:
    return 0


def _two_types(x: Annotated[int, pa.int32(), pa.int64()]) -> int:
    return 0


def _dictionary(x: Annotated[str, pa.dictionary(pa.int32(), pa.string())]) -> int:
    return 0


def _undefined(x: Undefined) -> int:  # type: ignore[name-defined]  # noqa: F821
    return 0


def _int(x: int) -> int:
    return x


REJECTIONS: list[tuple[Callable[..., Any], dict[str, Any], str]] = [
    (_variadic, {}, "udf _variadic: parameter *args is variadic; declare each parameter separately"),
    (
        _variadic_keywords,
        {},
        "udf _variadic_keywords: parameter **kwargs is variadic; declare each parameter separately",
    ),
    (
        _keyword_only,
        {},
        "udf _keyword_only: parameter factor is keyword-only; "
        "make it positional (remove the bare * before it)",
    ),
    (
        _unannotated,
        {},
        "udf _unannotated: parameter x has no type annotation; "
        "annotate it (x: int) or pass input_types=[...]",
    ),
    (
        _no_return,
        {},
        "udf _no_return: the return value has no type annotation; "
        "annotate it (-> int) or pass result_type=...",
    ),
    (_complex, {}, f"udf _complex: parameter x: type complex is not supported; {SUPPORTED}"),
    (_complex_return, {}, f"udf _complex_return: return type complex is not supported; {SUPPORTED}"),
    (
        _nested_complex,
        {},
        f"udf _nested_complex: parameter x: type complex (in list[complex]) is not supported; {SUPPORTED}",
    ),
    (
        _field_complex,
        {},
        "udf _field_complex: parameter x: type complex (in dict[str, complex]) is not supported; "
        f"{SUPPORTED}",
    ),
    (
        _union,
        {},
        "udf _union: parameter x: type Union[int, str] is not supported: a union other than Optional[T] has "
        f"no single Arrow type; {SUPPORTED}",
    ),
    (
        _optional_key,
        {},
        "udf _optional_key: parameter m: map keys cannot be Optional (in dict[Optional[str], int]); "
        "Arrow map keys are never null, so use dict[str, ...]",
    ),
    (
        _struct_key,
        {},
        "udf _struct_key: parameter m: map keys must be scalars such as str or int, not Point "
        "(in dict[Point, int])",
    ),
    (_bare_list, {}, "udf _bare_list: parameter xs: type list needs an item type, as in list[int]"),
    (
        _bare_dict,
        {},
        "udf _bare_dict: parameter xs: type dict needs key and value types, as in dict[str, int]",
    ),
    (
        _plain_array,
        {},
        "udf _plain_array: parameter x: pa.Array does not say which Arrow type it holds; "
        "use Annotated[pa.Array, pa.int64()] or pass input_types=[...]",
    ),
    (
        _timestamp_array,
        {},
        "udf _timestamp_array: parameter t: pa.TimestampArray does not fix its Arrow type; "
        "use Annotated[pa.TimestampArray, pa.timestamp('us')] or pass input_types=[...]",
    ),
    (
        _array_return,
        {},
        "udf _array_return: return value: pa.Array does not say which Arrow type it holds; "
        "use Annotated[pa.Array, pa.int64()] or pass result_type=...",
    ),
    (
        _nested_array,
        {},
        "udf _nested_array: parameter x: type pa.Int64Array (in list[pa.Int64Array]) is not supported: "
        "pyarrow arrays can only annotate a whole parameter or return value of a vectorized UDF",
    ),
    (_any, {}, f"udf _any: parameter x: type Any is not supported; {SUPPORTED}"),
    (_none_return, {}, f"udf _none_return: return type None is not supported; {SUPPORTED}"),
    (
        _recursive,
        {},
        "udf _recursive: parameter n: type _Node is recursive (_Node -> _Node); Arrow types cannot be",
    ),
    (
        _init_false,
        {},
        "udf _init_false: parameter d: dataclass _Derived field b has init=False, so fletch cannot build the "
        "dataclass from a struct value",
    ),
    (
        _two_types,
        {},
        "udf _two_types: parameter x: type Annotated[int, DataType(int32), DataType(int64)] names 2 Arrow "
        "types; keep one",
    ),
    (
        _dictionary,
        {},
        "udf _dictionary: parameter x: unsupported arrow type: dictionary<values=string, indices=int32, "
        "ordered=0>: no canonical text; fletch types need canonical type text",
    ),
    (
        _undefined,
        {},
        "udf _undefined: cannot resolve the type annotations: name 'Undefined' is not defined; "
        "define or import the names they use before the function, "
        "or pass input_types=[...] and result_type=...",
    ),
    (
        _int,
        {"input_types": ["int64", "int64"]},
        "udf _int: input_types has 2 types but the function has 1 parameters (x)",
    ),
    (
        _int,
        {"input_types": "int64"},
        "udf _int: input_types must be a list with one type per parameter, as in input_types=[...]",
    ),
    (
        _int,
        {"result_type": 5},
        "udf _int: result_type must be type text such as 'int64' or a pyarrow DataType, not 5",
    ),
    (
        _plain_array,
        {"vectorized": False, "input_types": ["int64"], "result_type": "int64"},
        "udf _plain_array: parameter x is annotated pa.Array, which needs vectorized evaluation; "
        "remove vectorized=False or annotate it with a Python type",
    ),
]


@pytest.mark.parametrize(
    ("function", "options", "message"),
    REJECTIONS,
    ids=[f"{f.__name__}-{'-'.join(o)}" for f, o, _ in REJECTIONS],
)
def test_rejections(function: Callable[..., Any], options: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError) as caught:
        udf(**options)(function)
    assert str(caught.value) == message
    assert not hasattr(function, "__fletch_udf__")


VALUE_REJECTIONS: list[tuple[dict[str, Any], str]] = [
    (
        {"input_types": ["int"]},
        'udf _int: input_types[0] (parameter x): invalid type text: "int" at offset 0: unknown type "int"',
    ),
    (
        {"result_type": "list<int32"},
        'udf _int: result_type: invalid type text: "list<int32" at offset 10: '
        'expected ">" but reached end of text',
    ),
    (
        {"volatility": "sometimes"},
        "udf _int: volatility must be one of immutable, stable, volatile, not 'sometimes'",
    ),
    ({"name": ""}, "udf _int: name '' must be 1..256 bytes of UTF-8"),
    ({"name": "a/b"}, "udf _int: name 'a/b' must not contain '/' or NUL"),
    ({"name": "x" * 257}, f"udf _int: name '{'x' * 257}' must be 1..256 bytes of UTF-8"),
]


@pytest.mark.parametrize(("options", "message"), VALUE_REJECTIONS, ids=[str(o) for o, _ in VALUE_REJECTIONS])
def test_value_rejections(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        udf(**options)(_int)
    assert str(caught.value) == message


def test_annotation_error_is_a_type_error() -> None:
    with pytest.raises(AnnotationError):
        infer(complex)
    assert issubclass(AnnotationError, TypeError)


# -- type_text -----------------------------------------------------------------------------------------------

FORMAT: list[tuple[pa.DataType, str]] = [
    (pa.null(), "null"),
    (pa.bool_(), "bool"),
    (pa.int8(), "int8"),
    (pa.int16(), "int16"),
    (pa.int32(), "int32"),
    (pa.int64(), "int64"),
    (pa.uint8(), "uint8"),
    (pa.uint16(), "uint16"),
    (pa.uint32(), "uint32"),
    (pa.uint64(), "uint64"),
    (pa.float16(), "float16"),
    (pa.float32(), "float32"),
    (pa.float64(), "float64"),
    (pa.string(), "utf8"),
    (pa.large_string(), "large_utf8"),
    (pa.string_view(), "utf8_view"),
    (pa.binary(), "binary"),
    (pa.large_binary(), "large_binary"),
    (pa.binary_view(), "binary_view"),
    (pa.binary(16), "fixed_size_binary(16)"),
    (pa.date32(), "date32"),
    (pa.date64(), "date64"),
    (pa.time32("s"), "time32[s]"),
    (pa.time32("ms"), "time32[ms]"),
    (pa.time64("us"), "time64[us]"),
    (pa.time64("ns"), "time64[ns]"),
    (pa.timestamp("s"), "timestamp[s]"),
    (pa.timestamp("us", tz="UTC"), "timestamp[us, tz=UTC]"),
    (pa.timestamp("ns", tz="America/New_York"), "timestamp[ns, tz=America/New_York]"),
    (pa.timestamp("ms", tz="+05:30"), "timestamp[ms, tz=+05:30]"),
    (pa.duration("s"), "duration[s]"),
    (pa.duration("ns"), "duration[ns]"),
    (pa.month_day_nano_interval(), "interval_month_day_nano"),
    (pa.decimal32(9, 2), "decimal32(9, 2)"),
    (pa.decimal64(18, 4), "decimal64(18, 4)"),
    (pa.decimal128(38, 10), "decimal128(38, 10)"),
    (pa.decimal256(76, 0), "decimal256(76, 0)"),
    (pa.list_(pa.int32()), "list<int32>"),
    (pa.list_(pa.field("item", pa.int32(), nullable=False)), "list<int32 not null>"),
    (pa.list_(pa.field("element", pa.int32())), "list<element: int32>"),
    (pa.list_(pa.field("x y", pa.int32())), 'list<"x y": int32>'),
    (pa.large_list(pa.utf8()), "large_list<utf8>"),
    (pa.list_(pa.float32(), 3), "fixed_size_list<float32, 3>"),
    (pa.list_(pa.field("v", pa.float32(), nullable=False), 768), "fixed_size_list<v: float32 not null, 768>"),
    (pa.map_(pa.string(), pa.float64()), "map<utf8, float64>"),
    (pa.map_(pa.string(), pa.field("value", pa.float64(), nullable=False)), "map<utf8, float64 not null>"),
    (
        pa.map_(pa.int64(), pa.struct([("a", pa.int8())]), keys_sorted=True),
        "map<int64, struct<a: int8>, keys_sorted>",
    ),
    (pa.struct([]), "struct<>"),
    (
        pa.struct([pa.field("a", pa.int64(), nullable=False), pa.field("b c", pa.list_(pa.utf8()))]),
        'struct<a: int64 not null, "b c": list<utf8>>',
    ),
    (
        pa.struct(
            [("", pa.bool_()), ('quote"d', pa.bool_()), ("new\nline", pa.bool_()), ("ünïcode", pa.bool_())]
        ),
        'struct<"": bool, "quote\\"d": bool, "new\\nline": bool, "ünïcode": bool>',
    ),
    (
        pa.struct([("_ok9", pa.int8()), ("9no", pa.int8()), ("tab\t", pa.int8())]),
        'struct<_ok9: int8, "9no": int8, "tab\\t": int8>',
    ),
    (
        pa.struct([("back\\slash", pa.int8()), ("\x01", pa.int8())]),
        'struct<"back\\\\slash": int8, "\\x01": int8>',
    ),
]


@pytest.mark.parametrize(("arrow_type", "text"), FORMAT, ids=[t for _, t in FORMAT])
def test_type_text(arrow_type: pa.DataType, text: str) -> None:
    assert type_text(arrow_type) == text
    assert type_text(parse_type_text(text)) == text
    assert parse_type_text(text) == arrow_type


UNSUPPORTED: list[tuple[pa.DataType, str]] = [
    (
        pa.dictionary(pa.int32(), pa.string()),
        "dictionary<values=string, indices=int32, ordered=0>: no canonical text",
    ),
    (pa.sparse_union([pa.field("a", pa.int8())]), "sparse_union<a: int8=0>: no canonical text"),
    (pa.dense_union([pa.field("a", pa.int8())]), "dense_union<a: int8=0>: no canonical text"),
    (
        pa.run_end_encoded(pa.int32(), pa.string()),
        "run_end_encoded<run_ends: int32, values: string>: no canonical text",
    ),
    (pa.list_view(pa.int32()), "list_view<item: int32>: no canonical text"),
    (pa.large_list_view(pa.int32()), "large_list_view<item: int32>: no canonical text"),
    (pa.uuid(), "extension<arrow.uuid>: no canonical text"),
    (pa.list_(pa.int8(), 0), "fixed_size_list<item: int8>[0]: list size must be at least 1"),
    (pa.binary(0), "fixed_size_binary[0]: byte width must be in 1..2147483647"),
    (
        pa.struct([("a", pa.int8()), ("a", pa.int8())]),
        'struct<a: int8, a: int8>: duplicate struct field name "a"',
    ),
    (
        pa.struct([pa.field("a", pa.int8(), metadata={"k": "v"})]),
        'struct<a: int8>: field "a" has metadata, which type text cannot express',
    ),
    (
        pa.map_(pa.field("k", pa.string(), nullable=False), pa.int8()),
        'map<string (\'k\'), int8>: map fields must be named "key" and "value", not "k" and "value"',
    ),
    (
        pa.timestamp("us", tz="a,b"),
        'timestamp[us, tz=a,b]: time zone "a,b" cannot contain "]" or ",", '
        "surrounding spaces or invalid UTF-8",
    ),
    (
        pa.list_(pa.dictionary(pa.int8(), pa.string())),
        "dictionary<values=string, indices=int8, ordered=0>: no canonical text",
    ),
]


@pytest.mark.parametrize(("arrow_type", "reason"), UNSUPPORTED, ids=[r for _, r in UNSUPPORTED])
def test_type_text_unsupported(arrow_type: pa.DataType, reason: str) -> None:
    with pytest.raises(TypeError) as caught:
        type_text(arrow_type)
    assert str(caught.value) == f"unsupported arrow type: {reason}"


def test_type_text_nesting_limit() -> None:
    t = pa.int8()
    for _ in range(64):
        t = pa.list_(t)
    assert type_text(t) == "list<" * 64 + "int8" + ">" * 64
    with pytest.raises(TypeError, match="nesting deeper than 64 levels"):
        type_text(pa.list_(t))


# -- parse_type_text -----------------------------------------------------------------------------------------

ALIASES: list[tuple[str, str]] = [
    ("boolean", "bool"),
    ("string", "utf8"),
    ("large_string", "large_utf8"),
    ("string_view", "utf8_view"),
    ("halffloat", "float16"),
    ("float", "float32"),
    ("double", "float64"),
    ("date32[day]", "date32"),
    ("date64[ms]", "date64"),
    ("month_day_nano_interval", "interval_month_day_nano"),
    ("decimal(12, 2)", "decimal128(12, 2)"),
    ("list<item: int64>", "list<int64>"),
    ("list<item: string not null>", "list<utf8 not null>"),
    ("map<string, list<item: double>>", "map<utf8, list<float64>>"),
    ("  int64  ", "int64"),
    ("struct<a:int64,b:utf8>", "struct<a: int64, b: utf8>"),
    ("struct < a : int64 not    null , b : utf8 >", "struct<a: int64 not null, b: utf8>"),
    ("timestamp[ us ,tz= Asia/Kolkata ]", "timestamp[us, tz=Asia/Kolkata]"),
    ("decimal128(  5,0  )", "decimal128(5, 0)"),
    ("fixed_size_list<float32,0003>", "fixed_size_list<float32, 3>"),
    ('struct<"plain": int8, "\\u00e9t\\u00e9": int8>', 'struct<plain: int8, "été": int8>'),
    ('struct<"\\x41\\102\\U0001F600": int8>', 'struct<"AB😀": int8>'),
    ("map<utf8 not null,int8 not null,keys_sorted>", "map<utf8, int8 not null, keys_sorted>"),
    ('list<"item": int8>', "list<int8>"),
    ('list<"": int8>', 'list<"": int8>'),
]


@pytest.mark.parametrize(("text", "canonical"), ALIASES, ids=[t for t, _ in ALIASES])
def test_parse_accepts_aliases_and_spacing(text: str, canonical: str) -> None:
    assert type_text(parse_type_text(text)) == canonical


PARSE_ERRORS: list[tuple[str, int | None, str]] = [
    ("", 0, 'invalid type text: "" at offset 0: expected a type name but reached end of text'),
    (
        "Int64",
        0,
        'invalid type text: "Int64" at offset 0: unknown type "Int64" (type names are lowercase: "int64")',
    ),
    ("list<int32", 10, 'invalid type text: "list<int32" at offset 10: expected ">" but reached end of text'),
    (
        "int64 not null",
        6,
        'invalid type text: "int64 not null" at offset 6: a top-level type has no nullability; '
        '"not null" only applies to fields',
    ),
    (
        "decimal128(39, 2)",
        11,
        'invalid type text: "decimal128(39, 2)" at offset 11: precision 39 out of range 1..38 for decimal128',
    ),
    (
        "struct<a: int64, a: utf8>",
        17,
        'invalid type text: "struct<a: int64, a: utf8>" at offset 17: duplicate struct field name "a"',
    ),
    ('struct<"abc', 7, 'invalid type text: "struct<\\"abc" at offset 7: unterminated quoted field name'),
    (
        'struct<"a\tb": int8>',
        9,
        'invalid type text: "struct<\\"a\\tb\\": int8>" at offset 9: control character "\\t" in quoted field '
        "name must be escaped",
    ),
    (
        'struct<"\\ud800": int8>',
        8,
        'invalid type text: "struct<\\"\\\\ud800\\": int8>" at offset 8: invalid escape sequence "\\\\u" in '
        "quoted field name",
    ),
    (
        "list<" * 65 + "int8" + ">" * 65,
        320,
        f'invalid type text: "{"list<" * 65}int8{">" * 65}" at offset 320: nesting deeper than 64 levels',
    ),
    (
        "int8" + " " * 65536,
        None,
        'invalid type text: "int8                            "... is 65540 bytes, over the 65536-byte limit',
    ),
    ("int8\udcff", 4, 'invalid type text: "int8\\xff" at offset 4: invalid UTF-8'),
    (
        "ñ",
        0,
        'invalid type text: "ñ" at offset 0: expected a type name but found "ñ"',
    ),
    (
        "é" + "x" * 50,
        0,
        f'invalid type text: "é{"x" * 50}" at offset 0: expected a type name but found "é"',
    ),
    (
        "int8 " + "x" * 50,
        5,
        f'invalid type text: "int8 {"x" * 50}" at offset 5: expected end of text but found "{"x" * 40}"...',
    ),
    # valid canonical text that pyarrow cannot hold: reported after the whole text parsed
    (
        "list<null not null>",
        18,
        'invalid type text: "list<null not null>" at offset 18: pyarrow cannot make a field of type null '
        "non-nullable",
    ),
    (
        "map<null, int8>",
        8,
        'invalid type text: "map<null, int8>" at offset 8: pyarrow cannot make a map key of type null '
        "(keys are non-nullable fields)",
    ),
    (
        "list<interval_months>",
        5,
        'invalid type text: "list<interval_months>" at offset 5: type interval_months is valid but has no '
        "pyarrow equivalent",
    ),
    (
        "list<interval_months",
        20,
        'invalid type text: "list<interval_months" at offset 20: expected ">" but reached end of text',
    ),
    (
        'struct<"\\xff": int8>',
        7,
        'invalid type text: "struct<\\"\\\\xff\\": int8>" at offset 7: '
        'field name "\\xff" is not valid UTF-8, '
        "which pyarrow cannot hold",
    ),
]


@pytest.mark.parametrize(
    ("text", "offset", "message"), PARSE_ERRORS, ids=[m[:60] for _, _, m in PARSE_ERRORS]
)
def test_parse_errors(text: str, offset: int | None, message: str) -> None:
    with pytest.raises(TypeTextError) as caught:
        parse_type_text(text)
    err = caught.value
    assert str(err) == message
    assert isinstance(err, ValueError)
    assert err.text == text
    assert err.offset == offset


def test_parse_rejects_non_text() -> None:
    with pytest.raises(TypeError, match="type text must be a str, not bytes"):
        parse_type_text(b"int64")  # type: ignore[arg-type]


LEAVES = [
    "null",
    "bool",
    "float16",
    "utf8_view",
    "binary_view",
    "interval_month_day_nano",
    "time32[ms]",
    "timestamp[ns, tz=Europe/Paris]",
    "duration[ns]",
    "decimal256(40, 3)",
    "fixed_size_binary(3)",
    "struct<>",
    "map<int8, int8 not null>",
]
COMPOSITIONS = [
    "list<{}>",
    "large_list<{} not null>",
    "fixed_size_list<v: {} not null, 5>",
    "map<utf8, {}>",
    'struct<x: {}, "y z": list<{}> not null>',
]


@pytest.mark.parametrize("leaf", LEAVES)
@pytest.mark.parametrize("composition", COMPOSITIONS)
def test_round_trip_composed(leaf: str, composition: str) -> None:
    text = composition.format(leaf, leaf)
    if leaf == "null" and "{} not null" in composition:
        with pytest.raises(TypeTextError, match="pyarrow cannot make a field of type null non-nullable"):
            parse_type_text(text)  # valid for Go, but pyarrow requires null fields to be nullable
        return
    parsed = parse_type_text(text)
    assert type_text(parsed) == text
    assert parse_type_text(type_text(parsed)) == parsed


# -- Go strconv.Quote ----------------------------------------------------------------------------------------

QUOTES: list[tuple[str | bytes, str]] = [
    ("", '""'),
    ("plain", '"plain"'),
    ('a"b', '"a\\"b"'),
    ("back\\slash", '"back\\\\slash"'),
    ("\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
    ("\x00\x1b\x7f", '"\\x00\\x1b\\x7f"'),
    ("été", '"été"'),
    ("\u00a0", '"\\u00a0"'),  # no-break space: not printable to Go
    ("\u00ad", '"\\u00ad"'),  # soft hyphen (Cf)
    ("\u200b", '"\\u200b"'),
    ("\ufffd", '"\ufffd"'),  # a real U+FFFD is printable
    ("😀", '"😀"'),
    ("\U000e0001", '"\\U000e0001"'),
    (b"\xff", '"\\xff"'),
    (b"a\xe2\x82", '"a\\xe2\\x82"'),  # truncated sequence: each byte escaped
    (b"\xed\xa0\x80", '"\\xed\\xa0\\x80"'),  # UTF-8 encoded surrogate is invalid
    (b"\xc0\xaf", '"\\xc0\\xaf"'),  # overlong
]


@pytest.mark.parametrize(("value", "quoted"), QUOTES, ids=[q for _, q in QUOTES])
def test_go_quote(value: str | bytes, quoted: str) -> None:
    assert go_quote(value) == quoted


# -- cross-language conformance ------------------------------------------------------------------------------


def golden_lines() -> list[tuple[str, str]]:
    lines = []
    for line in GOLDEN.read_text(encoding="utf-8").splitlines():
        text, _, result = line.rpartition("\t")  # inputs may contain tabs; results never do
        lines.append((text, result))
    return lines


GOLDEN_LINES = golden_lines()


@pytest.mark.parametrize(("text", "result"), GOLDEN_LINES, ids=[repr(t) for t, _ in GOLDEN_LINES])
def test_golden_conformance(text: str, result: str) -> None:
    if result in GOLDEN_SKIPS:
        pytest.skip(GOLDEN_SKIPS[result])
    if result.startswith("error: "):
        with pytest.raises(TypeTextError) as caught:
            parse_type_text(text)
        assert str(caught.value) == result.removeprefix("error: ")
        return
    assert type_text(parse_type_text(result)) == result
    assert type_text(parse_type_text(text)) == result


def test_golden_skips_are_current() -> None:
    canonical = {result for _, result in GOLDEN_LINES}
    assert set(GOLDEN_SKIPS) <= canonical
    for text in GOLDEN_SKIPS:
        with pytest.raises(TypeTextError, match="has no pyarrow equivalent"):
            parse_type_text(text)
