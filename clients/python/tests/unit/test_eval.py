"""Row-wise and vectorized evaluation (UdfSpec.evaluate).

Annotations here are evaluated eagerly (no ``from __future__ import annotations``) because many UDFs are
defined inside tests and annotated with local names, which postponed annotations could not resolve.
"""

import dataclasses
import datetime
import decimal
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Optional, TypedDict

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fletch import UdfError, UdfSpec, udf

BIG = 1 << 20  # 1,048,576 rows


def spec_of(function: Callable[..., Any]) -> UdfSpec:
    spec = getattr(function, "__fletch_udf__", None)
    assert isinstance(spec, UdfSpec)
    return spec


def batch_of(*columns: pa.Array, rows: int | None = None) -> pa.RecordBatch:
    if not columns:  # a batch with rows but no columns, for zero-argument functions
        assert rows is not None
        return pa.record_batch([pa.nulls(rows)], names=["_"]).drop_columns(["_"])
    return pa.record_batch(list(columns), names=[f"c{i}" for i in range(len(columns))])


def run(function: Callable[..., Any], *columns: pa.Array, rows: int | None = None) -> pa.Array:
    return spec_of(function).evaluate(batch_of(*columns, rows=rows))


def failure(function: Callable[..., Any], *columns: pa.Array, rows: int | None = None) -> UdfError:
    with pytest.raises(UdfError) as caught:
        run(function, *columns, rows=rows)
    return caught.value


class Calls:
    """Counts calls of a wrapped identity function."""

    def __init__(self) -> None:
        self.count = 0
        self.seen: list[object] = []

    def identity(self, value: object) -> object:
        self.count += 1
        self.seen.append(value)
        return value


def identity_udf(annotation: object, calls: Calls, *, optional: bool) -> Callable[..., Any]:
    def identity(x: Any) -> Any:
        return calls.identity(x)

    wrapped = Optional[annotation] if optional else annotation
    identity.__annotations__ = {"x": wrapped, "return": wrapped}
    return udf(identity)


@dataclasses.dataclass
class Point:
    x: int
    y: Optional[str]


@dataclasses.dataclass
class Shape:
    name: str
    points: list[Point]
    center: Optional[Point]


class Labelled(TypedDict):
    label: str
    point: Point
    weight: Optional[float]


UTC = datetime.timezone.utc

# (id, annotation, Arrow type, values as the function sees them (None = null), the same values as Arrow input)
ROUND_TRIPS: list[tuple[str, object, pa.DataType, list[Any], list[Any]]] = []


def _case(
    name: str, annotation: object, arrow_type: pa.DataType, values: list[Any], arrow_values: Any = None
) -> None:
    ROUND_TRIPS.append(
        (name, annotation, arrow_type, values, values if arrow_values is None else arrow_values)
    )


