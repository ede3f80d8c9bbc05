"""DoExchange with the built-in functions, checked against Python references."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import math
import random
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pytest

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MIB_ROWS = 1 << 20

# Text in several scripts. upper() must change Latin, accented Latin, Greek
# and Cyrillic letters and leave CJK, Hangul, kana and emoji alone;
# characters whose full upper case mapping is longer (ß, ŉ, ﬁ, ΐ, և) stay as
# they are in Go, whose strings.ToUpper maps rune by rune.
ALPHABET = (
    "abcxyzABCXYZ019 _-.,!?"
    "éèêëàâçñöüåøæœÿıſ"
    "ßŉﬁǆǅ"
    "αβγδεζηθικλμνξοπρσςτυφχψωάέήίόύώϊϋΐΰ"
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяєіїґ"
    "և"
    "中文字漢字日本語ひらがなカタカナ한국어"
    "🎉🙂👍🏽😀"
    "\u0301"  # combining acute accent
)


def go_upper(s: str) -> str:
    """Go's strings.ToUpper: each rune through unicode.ToUpper (no length-changing mappings)."""
    return "".join(ch.upper() if len(ch.upper()) == 1 else ch for ch in s)


def div_trunc(a: int, b: int) -> int:
    """Integer division truncated toward zero, as in Go."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def strict(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The null policy for non-nullable parameters: any null argument gives null."""

    def call(*args: Any) -> Any:
        return None if any(a is None for a in args) else fn(*args)

    return call


def int_pool(rng: random.Random, lo: int, hi: int, nulls: int = 100) -> list[int | None]:
    return [rng.randint(lo, hi) for _ in range(997)] + [None] * nulls


def text_pool(rng: random.Random, nulls: int = 100) -> list[str | None]:
    pool: list[str | None] = ["", "straße", "ΣΊΣΥΦΟΣ σίσυφος", "Ёжик в тумане", "中文 ✓", "🎉"]
    pool += ["".join(rng.choices(ALPHABET, k=rng.randint(0, 12))) for _ in range(991)]
    return pool + [None] * nulls


def float_pool(rng: random.Random) -> list[float | None]:
    special = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        math.inf,
        -math.inf,
        math.nan,
        1e308,
        -1e308,
        5e-324,
        2.2250738585072014e-308,
    ]
    wide = [rng.uniform(-1e6, 1e6) for _ in range(900)]
    narrow = [rng.uniform(-1, 1) for _ in range(86)]
    return special + wide + narrow + [None] * 100


def columns(
    rng: random.Random, n: int, edges: Sequence[tuple[Any, ...]], pools: Sequence[list[Any]]
) -> list[list[Any]]:
    """n rows: the edge rows first (as many as fit), then random picks from pools."""
    rows = list(edges[:n])
    rest = n - len(rows)
    cols = [[r[i] for r in rows] for i in range(len(pools))]
    for col, pool in zip(cols, pools, strict=False):
        col.extend(rng.choices(pool, k=rest))
    return cols


@dataclasses.dataclass(frozen=True)
class Builtin:
    name: str
    param_types: tuple[pa.DataType, ...]
    out_type: pa.DataType
    reference: Callable[..., Any]  # one row's arguments -> the expected value
    generate: Callable[[random.Random, int], list[list[Any]]]  # n rows of arguments, by column


def gen_add(rng: random.Random, n: int) -> list[list[Any]]:
    edges = [
        (INT64_MAX, 0),
        (INT64_MIN, 0),
        (INT64_MAX, INT64_MIN),
        (INT64_MIN, INT64_MAX),
        (-1, 1),
        (None, INT64_MAX),
        (INT64_MAX, None),
        (None, None),
    ]
    return columns(rng, n, edges, [int_pool(rng, -(2**62), 2**62)] * 2)


def gen_echo_int(rng: random.Random, n: int) -> list[list[Any]]:
    return columns(rng, n, [(INT64_MIN,), (INT64_MAX,), (None,), (0,)], [int_pool(rng, INT64_MIN, INT64_MAX)])


