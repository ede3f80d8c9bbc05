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


# -- table functions, aggregates and transforms ------------------------------------------------------------

KINDS = Path(__file__).resolve().with_name("parity_kinds.py")
SPLITS = 6  # random batch splits of each call
UNLUCKY = 13  # the value parity_kinds.py's UDFs fail on


@pytest.fixture(scope="module")
def local_kinds() -> fletch.testing.LocalUdfs:
    return fletch.testing.load(KINDS)


@pytest.fixture(scope="module")
def remote_kinds(
    start_module_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[fletch.Client]:
    udf_dir = tmp_path_factory.mktemp("parity_kinds")
    shutil.copy(KINDS, udf_dir / "parity_kinds.py")
    server = start_module_server("--udf-dir", str(udf_dir), "--no-builtins", "--strict")
    with fletch.Client(server.location, timeout=120) as client:
        yield client


def kind_columns(name: str, rng: random.Random, rows: int) -> list[pa.Array]:
    """Inputs for one of parity_kinds.py's UDFs, nulls included, that do not fail (no 13 anywhere)."""

    def maybe(value: Any) -> Any:
        return None if rng.random() < NULL_RATE else value

    def ints(low: int, high: int, *, step: int = 1) -> pa.Array:
        values = [maybe(rng.randrange(low, high, step)) for _ in range(rows)]
        return pa.array([v if v != UNLUCKY else v + 1 for v in values], pa.int64())

    if name == "explode":  # now and then enough rows for several output batches
        return [pa.array([maybe(rng.choice([0, 1, 2, 3, 5, 700])) for _ in range(rows)], pa.int64())]
    if name == "pieces":
        return [pa.array([maybe(rng.choice(WORDS)) for _ in range(rows)]), ints(1, 4)]
    if name == "weighted_mean":
        xs = [maybe(float(rng.randint(-50, 50))) for _ in range(rows)]
        ws = [maybe(round(rng.uniform(-3, 3), 2)) for _ in range(rows)]
        return [pa.array([x if x != UNLUCKY else 0.5 for x in xs], pa.float64()), pa.array(ws, pa.float64())]
    if name == "vec_sum":  # even, so no running or final total is 13
        return [ints(-50, 50, step=2)]
    if name == "parse_int":
        return [pa.array([maybe(rng.choice(["1", "-20", "x", "", "300"])) for _ in range(rows)])]
    return [ints(-50, 50)]  # count_rows, running_max, evens


def random_split(columns: list[pa.Array], rng: random.Random) -> list[pa.RecordBatch]:
    """The rows as a random number of batches of random lengths, zero-row batches included."""
    rows = len(columns[0])
    cuts = sorted(rng.choices(range(rows + 1), k=rng.randint(0, 6)))
    names = [f"c{i}" for i in range(len(columns))]
    return [
        pa.RecordBatch.from_arrays([c.slice(start, end - start) for c in columns], names=names)
        for start, end in zip([0, *cuts], [*cuts, rows], strict=True)
    ]


def same(here: tuple[str, Any], there: tuple[str, Any], what: str) -> None:
    assert here[0] == there[0], f"{what}: in process {here}, on the server {there}"
    if here[0] == "error":
        assert here[1] == there[1], what
    elif isinstance(here[1], pa.Table):
        assert here[1].schema == there[1].schema, what
        assert [b.num_rows for b in here[1].to_batches()] == [b.num_rows for b in there[1].to_batches()], what
        assert close(here[1].to_pylist(), there[1].to_pylist()), f"{what}:\n{here[1]}\n!=\n{there[1]}"
    else:
        assert close(here[1], there[1]), f"{what}:\n{here[1]}\n!=\n{there[1]}"


def streamed(udfs: Any, name: str, batches: list[pa.RecordBatch], options: Any) -> list[Any]:
    """Each output batch of a call_stream: its schema and rows."""
    with udfs.call_stream(name, batches, options=options) as outputs:
        return [(out.schema, out.to_pylist()) for out in outputs]


KIND_CALLS = [
    ("explode", None),
    ("pieces", None),
    ("weighted_mean", None),
    ("weighted_mean", {"running": True}),
    ("vec_sum", None),
    ("vec_sum", {"running": True}),
    ("count_rows", {"running": True}),
    ("running_max", None),
    ("evens", None),
    ("parse_int", None),
]


@pytest.mark.parametrize("seed", range(SPLITS))
@pytest.mark.parametrize(("name", "options"), KIND_CALLS)
def test_kinds_on_random_splits(
    local_kinds: fletch.testing.LocalUdfs,
    remote_kinds: fletch.Client,
    name: str,
    options: dict[str, Any] | None,
    seed: int,
) -> None:
    """The same output, batch by batch: rows, row indexes, batch lengths, running results, finish output."""
    rng = random.Random(zlib.crc32(f"{name}/{options}/{seed}".encode()))
    batches = random_split(kind_columns(name, rng, ROWS), rng)
    here = outcome(lambda: local_kinds.call(name, batches, options=options))
    there = outcome(lambda: remote_kinds.call(name, batches, options=options))
    same(here, there, f"{name} call")
    here = outcome(lambda: streamed(local_kinds, name, batches, options))
    there = outcome(lambda: streamed(remote_kinds, name, batches, options))
    same(here, there, f"{name} call_stream")


@pytest.mark.parametrize("seed", range(SPLITS))
@pytest.mark.parametrize("name", ["weighted_mean", "vec_sum"])
def test_two_phase_aggregates(
    local_kinds: fletch.testing.LocalUdfs, remote_kinds: fletch.Client, name: str, seed: int
) -> None:
    """partial on each batch, combine of the first states, merge of everything: equal to one pass, both ways.

    Each side merges its own states: they are signed with its own key.
    """
    rng = random.Random(zlib.crc32(f"{name}/phases/{seed}".encode()))
    batches = random_split(kind_columns(name, rng, ROWS), rng)
    split = rng.randint(0, len(batches))  # the states combined first
    results = []
    for udfs in (local_kinds, remote_kinds):
        states = [udfs.call(name, [batch], options={"phase": "partial"}) for batch in batches]
        assert all(s.schema == pa.schema([pa.field("state", pa.binary())]) for s in states)
        combined = (
            udfs.call(name, pa.concat_tables(states[:split]), options={"phase": "combine"}) if split else None
        )
        rest = [t for t in [combined, *states[split:]] if t is not None]
        merged = udfs.call(name, pa.concat_tables(rest), options={"phase": "merge"})
        results.append((merged, udfs.call(name, batches)))
    (here, here_one_pass), (there, there_one_pass) = results
    assert here.schema == there.schema == here_one_pass.schema
    assert close(here.to_pylist(), there.to_pylist())
    assert close(here.to_pylist(), here_one_pass.to_pylist())
    assert close(there.to_pylist(), there_one_pass.to_pylist())


def test_states_are_refused_across_keys(
    local_kinds: fletch.testing.LocalUdfs, remote_kinds: fletch.Client
) -> None:
    """A state made by one side is not one the other made (different keys): the same UdfError both ways."""
    values = [pa.array([1.0, 2.0]), pa.array([None, 2.0])]
    local_state = local_kinds.call("weighted_mean", *values, options={"phase": "partial"})
    remote_state = remote_kinds.call("weighted_mean", *values, options={"phase": "partial"})
    here = outcome(lambda: local_kinds.call("weighted_mean", remote_state, options={"phase": "merge"}))
    there = outcome(lambda: remote_kinds.call("weighted_mean", local_state, options={"phase": "merge"}))
    assert here == there == ("error", (fletch.UdfError, "weighted_mean", 0, 0, "ValueError"))


@pytest.mark.parametrize("seed", range(SPLITS))
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("explode", None),
        ("weighted_mean", None),
        ("weighted_mean", {"running": True}),
        ("weighted_mean", {"phase": "partial"}),
        ("running_max", None),
    ],
)
def test_kind_failures(
    local_kinds: fletch.testing.LocalUdfs,
    remote_kinds: fletch.Client,
    name: str,
    options: dict[str, Any] | None,
    seed: int,
) -> None:
    """One row fails (a 13 at a random place): the same function, batch, row and exception type."""
    rng = random.Random(zlib.crc32(f"{name}/{options}/fails/{seed}".encode()))
    columns = kind_columns(name, rng, ROWS)
    values = columns[0].to_pylist()
    values[rng.randrange(ROWS)] = UNLUCKY
    columns[0] = pa.array(values, columns[0].type)
    batches = random_split(columns, rng)
    here = outcome(lambda: local_kinds.call(name, batches, options=options))
    there = outcome(lambda: remote_kinds.call(name, batches, options=options))
    assert here == there
    assert here[0] == "error"