_case("int", int, pa.int64(), [1, None, -(2**63), 2**63 - 1, 0])
_case("float", float, pa.float64(), [1.5, None, -0.0, 1e308])
_case("str", str, pa.string(), ["a", None, "", "ünïcode 😀"])
_case("bytes", bytes, pa.binary(), [b"\x00\xff", None, b""])
_case("bool", bool, pa.bool_(), [True, None, False])
_case(
    "Decimal",
    decimal.Decimal,
    pa.decimal128(38, 9),
    [decimal.Decimal("1.500000000"), None, decimal.Decimal("-99999999999999999999999999999.999999999")],
)
_case("date", datetime.date, pa.date32(), [datetime.date(2024, 2, 29), None, datetime.date(1, 1, 1)])
_case("datetime", datetime.datetime, pa.timestamp("us"), [datetime.datetime(2024, 1, 2, 3, 4, 5, 6), None])
_case("time", datetime.time, pa.time64("us"), [datetime.time(23, 59, 59, 999999), None, datetime.time()])
_case("timedelta", datetime.timedelta, pa.duration("us"), [datetime.timedelta(days=-1, microseconds=5), None])
_case("list[int]", list[int], pa.list_(pa.field("item", pa.int64(), False)), [[1, 2], None, []])
_case("list[Optional[int]]", list[Optional[int]], pa.list_(pa.int64()), [[1, None], None, [None]])
_case(
    "list[list[str]]",
    list[list[str]],
    pa.list_(pa.field("item", pa.list_(pa.field("item", pa.string(), False)), False)),
    [[["a"], []], None],
)
_case(
    "dict[str, float]",
    dict[str, float],
    pa.map_(pa.string(), pa.field("value", pa.float64(), False)),
    [{"a": 1.0, "b": 2.5}, None, {}],
)
_case(
    "dict[int, list[Optional[str]]]",
    dict[int, list[Optional[str]]],
    pa.map_(pa.int64(), pa.field("value", pa.list_(pa.string()), False)),
    [{1: ["x", None]}, None],
)
_case(
    "dataclass",
    Point,
    pa.struct([pa.field("x", pa.int64(), False), pa.field("y", pa.string())]),
    [Point(1, "a"), None, Point(2, None)],
    [{"x": 1, "y": "a"}, None, {"x": 2, "y": None}],
)
_case(
    "nested dataclass",
    Shape,
    pa.struct(
        [
            pa.field("name", pa.string(), False),
            pa.field(
                "points",
                pa.list_(
                    pa.field(
                        "item",
                        pa.struct([pa.field("x", pa.int64(), False), pa.field("y", pa.string())]),
                        False,
                    )
                ),
                False,
            ),
            pa.field("center", pa.struct([pa.field("x", pa.int64(), False), pa.field("y", pa.string())])),
        ]
    ),
    [Shape("s", [Point(1, None), Point(2, "b")], None), None, Shape("t", [], Point(0, "c"))],
    [
        {"name": "s", "points": [{"x": 1, "y": None}, {"x": 2, "y": "b"}], "center": None},
        None,
        {"name": "t", "points": [], "center": {"x": 0, "y": "c"}},
    ],
)
_case(
    "list[dataclass]",
    list[Point],
    pa.list_(
        pa.field("item", pa.struct([pa.field("x", pa.int64(), False), pa.field("y", pa.string())]), False)
    ),
    [[Point(1, None)], None, []],
    [[{"x": 1, "y": None}], None, []],
)
_case(
    "dict[str, Optional[dataclass]]",
    dict[str, Optional[Point]],
    pa.map_(pa.string(), pa.struct([pa.field("x", pa.int64(), False), pa.field("y", pa.string())])),
    [{"p": Point(3, "z"), "q": None}, None],
    [{"p": {"x": 3, "y": "z"}, "q": None}, None],
)
_case(
    "TypedDict",
    Labelled,
    pa.struct(
        [
            pa.field("label", pa.string(), False),
            pa.field(
                "point", pa.struct([pa.field("x", pa.int64(), False), pa.field("y", pa.string())]), False
            ),
            pa.field("weight", pa.float64()),
        ]
    ),
    [{"label": "l", "point": Point(1, "p"), "weight": None}, None],
    [{"label": "l", "point": {"x": 1, "y": "p"}, "weight": None}, None],
)
_case("Annotated int32", Annotated[int, pa.int32()], pa.int32(), [2**31 - 1, None, -(2**31)])
_case("Annotated uint8", Annotated[int, pa.uint8()], pa.uint8(), [255, None, 0])
_case("Annotated float32", Annotated[float, pa.float32()], pa.float32(), [1.5, None])
_case("Annotated float16", Annotated[float, pa.float16()], pa.float16(), [1.5, None])
_case("Annotated large_string", Annotated[str, pa.large_string()], pa.large_string(), ["x", None])
_case(
    "Annotated string_view",
    Annotated[str, pa.string_view()],
    pa.string_view(),
    ["x", None, "a longer string than twelve"],
)
_case("Annotated binary_view", Annotated[bytes, pa.binary_view()], pa.binary_view(), [b"x", None])
_case("Annotated fixed_size_binary", Annotated[bytes, pa.binary(2)], pa.binary(2), [b"ab", None])
_case(
    "Annotated decimal128(10, 2)",
    Annotated[decimal.Decimal, pa.decimal128(10, 2)],
    pa.decimal128(10, 2),
    [decimal.Decimal("12345678.90"), None],
)
_case(
    "Annotated decimal256",
    Annotated[decimal.Decimal, pa.decimal256(60, 5)],
    pa.decimal256(60, 5),
    [decimal.Decimal("1" * 55 + ".12345"), None],
)
_case(
    "Annotated timestamp tz",
    Annotated[datetime.datetime, pa.timestamp("ms", tz="UTC")],
    pa.timestamp("ms", tz="UTC"),
    [datetime.datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), None],
)
_case(
    "Annotated date64", Annotated[datetime.date, pa.date64()], pa.date64(), [datetime.date(2024, 1, 2), None]
)
_case(
    "Annotated time32",
    Annotated[datetime.time, pa.time32("s")],
    pa.time32("s"),
    [datetime.time(1, 2, 3), None],
)
_case(
    "Annotated large_list",
    Annotated[list[int], pa.large_list(pa.int32())],
    pa.large_list(pa.int32()),
    [[1, None], None],
)
_case(
    "Annotated fixed_size_list",
    Annotated[list[float], pa.list_(pa.float32(), 2)],
    pa.list_(pa.float32(), 2),
    [[1.0, 2.0], None],
)