def gen_text(rng: random.Random, n: int) -> list[list[Any]]:
    edges = [("straße ǆ ﬁ",), ("",), (None,), ("Привет, мир! Γειά σου κόσμε 你好 🎉",)]
    return columns(rng, n, edges, [text_pool(rng)])


def gen_div(rng: random.Random, n: int) -> list[list[Any]]:
    edges = [
        (7, 2),
        (-7, 2),
        (7, -2),
        (-7, -2),
        (INT64_MIN, 1),
        (INT64_MAX, -1),
        (INT64_MIN, 2),
        (None, 0),
        (5, None),
        (0, 3),
    ]
    divisors = [d for d in int_pool(rng, -(2**40), 2**40) if d not in (0, -1)]
    divisors += [1, 2, -2, 3, -3, 7, -7, INT64_MAX, INT64_MIN]
    return columns(rng, n, edges, [int_pool(rng, INT64_MIN, INT64_MAX), divisors])


def gen_coalesce(rng: random.Random, n: int) -> list[list[Any]]:
    edges = [(None, None), (None, 2), (1, None), (1, 2), (INT64_MIN, None), (None, INT64_MAX)]
    return columns(rng, n, edges, [int_pool(rng, INT64_MIN, INT64_MAX, nulls=500)] * 2)


def gen_pi(rng: random.Random, n: int) -> list[list[Any]]:
    return []


def gen_multiply(rng: random.Random, n: int) -> list[list[Any]]:
    edges = [
        (math.inf, 0.0),
        (-0.0, 5.0),
        (0.0, -5.0),
        (1e308, 10.0),
        (math.nan, 1.0),
        (None, 1.0),
        (2.0, None),
    ]
    return columns(rng, n, edges, [float_pool(rng)] * 2)


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in [
        Builtin("add_int64", (pa.int64(), pa.int64()), pa.int64(), strict(lambda a, b: a + b), gen_add),
        Builtin("echo_int64", (pa.int64(),), pa.int64(), lambda x: x, gen_echo_int),
        Builtin("echo_utf8", (pa.string(),), pa.string(), lambda s: s, gen_text),
        Builtin("upper", (pa.string(),), pa.string(), strict(go_upper), gen_text),
        Builtin("div_int64", (pa.int64(), pa.int64()), pa.int64(), strict(div_trunc), gen_div),
        Builtin(
            "coalesce_int64",
            (pa.int64(), pa.int64()),
            pa.int64(),
            lambda a, b: b if a is None else a,
            gen_coalesce,
        ),
        Builtin("pi", (), pa.float64(), lambda: math.pi, gen_pi),
        Builtin(
            "multiply_float64",
            (pa.float64(), pa.float64()),
            pa.float64(),
            strict(lambda a, b: a * b),
            gen_multiply,
        ),
    ]
}


@dataclasses.dataclass(frozen=True)
class Case:
    """Input batch and expected output values for one built-in."""

    fn: Builtin
    batch: pa.RecordBatch
    expected: list[Any]

    def slice(self, offset: int, length: int) -> tuple[pa.RecordBatch, list[Any]]:
        return self.batch.slice(offset, length), self.expected[offset : offset + length]


def make_batch(types: Sequence[pa.DataType], cols: Sequence[list[Any]], n: int) -> pa.RecordBatch:
    """A batch of the given columns; with no columns, n rows of nothing."""
    if not types:
        return pa.RecordBatch.from_struct_array(pa.array([{}] * n, pa.struct([])))
    arrays = [pa.array(col, t) for col, t in zip(cols, types, strict=False)]
    return pa.record_batch(arrays, names=[f"c{i}" for i in range(len(arrays))])