def test_failure_after_a_batch(local_kinds: fletch.testing.LocalUdfs, remote_kinds: fletch.Client) -> None:
    """A running aggregate whose result fails after a batch: that batch, no row."""
    batches = [pa.record_batch({"x": [2]}), pa.record_batch({"x": [11, None]})]
    here = outcome(lambda: local_kinds.call("vec_sum", batches, options={"running": True}))
    there = outcome(lambda: remote_kinds.call("vec_sum", batches, options={"running": True}))
    assert here == there == ("error", (fletch.UdfError, "vec_sum", 1, None, "parity_kinds.UnluckyError"))


def test_failure_at_the_end_of_input(
    local_kinds: fletch.testing.LocalUdfs, remote_kinds: fletch.Client
) -> None:
    here = outcome(lambda: local_kinds.call("vec_sum", [13]))
    there = outcome(lambda: remote_kinds.call("vec_sum", [13]))
    assert here == ("error", (fletch.UdfError, "vec_sum", None, None, "parity_kinds.UnluckyError"))
    assert here == there


@pytest.mark.parametrize(
    ("name", "columns", "options"),
    [
        ("explode", ([1],), {"running": True}),
        ("running_max", ([1],), {"phase": "partial"}),
        ("parse_int", (["1"],), {"running": False, "phase": "merge"}),
        ("count_rows", ([1],), {"phase": "merge"}),
        ("count_rows", ([1],), {"phase": "combine"}),
        ("weighted_mean", ([1.0], [1.0]), {"phase": "final"}),
        ("weighted_mean", ([1.0], [1.0]), {"runing": True}),
        ("weighted_mean", ([1.0], [1.0]), {"running": "yes", "phase": 2}),
        ("weighted_mean", ([1.0], [1.0]), {"Phase": ["merge"]}),
        ("weighted_mean", ([1.0], [1.0]), {"x": float("nan")}),
        ("weighted_mean", ([1.0], [1.0]), {"phase": "merge"}),  # floats where states are due
        ("weighted_mean", (pa.array([b"x"]), pa.array([b"y"])), {"phase": "combine"}),
    ],
)
def test_same_refusals(
    local_kinds: fletch.testing.LocalUdfs,
    remote_kinds: fletch.Client,
    name: str,
    columns: tuple[Any, ...],
    options: dict[str, Any],
) -> None:
    """Options and inputs a server refuses before running anything: the same SignatureMismatch message."""
    here = outcome(lambda: local_kinds.call(name, *columns, options=options))
    there = outcome(lambda: remote_kinds.call(name, *columns, options=options))
    assert here == there
    assert here[1][0] is fletch.SignatureMismatch


@pytest.mark.parametrize(
    "parts",
    [[["1", "2"], ["x", "3"]], [["x"], ["1"], ["y"]], [[], ["x"]], [["1"], []]],
    ids=["later-failure", "first-failure", "empty-first", "no-failure"],
)
def test_error_column_follows_the_first_batch(
    local_kinds: fletch.testing.LocalUdfs, remote_kinds: fletch.Client, parts: list[list[str]]
) -> None:
    """A stream has an error column only if a row of its first batch failed; later ones fit that schema."""
    batches = [pa.record_batch([pa.array(p, pa.utf8())], names=["text"]) for p in parts]
    same(
        outcome(lambda: local_kinds.call("parse_int", batches)),
        outcome(lambda: remote_kinds.call("parse_int", batches)),
        "call",
    )
    same(
        outcome(lambda: streamed(local_kinds, "parse_int", batches, None)),
        outcome(lambda: streamed(remote_kinds, "parse_int", batches, None)),
        "call_stream",
    )