def _values(arrow_type: pa.DataType, values: list[Any]) -> pa.Array:
    return pa.array(values, type=arrow_type)


def _as_python(array: pa.Array) -> list[Any]:
    values: list[Any] = array.to_pylist(maps_as_pydicts="strict")
    return values


@pytest.mark.parametrize(
    ("name", "annotation", "arrow_type", "values", "arrow_values"),
    ROUND_TRIPS,
    ids=[r[0] for r in ROUND_TRIPS],
)
@pytest.mark.parametrize("optional", [True, False], ids=["optional", "required"])
def test_rowwise_round_trip(
    name: str,
    annotation: object,
    arrow_type: pa.DataType,
    values: list[Any],
    arrow_values: list[Any],
    optional: bool,
) -> None:
    calls = Calls()
    function = identity_udf(annotation, calls, optional=optional)
    spec = spec_of(function)
    assert spec.params[0].type == arrow_type
    column = _values(arrow_type, arrow_values)
    result = spec.evaluate(batch_of(column))
    assert result.type == arrow_type
    assert _as_python(result) == _as_python(column)
    # Optional parameters receive None; for the others a null row is never called.
    expected_seen = values if optional else [v for v in values if v is not None]
    assert calls.seen == expected_seen


@pytest.mark.parametrize(
    ("name", "annotation", "arrow_type", "values", "arrow_values"),
    ROUND_TRIPS,
    ids=[r[0] for r in ROUND_TRIPS],
)
def test_vectorized_round_trip(
    name: str, annotation: object, arrow_type: pa.DataType, values: list[Any], arrow_values: list[Any]
) -> None:
    seen: list[pa.Array] = []

    @udf
    def identity(x: Annotated[pa.Array, arrow_type]) -> Annotated[pa.Array, arrow_type]:
        seen.append(x)
        return x

    column = _values(arrow_type, arrow_values)
    result = run(identity, column)
    assert result.equals(column)
    assert len(seen) == 1
    assert seen[0].equals(column)


# -- batch sizes ---------------------------------------------------------------------------------------------


@udf
def plus_one(x: int) -> int:
    return x + 1


@udf
def vec_plus_one(x: pa.Int64Array) -> pa.Int64Array:
    return pc.add(x, 1)


@pytest.mark.parametrize("rows", [0, 1, 2, 1000, BIG])
@pytest.mark.parametrize("function", [plus_one, vec_plus_one], ids=["rowwise", "vectorized"])
def test_batch_sizes_preserve_order(function: Callable[..., Any], rows: int) -> None:
    column = pa.array(range(rows), type=pa.int64())
    result = run(function, column)
    assert len(result) == rows
    assert result.equals(pc.add(column, 1))


@pytest.mark.parametrize("function", [plus_one, vec_plus_one], ids=["rowwise", "vectorized"])
def test_big_batch_with_nulls(function: Callable[..., Any]) -> None:
    column = pa.array([None if i % 7 == 3 else i for i in range(BIG)], type=pa.int64())
    result = run(function, column)
    assert result.null_count == column.null_count
    assert result.equals(pc.add(column, 1))


def test_sliced_input() -> None:
    column = pa.array([None, 1, 2, None, 4, 5], type=pa.int64()).slice(1, 4)
    assert run(plus_one, column).to_pylist() == [2, 3, None, 5]


# -- null policy ---------------------------------------------------------------------------------------------


def test_null_policy_mixed_parameters() -> None:
    seen: list[tuple[Optional[int], int]] = []

    @udf
    def coalesce(a: Optional[int], b: int) -> int:
        seen.append((a, b))
        return b if a is None else a

    a = pa.array([1, None, None, 4], type=pa.int64())
    b = pa.array([10, 20, None, None], type=pa.int64())
    assert run(coalesce, a, b).to_pylist() == [1, 20, None, None]
    assert seen == [(1, 10), (None, 20)]


def test_null_policy_all_rows_null() -> None:
    calls = Calls()
    function = identity_udf(int, calls, optional=False)
    result = run(function, pa.nulls(5, pa.int64()))
    assert result.to_pylist() == [None] * 5
    assert result.type == pa.int64()
    assert calls.count == 0