@functools.cache
def make_case(name: str, n: int, seed: int = 0) -> Case:
    fn = BUILTINS[name]
    rng = random.Random(f"{name}/{n}/{seed}")
    cols = fn.generate(rng, n)
    expected = (
        [fn.reference(*row) for row in zip(*cols, strict=False)]
        if cols
        else [fn.reference() for _ in range(n)]
    )
    return Case(fn, make_batch(fn.param_types, cols, n), expected)


def float_key(x: float | None) -> object:
    """Compare floats exactly: by bit pattern, with every NaN alike."""
    if x is None or math.isnan(x):
        return x if x is None else "nan"
    return struct.pack("<d", x)


def assert_values(fn: Builtin, out: pa.RecordBatch, expected: list[Any], where: str = "") -> None:
    assert out.num_columns == 1, out.schema
    assert out.schema.field(0).type == fn.out_type, out.schema
    got = out.column(0).to_pylist()
    assert len(got) == len(expected), where
    if fn.out_type == pa.float64():
        got, expected = [float_key(x) for x in got], [float_key(x) for x in expected]
    if got != expected:
        first = next(i for i, (g, e) in enumerate(zip(got, expected, strict=False)) if g != e)
        pytest.fail(f"{fn.name}{where}: row {first}: got {got[first]!r}, want {expected[first]!r}")


def input_schema(fn: Builtin) -> pa.Schema:
    return pa.schema([pa.field(f"c{i}", t) for i, t in enumerate(fn.param_types)])


def random_sizes(rng: random.Random, total: int, most: int) -> list[int]:
    """Batch sizes summing to total, including some empty batches."""
    sizes = []
    while total > 0:
        size = min(total, rng.choice([0, 1, rng.randint(1, most), rng.randint(1, most)]))
        sizes.append(size)
        total -= size
    return sizes


@pytest.mark.parametrize("rows", [0, 1, 7, 1000, 65537])
@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_single_batch(server: Any, name: str, rows: int) -> None:
    case = make_case(name, rows)
    (out,) = server.exchange(name, [case.batch])
    assert_values(case.fn, out, case.expected)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_million_rows_one_batch(server: Any, name: str) -> None:
    case = make_case(name, MIB_ROWS)
    (out,) = server.exchange(name, [case.batch])
    assert_values(case.fn, out, case.expected)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_million_rows_random_batches(server: Any, name: str) -> None:
    case = make_case(name, MIB_ROWS)
    sizes = random_sizes(random.Random(f"sizes/{name}"), MIB_ROWS, 70_000)
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    batches = [case.batch.slice(o, s) for o, s in zip(offsets, sizes, strict=False)]
    outputs = server.exchange(name, batches, schema=case.batch.schema)
    assert len(outputs) == len(batches)
    for i, (out, o, s) in enumerate(zip(outputs, offsets, sizes, strict=False)):
        assert_values(case.fn, out, case.expected[o : o + s], where=f" batch {i}")


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_zero_batches(server: Any, name: str) -> None:
    fn = BUILTINS[name]
    with server.open_exchange(name, input_schema(fn)) as (writer, reader):
        writer.done_writing()
        table = reader.read_all()
    assert table.num_rows == 0
    assert table.to_batches() == []
    assert table.schema.names == [name]
    assert table.schema.field(0).type == fn.out_type


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_schema_before_first_batch(server: Any, name: str) -> None:
    fn = BUILTINS[name]
    with server.open_exchange(name, input_schema(fn)) as (writer, reader):
        schema = reader.schema  # nothing written yet: would block if the server waited for input
        assert schema.equals(pa.schema([pa.field(name, fn.out_type, nullable=True)]))
        case = make_case(name, 7)
        writer.write_batch(case.batch)
        assert_values(fn, reader.read_chunk().data, case.expected)
        server.finish_exchange(writer, reader)


