"""UDF fixtures covering every annotation fletch maps to Arrow.

``fixtures.golden.json`` holds ``describe()`` of every UDF here, in order. Two tests compare against it: the
Python unit tests (``clients/python/tests/unit/test_golden.py``, which rewrites it when
``FLETCH_UPDATE_GOLDEN=1``) and the Go worker tests, which load this module through the real worker.

The module uses ``from __future__ import annotations`` on purpose: every annotation is a string until fletch
resolves it.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from typing import Annotated, NewType, Optional, TypedDict, Union

import pyarrow as pa
import pyarrow.compute as pc

from fletch import udf

# -- scalars -----------------------------------------------------------------------------------------------------


@udf
def add_int(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@udf
def scale_float(x: float, factor: float) -> float:
    """Multiply x by factor.

    The docstring's indentation is removed, as inspect.getdoc does.
    """
    return x * factor


@udf(volatility="immutable")
def upper_str(s: str) -> str:
    return s.upper()


@udf
def reverse_bytes(b: bytes) -> bytes:
    return b[::-1]


@udf
def negate_bool(b: bool) -> bool:
    return not b


@udf
def round_decimal(d: decimal.Decimal) -> decimal.Decimal:
    """Decimal maps to decimal128(38, 9) unless Annotated says otherwise."""
    return d.quantize(decimal.Decimal("0.01"))


@udf
def next_day(d: datetime.date) -> datetime.date:
    return d + datetime.timedelta(days=1)


@udf
def add_hour(t: datetime.datetime) -> datetime.datetime:
    return t + datetime.timedelta(hours=1)


@udf
def start_of_hour(t: datetime.time) -> datetime.time:
    return t.replace(minute=0, second=0, microsecond=0)


@udf
def double_duration(d: datetime.timedelta) -> datetime.timedelta:
    return d * 2


UserId = NewType("UserId", int)


@udf
def user_label(user: UserId) -> str:
    return f"user-{user}"


# -- nullability -------------------------------------------------------------------------------------------------


@udf
def coalesce_int(a: Optional[int], b: int) -> int:
    """a unless it is null, else b."""
    return b if a is None else a


@udf
def safe_div(a: int, b: int) -> int | None:
    return None if b == 0 else a // b


@udf
def length_or_null(s: Union[str, None]) -> Optional[int]:
    return None if s is None else len(s)


# -- lists and maps ------------------------------------------------------------------------------------------------


@udf
def sum_list(xs: list[int]) -> int:
    return sum(xs)


@udf
def compact(xs: list[Optional[int]]) -> list[int]:
    return [x for x in xs if x is not None]


@udf
def sorted_keys(m: dict[str, float]) -> list[str]:
    return sorted(m)


@udf
def count_nulls(m: dict[str, list[Optional[int]]]) -> dict[str, int]:
    return {k: sum(v is None for v in vs) for k, vs in m.items()}


@udf
def maybe_lookup(m: dict[int, Optional[str]], key: int) -> Optional[str]:
    return m.get(key)


# -- structs -------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Point:
    x: float
    y: float
    label: Optional[str] = None


@dataclasses.dataclass
class Segment:
    start: Point
    end: Point
    tags: list[str]


class Address(TypedDict):
    street: str
    city: str
    zip_code: Optional[str]


class Customer(TypedDict):
    name: str
    addresses: list[Address]
    scores: dict[str, float]


@udf
def midpoint(segment: Segment) -> Point:
    """Dataclass parameters arrive as dataclasses; a returned dataclass becomes a struct."""
    s, e = segment.start, segment.end
    return Point((s.x + e.x) / 2, (s.y + e.y) / 2, "mid")


@udf
def path_length(points: list[Point]) -> float:
    return sum(((b.x - a.x) ** 2 + (b.y - a.y) ** 2) ** 0.5 for a, b in zip(points, points[1:]))


@udf
def format_address(address: Address) -> str:
    """TypedDict parameters stay dicts."""
    zip_code = address["zip_code"] or "?"
    return f"{address['street']}, {zip_code} {address['city']}"


@udf
def first_city(customer: Customer) -> Optional[str]:
    return customer["addresses"][0]["city"] if customer["addresses"] else None


# -- Annotated overrides -------------------------------------------------------------------------------------------


@udf
def narrow(
    x: Annotated[int, pa.int32()],
    s: Annotated[str, pa.large_string()],
    price: Annotated[decimal.Decimal, pa.decimal128(10, 2)],
) -> Annotated[Optional[int], pa.int16()]:
    return x if len(s) < 10 and price > 0 else None


@udf
def nullable_narrow(x: Optional[Annotated[int, pa.int32()]], y: Annotated[Optional[int], pa.int8()]) -> int:
    return (x or 0) + (y or 0)


@udf
def zoned(t: Annotated[datetime.datetime, pa.timestamp("ms", tz="UTC")]) -> Annotated[str, pa.string_view()]:
    return t.isoformat()


@udf
def tags(xs: list[Annotated[str, pa.large_string()]]) -> Annotated[list[int], pa.large_list(pa.int32())]:
    return [len(x) for x in xs]


# -- explicit types, names, docs -----------------------------------------------------------------------------------


@udf(input_types=["int32", "utf8"], result_type="large_utf8")
def repeat_text(n, s):  # type: ignore[no-untyped-def]
    """No annotations: the types come from input_types and result_type."""
    return s * n


@udf(input_types=[pa.float32(), "fixed_size_list<float32 not null, 3>"], result_type=pa.float32())
def dot3(scale: Optional[float], v: list[float]) -> float:
    return (scale or 1.0) * sum(v)


@udf(input_types=["string", "map<string, double>"], result_type="double")
def weight(key: str, weights: dict[str, float]) -> Optional[float]:
    """pyarrow spellings in input_types are accepted and described canonically."""
    return weights.get(key)


@udf(name="renamed", volatility="stable", doc="A UDF whose name differs from its function's.")
def original_name(x: int) -> int:
    """This docstring is replaced by doc=."""
    return x


@udf
def answer() -> int:
    """A zero-argument function is called once per row."""
    return 42


@udf
def positional(a: int, /, b: int = 1) -> int:
    """Positional-only parameters and defaults are fine."""
    return a * b


# -- vectorized ----------------------------------------------------------------------------------------------------


@udf
def vec_add(a: pa.Int64Array, b: pa.Int64Array) -> pa.Int64Array:
    """Called once per batch with whole columns."""
    return pc.add(a, b)


@udf
def vec_concat(a: pa.StringArray, b: pa.LargeStringArray) -> pa.LargeStringArray:
    return pc.binary_join_element_wise(a.cast(pa.large_string()), b, pa.scalar("", pa.large_string()))


@udf
def vec_epoch_ms(t: Annotated[pa.TimestampArray, pa.timestamp("ms", tz="UTC")]) -> Annotated[pa.Array, pa.int64()]:
    return t.cast(pa.int64())


@udf
def vec_is_null(a: Optional[pa.DoubleArray]) -> pa.BooleanArray:
    """Optional array parameters receive their nulls; others null the row."""
    return pc.is_null(a)


@udf(vectorized=True)
def vec_half(x: float) -> float:
    return pc.divide(x, 2.0)


@udf(vectorized=True, input_types=["float32"], result_type="float64")
def vec_explicit(x):  # type: ignore[no-untyped-def]
    return x.cast(pa.float64())


@udf(vectorized=True)
def vec_pi() -> float:
    """A zero-argument vectorized UDF returns one value for every row."""
    return 3.141592653589793


add_int_alias = add_int  # bound twice, collected once