def test_optional_return_may_be_none() -> None:
    @udf
    def half(x: int) -> Optional[int]:
        return None if x % 2 else x // 2

    assert run(half, pa.array([2, 3, None, 4])).to_pylist() == [1, None, None, 2]


@pytest.mark.parametrize("optional", [True, False])
def test_vectorized_null_policy(optional: bool) -> None:
    def fill(x: pa.Int64Array) -> pa.Int64Array:
        return pc.fill_null(x, 0)

    fill.__annotations__["x"] = Optional[pa.Int64Array] if optional else pa.Int64Array
    udf(fill)
    column = pa.array([1, None, 3], type=pa.int64())
    expected = [1, 0, 3] if optional else [1, None, 3]
    assert run(fill, column).to_pylist() == expected


def test_vectorized_null_policy_with_view_types() -> None:
    @udf
    def fill(x: Annotated[pa.Array, pa.string_view()]) -> Annotated[pa.Array, pa.string_view()]:
        return pa.array(["filled"] * len(x), type=pa.string_view())

    column = pa.array(["a", None, "c"], type=pa.string_view())
    assert run(fill, column).to_pylist() == ["filled", None, "filled"]


# -- errors from the function --------------------------------------------------------------------------------


def test_exception_gives_row_type_message_and_traceback() -> None:
    def helper(x: int) -> int:
        return 10 // x

    @udf
    def divide(x: int) -> int:
        return helper(x)

    with pytest.raises(ZeroDivisionError) as expected:
        helper(0)
    message = str(expected.value)  # Python 3.14 words it differently
    err = failure(divide, pa.array([1, 2, 0, 4]))
    assert (err.function, err.row, err.exc_type) == ("divide", 2, "ZeroDivisionError")
    assert err.message == message
    assert str(err) == f"divide: row 2: ZeroDivisionError: {message}"
    assert err.traceback.startswith("Traceback (most recent call last):\n")
    assert "in divide" in err.traceback
    assert "in helper" in err.traceback
    assert err.traceback.rstrip().endswith(f"ZeroDivisionError: {message}")
    assert "fletch/_eval.py" not in err.traceback
    assert isinstance(err.__cause__, ZeroDivisionError)