@pytest.mark.parametrize("name", ["add_int64", "upper", "pi"])
def test_zero_row_batches(server: Any, name: str) -> None:
    case = make_case(name, 20)
    sizes = [0, 3, 0, 0, 5, 12, 0]
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    outputs = server.exchange(name, [case.batch.slice(o, s) for o, s in zip(offsets, sizes, strict=False)])
    assert [o.num_rows for o in outputs] == sizes
    for out, o, s in zip(outputs, offsets, sizes, strict=False):
        assert_values(case.fn, out, case.expected[o : o + s])


def test_lock_step(server: Any) -> None:
    """Each output arrives before the next input is written, in order."""
    fn = BUILTINS["div_int64"]
    with server.open_exchange(fn.name, input_schema(fn)) as (writer, reader):
        for i in range(10):
            writer.write_batch(make_batch(fn.param_types, [[i * 100, -i * 100 - 1], [7, 3]], 2))
            out = reader.read_chunk().data
            assert out.column(0).to_pylist() == [div_trunc(i * 100, 7), div_trunc(-i * 100 - 1, 3)]
        server.finish_exchange(writer, reader)


def test_columns_matched_by_position(server: Any) -> None:
    batch = pa.record_batch([pa.array([10, 9]), pa.array([3, -2])], names=["b", "a"])
    (out,) = server.exchange("div_int64", [batch])
    assert out.column(0).to_pylist() == [3, -4]


def test_metadata_only_messages_are_ignored(server: Any) -> None:
    case = make_case("upper", 30)
    fn = case.fn
    with server.open_exchange(fn.name, case.batch.schema) as (writer, reader):
        writer.write_metadata(b"before the first batch")
        for i in range(3):
            batch, expected = case.slice(i * 10, 10)
            writer.write_batch(batch)
            writer.write_metadata(f"after batch {i}".encode())
            writer.write_metadata(b"")
            chunk = reader.read_chunk()
            assert_values(fn, chunk.data, expected, where=f" batch {i}")
        writer.write_metadata(b"at the end")
        server.finish_exchange(writer, reader)


INT_CASTS = [
    (pa.int8(), [-128, 127, None, 0]),
    (pa.int16(), [-32768, 32767, None, -1]),
    (pa.int32(), [-(2**31), 2**31 - 1, None, 5]),
    (pa.uint8(), [0, 255, None, 1]),
    (pa.uint16(), [0, 65535, None, 2]),
    (pa.uint32(), [0, 2**32 - 1, None, 3]),
]
TEXT = ["straße", None, "", "Ωμέγα Щука 中文 🎉", "ǆ"]
TEXT_CASTS = [pa.large_string(), pa.string_view()]


@pytest.mark.parametrize(("dtype", "values"), INT_CASTS, ids=[str(t) for t, _ in INT_CASTS])
def test_narrow_integers_are_widened(server: Any, dtype: pa.DataType, values: list[int | None]) -> None:
    (echoed,) = server.exchange("echo_int64", [pa.record_batch([pa.array(values, dtype)], names=["x"])])
    assert echoed.schema.field(0).type == pa.int64()
    assert echoed.column(0).to_pylist() == values
    batch = pa.record_batch([pa.array(values, dtype), pa.array([1, 2, 3, 4], pa.int64())], names=["a", "b"])
    (added,) = server.exchange("add_int64", [batch])
    assert added.column(0).to_pylist() == [
        None if v is None else v + d for v, d in zip(values, [1, 2, 3, 4], strict=False)
    ]
    batch = pa.record_batch([pa.array(values, dtype), pa.array([9] * 4, dtype)], names=["a", "b"])
    (coalesced,) = server.exchange("coalesce_int64", [batch])
    assert coalesced.column(0).to_pylist() == [9 if v is None else v for v in values]


@pytest.mark.parametrize("dtype", TEXT_CASTS, ids=str)
@pytest.mark.parametrize("name", ["echo_utf8", "upper"])
def test_text_representations_are_cast(server: Any, name: str, dtype: pa.DataType) -> None:
    fn = BUILTINS[name]
    (out,) = server.exchange(name, [pa.record_batch([pa.array(TEXT, dtype)], names=["s"])])
    assert out.schema.field(0).type == pa.string()
    assert out.column(0).to_pylist() == [fn.reference(s) for s in TEXT]


