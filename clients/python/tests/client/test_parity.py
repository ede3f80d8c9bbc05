"""fletch.testing and a real server agree on every UDF of testdata/udfs/fixtures.py.

The same module is loaded in process and served by a server whose --udf-dir holds only it. Every UDF is
called both ways on the same inputs, generated from its declared parameter types (nulls included, in batches),
and the results must be equal, or the failures of the same class with the same function, batch, row and
exception type.
"""

from __future__ import annotations

import datetime
import decimal
import math
import random
import shutil
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import fletch
import fletch.testing

Server = Any

FIXTURES = Path(__file__).resolve().parents[4] / "testdata" / "udfs" / "fixtures.py"
ROWS = 40
BATCH_SIZE = 16  # three batches, so batch indexes are compared too
NULL_RATE = 0.15
WORDS = ["", "a", "fletch", "Ünïcödé", "日本語", "with space", "x" * 20]


# -- valid values for any Arrow type -------------------------------------------------------------------------


class Values:
    """Random valid Python values for Arrow types.

    "wide" also draws 64-bit integers near their limits (arithmetic on them overflows the result type). Other
    integers stay small: a count such as repeat_text's n near 2**31 would build strings of gigabytes.
    """

    def __init__(self, seed: int, *, wide: bool = False) -> None:
        self.rng = random.Random(seed)
        self.wide = wide

    def column(self, t: pa.DataType, n: int) -> pa.Array:
        if pa.types.is_float16(t):
            values = [self.rng.uniform(-100, 100) for _ in range(n)]
            mask = np.array([self.rng.random() < NULL_RATE for _ in range(n)])
            return pa.array(np.array(values, dtype=np.float16), mask=mask, type=t)
        return pa.array([self.value(t, nullable=True) for _ in range(n)], type=t)

    def value(self, t: pa.DataType, *, nullable: bool) -> Any:
        if pa.types.is_null(t) or (nullable and self.rng.random() < NULL_RATE):
            return None
        return self._value(t)

    def _int(self, bits: int, signed: bool) -> int:
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        if self.wide and bits == 64 and self.rng.random() < 0.3:
            return self.rng.choice([lo, hi, hi - 1, lo + 1])
        return self.rng.randint(max(lo, -50), min(hi, 50))

    def _value(self, t: pa.DataType) -> Any:
        rng = self.rng
        if pa.types.is_boolean(t):
            return rng.random() < 0.5
        if pa.types.is_integer(t):
            return self._int(t.bit_width, pa.types.is_signed_integer(t))
        if pa.types.is_floating(t):
            return round(rng.uniform(-1000, 1000), 3)
        if pa.types.is_decimal(t):
            digits = min(t.precision, 15)
            return decimal.Decimal(rng.randint(-(10**digits) + 1, 10**digits - 1)).scaleb(-t.scale)
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return rng.choice(WORDS)
        if pa.types.is_fixed_size_binary(t):
            return rng.randbytes(t.byte_width)
        if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
            return rng.randbytes(rng.randint(0, 8))
        if pa.types.is_date(t):
            return datetime.date(2000, 1, 1) + datetime.timedelta(days=rng.randint(0, 15000))
        if pa.types.is_time(t):
            micros = {"s": 0, "ms": rng.randint(0, 999) * 1000}.get(t.unit, rng.randint(0, 999_999))
            return datetime.time(rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59), micros)
        if pa.types.is_timestamp(t):
            micros = {"s": 0, "ms": rng.randint(0, 999) * 1000}.get(t.unit, rng.randint(0, 999_999))
            start = datetime.datetime(2000, 1, 1) + datetime.timedelta(seconds=rng.randint(0, 10**9))
            value = start.replace(microsecond=micros)
            return value.replace(tzinfo=datetime.timezone.utc) if t.tz else value
        if pa.types.is_duration(t):
            micros = {"s": 0, "ms": rng.randint(0, 999) * 1000}.get(t.unit, rng.randint(0, 999_999))
            return datetime.timedelta(seconds=rng.randint(-(10**6), 10**6), microseconds=micros)
        if pa.types.is_interval(t):
            return pa.MonthDayNano([rng.randint(-12, 12), rng.randint(-30, 30), rng.randint(0, 10**9)])
        if pa.types.is_fixed_size_list(t):
            field = t.value_field
            return [self.value(field.type, nullable=field.nullable) for _ in range(t.list_size)]
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
            field = t.value_field
            return [self.value(field.type, nullable=field.nullable) for _ in range(rng.randint(0, 4))]
        if pa.types.is_map(t):
            keys = {self._value(t.key_type) for _ in range(rng.randint(0, 4))}
            item = t.item_field
            return [(k, self.value(item.type, nullable=item.nullable)) for k in keys]
        if pa.types.is_struct(t):
            return {f.name: self.value(f.type, nullable=f.nullable) for f in t}
        raise NotImplementedError(f"no value generator for {t}; add one to tests/client/test_parity.py")