def test_exception_row_counts_rows_skipped_for_nulls() -> None:
    @udf
    def fail_on_three(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x

    err = failure(fail_on_three, pa.array([None, 1, None, 3, 4]))
    assert (err.row, err.exc_type, err.message) == (3, "ValueError", "three")


@pytest.mark.parametrize("arity", [0, 1, 3])
def test_exception_row_for_each_arity(arity: int) -> None:
    count = 0

    def fail_fifth(*args: object) -> int:
        nonlocal count
        count += 1
        if count == 5:
            raise KeyError("k")
        return 0

    def function(*args: object) -> int:
        return fail_fifth(*args)

    names = [f"p{i}" for i in range(arity)]
    namespace: dict[str, Any] = {"impl": fail_fifth}
    exec(f"def f({', '.join(names)}):\n    return impl({', '.join(names)})\n", namespace)
    f = namespace["f"]
    f.__annotations__ = {**dict.fromkeys(names, int), "return": int}
    udf(f)
    columns = [pa.array(range(10), type=pa.int64()) for _ in range(arity)]
    err = failure(f, *columns, rows=10)
    assert (err.row, err.exc_type, err.message) == (4, "KeyError", "'k'")


def test_exception_in_big_batch() -> None:
    @udf
    def fail_late(x: int) -> int:
        if x == 777_777:
            raise RuntimeError("late")
        return x

    err = failure(fail_late, pa.array(range(BIG), type=pa.int64()))
    assert (err.row, err.exc_type) == (777_777, "RuntimeError")


def test_traceback_keeps_the_last_ten_frames() -> None:
    # 15 distinct functions calling one another (recursion would be folded into "repeated N times").
    namespace: dict[str, Any] = {}
    source = "def f15():\n    raise ArithmeticError('deep')\n" + "".join(
        f"def f{i}():\n    return f{i + 1}()\n" for i in range(15)
    )
    exec(compile(source, "<chain>", "exec"), namespace)

    @udf
    def deep(x: int) -> int:
        return int(namespace["f0"]())

    err = failure(deep, pa.array([1]))
    assert err.traceback.count('  File "') == 10
    assert "in f15" in err.traceback
    assert "in deep" not in err.traceback  # the oldest frames are dropped
    assert err.traceback.rstrip().endswith("ArithmeticError: deep")


class CustomError(Exception):
    pass


EXCEPTIONS: list[tuple[BaseException, str, str]] = [
    (decimal.InvalidOperation("bad"), "decimal.InvalidOperation", "[<class 'decimal.ConversionSyntax'>]"),
    (CustomError("mine"), f"{__name__}.CustomError", "mine"),
    (KeyError("k"), "KeyError", "'k'"),
    (ValueError(), "ValueError", ""),
]


@pytest.mark.parametrize(("raised", "exc_type", "message"), EXCEPTIONS, ids=[e for _, e, _ in EXCEPTIONS])
def test_exception_types(raised: BaseException, exc_type: str, message: str) -> None:
    @udf
    def fail(x: int) -> int:
        if isinstance(raised, decimal.InvalidOperation):
            return int(decimal.Decimal("x"))  # raises the real thing, with its odd message
        raise raised

    err = failure(fail, pa.array([1]))
    assert (err.row, err.exc_type, err.message) == (0, exc_type, message)


def test_stop_iteration_is_not_swallowed() -> None:
    @udf
    def stop(x: int) -> int:
        if x == 2:
            raise StopIteration
        return x

    err = failure(stop, pa.array([0, 1, 2, 3]))
    assert (err.row, err.exc_type) == (2, "StopIteration")


def test_keyboard_interrupt_propagates() -> None:
    @udf
    def interrupt(x: int) -> int:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(interrupt, pa.array([1]))


def test_none_for_a_required_return() -> None:
    @udf
    def scale(x: int) -> int:
        return None if x == 3 else x  # type: ignore[return-value]

    err = failure(scale, pa.array([0, 1, 2, 3, 4]))
    assert (err.function, err.row, err.exc_type, err.traceback) == ("scale", 3, "TypeError", "")
    assert err.message == "scale returned None for row 3, but its return type int is not Optional"


def test_none_for_a_required_return_counts_skipped_rows() -> None:
    @udf
    def scale(x: int) -> list[int]:
        return None if x == 3 else [x]  # type: ignore[return-value]

    err = failure(scale, pa.array([None, None, 1, 3]))
    assert err.row == 3
    assert err.message == "scale returned None for row 3, but its return type list[int] is not Optional"


def test_none_before_an_unconvertible_value_is_reported_first() -> None:
    @udf
    def mixed(x: int) -> int:
        return {1: None, 2: "two"}.get(x, x)  # type: ignore[return-value]

    err = failure(mixed, pa.array([0, 1, 2]))
    assert (err.row, err.exc_type) == (1, "TypeError")


def test_post_init_failure_names_the_row() -> None:
    @dataclasses.dataclass
    class Positive:
        value: int

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError(f"{self.value} is negative")

    @udf
    def read(p: Positive) -> int:
        return p.value

    column = pa.array(
        [{"value": 1}, None, {"value": -2}], type=pa.struct([pa.field("value", pa.int64(), False)])
    )
    err = failure(read, column)
    assert (err.row, err.exc_type, err.message) == (2, "ValueError", "-2 is negative")


def test_duplicate_map_keys() -> None:
    @udf
    def size(m: dict[str, int]) -> int:
        return len(m)

    column = pa.array([[("a", 1), ("a", 2)]], type=pa.map_(pa.string(), pa.field("value", pa.int64(), False)))
    err = failure(size, column)
    assert err.row is None
    assert err.message.startswith("cannot convert parameter m to Python: ")


# -- conversion failures -------------------------------------------------------------------------------------

# (name, return annotation, value returned for row i, failing row, exc_type, message prefix, part of pyarrow's
# own message): pyarrow's wording is only matched loosely so other pyarrow versions pass.
CONVERSIONS: list[tuple[str, object, Callable[[int], Any], int, str, str, str]] = [
    (
        "Decimal with too many digits",
        decimal.Decimal,
        lambda i: decimal.Decimal("1.0123456789") if i == 2 else decimal.Decimal(i),
        2,
        "pyarrow.lib.ArrowInvalid",
        "returned Decimal('1.0123456789'), which cannot be converted to decimal128(38, 9): ",
        "Rescaling Decimal value would cause data loss",
    ),
    (
        "int out of range",
        int,
        lambda i: 2**63 if i == 3 else i,
        3,
        "OverflowError",
        "returned 9223372036854775808, which cannot be converted to int64: ",
        "too large",
    ),
    (
        "int32 out of range",
        Annotated[int, pa.int32()],
        lambda i: 2**40 if i == 1 else i,
        1,
        "pyarrow.lib.ArrowInvalid",
        "returned 1099511627776, which cannot be converted to int32: ",
        "too large",
    ),
    (
        "str for int",
        int,
        lambda i: "x" if i == 4 else i,
        4,
        "pyarrow.lib.ArrowInvalid",
        "returned 'x', which cannot be converted to int64: ",
        "Could not convert 'x' with type str",
    ),
    (
        "int for str",
        str,
        lambda i: 5 if i == 0 else str(i),
        0,
        "pyarrow.lib.ArrowTypeError",
        "returned 5, which cannot be converted to utf8: ",
        "int",
    ),
    (
        "list for dict",
        dict[str, int],
        lambda i: [1] if i == 2 else {"k": i},
        2,
        "pyarrow.lib.ArrowTypeError",
        "returned [1], which cannot be converted to map<utf8, int64 not null>: ",
        "Could not convert 1 with type int",
    ),
    (
        "long value is shortened",
        int,
        lambda i: [1] * 100 if i == 5 else i,
        5,
        "pyarrow.lib.ArrowInvalid",
        f"returned {repr([1] * 100)[:77]}..., which cannot be converted to int64: ",
        "list",
    ),
]


@pytest.mark.parametrize(
    ("name", "annotation", "produce", "row", "exc_type", "prefix", "fragment"),
    CONVERSIONS,
    ids=[c[0] for c in CONVERSIONS],
)
def test_conversion_failure_names_the_row(
    name: str,
    annotation: object,
    produce: Callable[[int], Any],
    row: int,
    exc_type: str,
    prefix: str,
    fragment: str,
) -> None:
    def convert(x: int) -> Any:
        return produce(x)

    convert.__annotations__ = {"x": int, "return": annotation}
    udf(convert)
    err = failure(convert, pa.array(range(6), type=pa.int64()))
    assert (err.function, err.row, err.exc_type, err.traceback) == ("convert", row, exc_type, "")
    assert err.message.startswith(prefix)
    assert fragment in err.message.removeprefix(prefix)


def test_conversion_failure_in_big_batch_counts_skipped_rows() -> None:
    @udf
    def bad(x: int) -> int:
        return "bad" if x == 900_001 else x  # type: ignore[return-value]

    column = pa.array([None if i % 2 == 0 else i for i in range(BIG)], type=pa.int64())
    err = failure(bad, column)
    assert err.row == 900_001
    assert err.exc_type == "pyarrow.lib.ArrowInvalid"


# -- zero-argument functions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [0, 1, 5])
def test_zero_argument_rowwise(rows: int) -> None:
    counter = iter(range(100))

    @udf
    def next_number() -> int:
        return next(counter)

    assert run(next_number, rows=rows).to_pylist() == list(range(rows))


@pytest.mark.parametrize("rows", [0, 1, 5])
def test_zero_argument_vectorized_broadcasts_a_scalar(rows: int) -> None:
    calls = 0

    @udf(vectorized=True)
    def pi() -> float:
        nonlocal calls
        calls += 1
        return 3.5

    @udf(vectorized=True)
    def pi_scalar() -> float:
        return pa.scalar(3, type=pa.int8())  # type: ignore[no-any-return,unused-ignore]

    assert run(pi, rows=rows).to_pylist() == [3.5] * rows
    assert run(pi_scalar, rows=rows).to_pylist() == [3.0] * rows
    assert calls == 1


def test_zero_argument_vectorized_array() -> None:
    @udf
    def three() -> pa.Int64Array:
        return pa.array([1, 2, 3])

    assert run(three, rows=3).to_pylist() == [1, 2, 3]
    err = failure(three, rows=4)
    assert (err.row, err.exc_type, err.message) == (None, "ValueError", "three returned 3 values for 4 rows")


def test_zero_argument_vectorized_bad_scalar() -> None:
    @udf(vectorized=True)
    def wrong() -> int:
        return "x"  # type: ignore[return-value]

    err = failure(wrong, rows=2)
    assert err.row is None
    assert err.message.startswith("wrong returned 'x', which cannot be converted to int64: ")


# -- vectorized results --------------------------------------------------------------------------------------


def _returning(value_of: Callable[[pa.Array], Any], result: str = "int64") -> Callable[..., Any]:
    def vec(x: pa.Int64Array) -> pa.Array:
        return value_of(x)

    return udf(result_type=result)(vec)


RESULTS: list[tuple[str, Callable[[pa.Array], Any], str, list[Any]]] = [
    ("array", lambda x: pc.multiply(x, 2), "int64", [2, 4, None]),
    ("chunked array", lambda x: pa.chunked_array([x.slice(0, 1), x.slice(1)]), "int64", [1, 2, None]),
    ("empty chunked array of one chunk", lambda x: pa.chunked_array([x]), "int64", [1, 2, None]),
    ("list", lambda x: [7, 8, 9], "int64", [7, 8, None]),
    ("tuple", lambda x: (7, None, 9), "int64", [7, None, None]),
    ("safe cast to int32", lambda x: pc.multiply(x, 2), "int32", [2, 4, None]),
    ("cast to float64", lambda x: x, "float64", [1.0, 2.0, None]),
    ("cast to utf8", lambda x: x, "utf8", ["1", "2", None]),
]


@pytest.mark.parametrize(("name", "value_of", "result", "expected"), RESULTS, ids=[r[0] for r in RESULTS])
def test_vectorized_results(
    name: str, value_of: Callable[[pa.Array], Any], result: str, expected: list[Any]
) -> None:
    function = _returning(value_of, result)
    output = run(function, pa.array([1, 2, None], type=pa.int64()))
    assert output.to_pylist() == expected
    assert output.type == spec_of(function).result.type


VECTOR_FAILURES: list[tuple[str, Callable[[pa.Array], Any], str, str, str, str]] = [
    ("too few", lambda x: x.slice(1), "int64", "ValueError", "vec returned 2 values for 3 rows", ""),
    ("too many", lambda x: [1, 2, 3, 4], "int64", "ValueError", "vec returned 4 values for 3 rows", ""),
    (
        "unsafe cast",
        lambda x: pc.multiply(x, 2**40),
        "int32",
        "pyarrow.lib.ArrowInvalid",
        "vec returned int64 values, which do not cast safely to int32: ",
        "1099511627776",
    ),
    (
        "impossible cast",
        lambda x: x,
        "list<int64>",
        "pyarrow.lib.ArrowNotImplementedError",
        "vec returned int64 values, which do not cast safely to list<int64>: ",
        "Unsupported cast",
    ),
    (
        "scalar",
        lambda x: pc.sum(x),
        "int64",
        "TypeError",
        "vec returned <pyarrow.Int64Scalar: 3> (Int64Scalar); a vectorized UDF with parameters must return "
        "one value per row (a pyarrow array, numpy array or list)",
        "",
    ),
    (
        "None",
        lambda x: None,
        "int64",
        "TypeError",
        "vec returned None (NoneType); a vectorized UDF with parameters must return one value per row "
        "(a pyarrow array, numpy array or list)",
        "",
    ),
]


@pytest.mark.parametrize(
    ("name", "value_of", "result", "exc_type", "prefix", "fragment"),
    VECTOR_FAILURES,
    ids=[f[0] for f in VECTOR_FAILURES],
)
def test_vectorized_failures(
    name: str, value_of: Callable[[pa.Array], Any], result: str, exc_type: str, prefix: str, fragment: str
) -> None:
    err = failure(_returning(value_of, result), pa.array([1, 2, None], type=pa.int64()))
    assert (err.function, err.row, err.exc_type, err.traceback) == ("vec", None, exc_type, "")
    assert err.message.startswith(prefix)
    assert fragment in err.message.removeprefix(prefix)
    if not fragment:
        assert err.message == prefix


def test_vectorized_unconvertible_list_names_the_row() -> None:
    err = failure(_returning(lambda x: [1, "two", 3]), pa.array([1, 2, 3], type=pa.int64()))
    assert (err.row, err.exc_type) == (1, "pyarrow.lib.ArrowInvalid")


def test_vectorized_exception() -> None:
    @udf
    def explode(x: pa.Int64Array) -> pa.Int64Array:
        raise LookupError("nothing here")

    err = failure(explode, pa.array([1, 2]))
    assert (err.row, err.exc_type, err.message) == (None, "LookupError", "nothing here")
    assert str(err) == "explode: LookupError: nothing here"
    assert "in explode" in err.traceback


def test_vectorized_is_called_once_with_arrays() -> None:
    seen: list[tuple[type, type]] = []

    @udf
    def concat(a: pa.StringArray, b: pa.LargeStringArray) -> pa.LargeStringArray:
        seen.append((type(a), type(b)))
        return pc.binary_join_element_wise(a.cast(pa.large_string()), b, pa.scalar("", pa.large_string()))

    result = run(concat, pa.array(["a", None, "c"]), pa.array(["x", "y", None], type=pa.large_string()))
    assert result.to_pylist() == ["ax", None, None]
    assert seen == [(pa.StringArray, pa.LargeStringArray)]


def test_vectorized_numpy_result() -> None:
    np = pytest.importorskip("numpy")

    @udf
    def doubled(x: pa.DoubleArray) -> pa.DoubleArray:
        return np.asarray(x) * 2

    assert run(doubled, pa.array([1.0, 2.5])).to_pylist() == [2.0, 5.0]


# -- structs, maps and explicit types at run time ------------------------------------------------------------


def test_dataclass_in_and_out() -> None:
    @udf
    def mirror(p: Point) -> Shape:
        assert isinstance(p, Point)
        return Shape("mirror", [p, Point(-p.x, p.y)], None)

    column = pa.array([{"x": 1, "y": "a"}], type=spec_of(mirror).params[0].type)
    assert run(mirror, column).to_pylist() == [
        {"name": "mirror", "points": [{"x": 1, "y": "a"}, {"x": -1, "y": "a"}], "center": None}
    ]


def test_dataclass_result_may_be_a_dict() -> None:
    @udf
    def make(x: int) -> Point:
        return {"x": x, "y": None}  # type: ignore[return-value]

    assert run(make, pa.array([5])).to_pylist() == [{"x": 5, "y": None}]


def test_struct_fields_match_dataclass_by_position() -> None:
    @udf
    def read(p: Point) -> str:
        return f"{p.x}:{p.y}"

    renamed = pa.array(
        [{"a": 1, "b": "q"}, {"a": 2, "b": None}],
        type=pa.struct([pa.field("a", pa.int64()), pa.field("b", pa.string())]),
    )
    # Fields differing only in names and nullability are relabelled, not cast.
    assert run(read, renamed).to_pylist() == ["1:q", "2:None"]


def test_child_nullability_mismatch_with_nulls_passes_values_through() -> None:
    @udf
    def count_nulls(xs: list[int]) -> int:
        return sum(x is None for x in xs)

    column = pa.array([[1, None, None]], type=pa.list_(pa.int64()))
    assert run(count_nulls, column).to_pylist() == [2]


def test_maps_arrive_as_dicts() -> None:
    @udf
    def invert(m: dict[str, int]) -> dict[int, str]:
        assert isinstance(m, dict)
        return {v: k for k, v in m.items()}

    column = pa.array([{"a": 1, "b": 2}, {}], type=spec_of(invert).params[0].type)
    assert run(invert, column).to_pylist(maps_as_pydicts="strict") == [{1: "a", 2: "b"}, {}]


def test_explicit_types_at_run_time() -> None:
    @udf(input_types=["int32", "utf8"], result_type="large_utf8")
    def repeat(n, s):  # type: ignore[no-untyped-def]
        return s * n

    result = run(repeat, pa.array([2, None, 0], type=pa.int32()), pa.array(["ab", "x", "y"]))
    assert result.type == pa.large_string()
    assert result.to_pylist() == ["abab", None, ""]


# -- input columns -------------------------------------------------------------------------------------------


def test_columns_are_cast_to_the_declared_types() -> None:
    assert run(plus_one, pa.array([1, None], type=pa.int8())).to_pylist() == [2, None]

    @udf
    def shout(s: str) -> str:
        return s.upper()

    encoded = pa.array(["a", "b", None, "a"]).dictionary_encode()
    assert run(shout, encoded).to_pylist() == ["A", "B", None, "A"]


def test_wrong_column_count() -> None:
    with pytest.raises(ValueError, match=r"plus_one: expected 1 columns \(x\), got 2"):
        spec_of(plus_one).evaluate(batch_of(pa.array([1]), pa.array([2])))


def test_uncastable_column() -> None:
    with pytest.raises(
        ValueError, match="plus_one: parameter x: column of type string cannot be cast to int64"
    ):
        run(plus_one, pa.array(["x"]))


def test_the_function_is_not_called_for_empty_batches() -> None:
    calls = Calls()
    function = identity_udf(int, calls, optional=True)
    assert run(function, pa.array([], type=pa.int64())).to_pylist() == []
    assert calls.count == 0


def _chunks(values: list[int], size: int) -> Iterator[pa.Array]:
    for start in range(0, len(values), size):
        yield pa.array(values[start : start + size], type=pa.int64())


def test_spec_is_reusable_across_batches() -> None:
    values = list(range(100))
    outputs = [run(plus_one, chunk).to_pylist() for chunk in _chunks(values, 7)]
    assert [v for chunk in outputs for v in chunk] == [v + 1 for v in values]