UPPER_EXAMPLES = [
    ("straße", "STRAßE"),  # ß has no single-rune upper case
    ("ǆemal ǅ", "ǄEMAL Ǆ"),
    ("ﬁx", "ﬁX"),  # nor has the ligature
    ("café crème brûlée", "CAFÉ CRÈME BRÛLÉE"),
    ("σίσυφος ΐ", "ΣΊΣΥΦΟΣ ΐ"),
    ("ёжик в тумане", "ЁЖИК В ТУМАНЕ"),
    ("ıi", "II"),
    ("中文字 ひらがな 한국어", "中文字 ひらがな 한국어"),
    ("🎉ok🙂👍🏽", "🎉OK🙂👍🏽"),
    ("", ""),
    (None, None),
]


def test_upper_examples(server: Any) -> None:
    inputs = [s for s, _ in UPPER_EXAMPLES]
    (out,) = server.exchange("upper", [pa.record_batch([pa.array(inputs, pa.string())], names=["s"])])
    assert out.column(0).to_pylist() == [u for _, u in UPPER_EXAMPLES]
    assert [go_upper(s) if s is not None else None for s in inputs] == [u for _, u in UPPER_EXAMPLES]


def test_mixed_input_types_in_one_batch(server: Any) -> None:
    a = pa.array([-5, None, 100], pa.int8())
    b = pa.array([65535, 1, 2], pa.uint16())
    batch = pa.record_batch([a, b], names=["a", "b"])
    (out,) = server.exchange("add_int64", [batch])
    assert out.column(0).to_pylist() == [65530, None, 102]


RESLICE_FLAGS = {"rows": ("--max-batch-rows", "1000"), "bytes": ("--max-batch-bytes", "64KiB")}


@pytest.fixture(scope="module", params=sorted(RESLICE_FLAGS))
def reslicing_server(request: pytest.FixtureRequest, start_module_server: Callable[..., Any]) -> Any:
    return start_module_server(*RESLICE_FLAGS[request.param])


@pytest.mark.parametrize("name", ["add_int64", "upper", "echo_utf8", "multiply_float64", "pi"])
def test_resliced_batches_come_back_whole(reslicing_server: Any, name: str) -> None:
    case = make_case(name, 100_000)
    small, small_expected = case.slice(0, 999)
    outputs = reslicing_server.exchange(name, [case.batch, small, case.batch])
    assert [o.num_rows for o in outputs] == [100_000, 999, 100_000]
    assert_values(case.fn, outputs[0], case.expected, where=" batch 0")
    assert_values(case.fn, outputs[1], small_expected, where=" batch 1")
    assert_values(case.fn, outputs[2], case.expected, where=" batch 2")


def test_concurrent_exchanges(server: Any) -> None:
    workers = 8
    barrier = threading.Barrier(workers, timeout=60)

    def run(k: int) -> list[list[int | None]]:
        fn = BUILTINS["add_int64"]
        base = k * 1_000_000
        with server.open_exchange(fn.name, input_schema(fn)) as (writer, reader):
            barrier.wait()  # every exchange is open before any sends data
            got = []
            for i in range(20):
                a = [base + i * 1000 + j for j in range(500 + k)]
                b = [None if j % 7 == k else k for j in range(len(a))]
                writer.write_batch(make_batch(fn.param_types, [a, b], len(a)))
                got.append(reader.read_chunk().data.column(0).to_pylist())
            server.finish_exchange(writer, reader)
        return got

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(run, range(workers)))
    for k, got in enumerate(results):
        base = k * 1_000_000
        want = [[None if j % 7 == k else base + i * 1000 + j + k for j in range(500 + k)] for i in range(20)]
        assert got == want, f"exchange {k}"