def inputs(info: fletch.UdfInfo, seed: int, *, wide: bool) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Positional columns (or rows=) for one call of info."""
    if not info.params:
        return (), {"rows": ROWS}
    values = Values(seed, wide=wide)
    return tuple(values.column(p.type, ROWS) for p in info.params), {}


# -- both ways -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local() -> fletch.testing.LocalUdfs:
    return fletch.testing.load(FIXTURES)


@pytest.fixture(scope="module")
def remote(
    start_module_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[fletch.Client]:
    udf_dir = tmp_path_factory.mktemp("fixtures_only")
    shutil.copy(FIXTURES, udf_dir / "fixtures.py")
    server = start_module_server("--udf-dir", str(udf_dir), "--no-builtins", "--strict")
    with fletch.Client(server.location, timeout=120) as client:
        yield client


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """("ok", result) or ("error", comparable fields of the exception)."""
    try:
        return "ok", call()
    except fletch.UdfError as err:
        return "error", (type(err), err.function, err.batch, err.row, err.exc_type)
    except fletch.FletchError as err:
        return "error", (type(err), str(err))


def close(a: Any, b: Any) -> bool:
    """Equal, but floats only to 1e-12: the server's Python (3.14) sums floats more exactly than 3.11."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    return bool(a == b)


def fixture_names() -> list[str]:
    return [i.name for i in fletch.testing.load(FIXTURES).list()]


def test_same_catalog(local: fletch.testing.LocalUdfs, remote: fletch.Client) -> None:
    listed = {i.name: i for i in remote.list()}
    assert sorted(listed) == [i.name for i in local.list()]
    for info in local.list():
        served = listed[info.name]
        # Everything but the version, which only the server computes.
        assert served.params == info.params, info.name
        assert served.returns == info.returns, info.name
        assert (served.kind, served.language, served.doc, served.volatility) == (
            info.kind,
            info.language,
            info.doc,
            info.volatility,
        ), info.name


@pytest.mark.parametrize("wide", [False, True], ids=["small", "wide"])
@pytest.mark.parametrize("name", fixture_names())
def test_same_results(local: fletch.testing.LocalUdfs, remote: fletch.Client, name: str, wide: bool) -> None:
    info = local.describe(name)
    seed = zlib.crc32(f"{name}/{wide}".encode())
    columns, kw = inputs(info, seed, wide=wide)
    here = outcome(lambda: local.call(name, *columns, batch_size=BATCH_SIZE, **kw))
    there = outcome(lambda: remote.call(name, *columns, batch_size=BATCH_SIZE, **kw))
    assert here[0] == there[0], f"{name}: in process {here}, on the server {there}"
    if here[0] == "ok":
        assert here[1].type == there[1].type, name
        assert here[1].equals(there[1]) or close(here[1].to_pylist(), there[1].to_pylist()), (
            f"{name}:\n{here[1].to_pylist()}\n!=\n{there[1].to_pylist()}"
        )
    elif here[1][2:] != there[1][2:] and here[1][0] is there[1][0] is fletch.UdfError:
        # Several batches fail and the server, running them in parallel, reported another one first: that
        # batch must fail the same way in process.
        _, function, batch, row, exc_type = there[1]
        assert (here[1][0], here[1][1], here[1][4]) == (fletch.UdfError, function, exc_type), name
        piece = [c.slice(batch * BATCH_SIZE, BATCH_SIZE) for c in columns]
        alone = outcome(lambda: local.call(name, *piece))
        assert alone == ("error", (fletch.UdfError, function, 0, row, exc_type)), name
    else:
        assert here[1] == there[1], name


@pytest.mark.parametrize("name", fixture_names())
def test_same_mismatches(local: fletch.testing.LocalUdfs, remote: fletch.Client, name: str) -> None:
    info = local.describe(name)
    if not info.params:
        pytest.skip("no parameters to get wrong")
    columns = list(inputs(info, 1, wide=False)[0])
    wrong = (
        pa.array([True] * ROWS) if not pa.types.is_boolean(info.params[0].type) else pa.array(["x"] * ROWS)
    )
    for bad in ([wrong, *columns[1:]], [*columns, wrong]):  # a wrong type; one column too many
        here = outcome(lambda bad=bad: local.call(name, *bad))
        there = outcome(lambda bad=bad: remote.call(name, *bad))
        assert here[0] == there[0] == "error"
        assert here[1] == there[1]
        assert here[1][0] is fletch.SignatureMismatch


def test_same_not_found(local: fletch.testing.LocalUdfs, remote: fletch.Client) -> None:
    for name in ("add_it", "nothing_like_it", "Upper_str"):
        here = outcome(lambda name=name: local.call(name, [1]))
        there = outcome(lambda name=name: remote.call(name, [1]))
        assert here == there
        assert here[1][0] is fletch.UdfNotFound


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        ("fails_on_three", ([1, 2, 3, 4, 5, 6],)),
        ("fails_on_three", ([1, 2, None],)),
        ("vec_fails", ([1],)),
        ("greet", (["a", None, "c"], ["!", "?", None])),
        ("with_tax", ([decimal.Decimal("1.00"), None],)),
        ("vec_double", (pa.array([1, None, 3], pa.int32()),)),
    ],
)
def test_same_failures_of_client_udfs(
    udf_server: Server, udf_dir: Path, name: str, columns: tuple[Any, ...]
) -> None:
    local = fletch.testing.load(udf_dir / "client_udfs.py")
    with fletch.Client(udf_server.location, timeout=60) as remote:
        here = outcome(lambda: local.call(name, *columns, batch_size=2))
        there = outcome(lambda: remote.call(name, *columns, batch_size=2))
    assert here[0] == there[0]
    if here[0] == "ok":
        assert here[1].equals(there[1])
    else:
        assert here[1] == there[1]
