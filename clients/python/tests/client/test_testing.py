"""fletch.testing: UDF modules in process, with the client's calling conventions and exceptions."""

from __future__ import annotations

import sys
import textwrap
import types
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import fletch
import fletch.testing

from .conftest import CLIENT_UDFS

PRICING = textwrap.dedent(
    '''
    from decimal import Decimal
    from typing import Annotated, Optional

    import pyarrow as pa
    import pyarrow.compute as pc
    from fletch import udf

    from helpers import RATE


    @udf(volatility="immutable")
    def with_tax(price: Annotated[Decimal, pa.decimal128(10, 2)]) -> Annotated[Decimal, pa.decimal128(10, 2)]:
        """Row-wise: called once per row with Python values."""
        return (price * RATE).quantize(Decimal("0.01"))


    @udf
    def discount(price: pa.DoubleArray, pct: Optional[pa.DoubleArray]) -> pa.DoubleArray:
        return pc.multiply(price, pc.subtract(1, pc.divide(pc.fill_null(pct, 0.0), 100)))
    '''
)


@pytest.fixture
def udfs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "udfs"
    root.mkdir()
    (root / "pricing.py").write_text(PRICING, encoding="utf-8")
    (root / "helpers.py").write_text("from decimal import Decimal\nRATE = Decimal('1.2')\n", encoding="utf-8")
    return root


@pytest.fixture
def client_module(tmp_path: Path) -> Path:
    path = tmp_path / "client" / "client_udfs.py"
    path.parent.mkdir()
    path.write_text(CLIENT_UDFS, encoding="utf-8")
    return path


def test_readme_example(udfs_dir: Path) -> None:
    udfs = fletch.testing.load(udfs_dir / "pricing.py")
    assert udfs.call("with_tax", [Decimal("10.00")]).to_pylist() == [Decimal("12.00")]
    assert udfs.call("discount", [100.0, 80.0], [10.0, None]).to_pylist() == [90.0, 80.0]


def test_module_is_not_left_in_sys_modules(udfs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sentinel = types.ModuleType("pricing")
    monkeypatch.setitem(sys.modules, "pricing", sentinel)
    path_before = list(sys.path)
    udfs = fletch.testing.load(str(udfs_dir / "pricing.py"))
    assert sys.modules["pricing"] is sentinel  # what was there before is back
    assert sys.path == path_before
    assert "with_tax" in udfs
    monkeypatch.delitem(sys.modules, "pricing")
    fletch.testing.load(udfs_dir / "pricing.py")
    assert "pricing" not in sys.modules
    # Loading twice gives two independent module objects.
    a = fletch.testing.load(udfs_dir / "pricing.py").spec("with_tax").function
    b = fletch.testing.load(udfs_dir / "pricing.py").spec("with_tax").function
    assert a is not b


def test_load_directory_and_module(udfs_dir: Path) -> None:
    udfs = fletch.testing.load(udfs_dir)
    names = [i.name for i in udfs.list()]
    assert names == sorted(names)
    assert names == ["discount", "with_tax"]
    module = types.ModuleType("inline")
    exec("from fletch import udf\n@udf\ndef one(x: int) -> int:\n    return 1\n", module.__dict__)
    assert [i.name for i in fletch.testing.load(module).list()] == ["one"]
    with pytest.raises(FileNotFoundError):
        fletch.testing.load(udfs_dir / "missing.py")


def test_duplicate_names_in_a_directory(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.py").write_text(
            "from fletch import udf\n@udf\ndef same(x: int) -> int:\n    return x\n"
        )
    with pytest.raises(ValueError, match="already defined by module 'a'"):
        fletch.testing.load(tmp_path)


def test_describe(udfs_dir: Path) -> None:
    udfs = fletch.testing.load(udfs_dir / "pricing.py")
    info = udfs.describe("with_tax")
    assert info.params == (fletch.ParamInfo("price", pa.decimal128(10, 2), "decimal128(10, 2)", False),)
    assert info.returns.type == pa.decimal128(10, 2)
    assert (info.kind, info.language, info.volatility, info.version) == ("scalar", "python", "immutable", "")
    assert info.doc == "Row-wise: called once per row with Python values."
    with pytest.raises(fletch.UdfNotFound, match=r'function "with_ta" not found; did you mean "with_tax"\?'):
        udfs.describe("with_ta")


def test_call_forms(client_module: Path) -> None:
    udfs = fletch.testing.load(client_module)
    assert udfs.call("greet", ["a", None], ["!", "?"]).to_pylist() == ["hello a!", "hello stranger?"]
    table = udfs.call("vec_double", pa.table({"x": pa.chunked_array([[1], [2, 3]])}))
    assert isinstance(table, pa.Table)
    assert table.schema.names == ["vec_double"]
    assert [len(c) for c in table.column(0).chunks] == [1, 2]
    assert udfs.call("seven", rows=2).to_pylist() == [7, 7]
    frame = udfs.call("vec_double", pd.DataFrame({"x": [1, 2]}, index=[3, 4]))
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == [3, 4]
    assert frame["vec_double"].tolist() == [2, 4]
    series = udfs.call("vec_double", pl.Series([5]))
    assert isinstance(series, pl.Series)
    assert series.to_list() == [10]
    out = list(
        udfs.call_stream("vec_double", iter([pa.record_batch({"x": [1]}), pa.record_batch({"x": [2]})]))
    )
    assert [b.column(0).to_pylist() for b in out] == [[2], [4]]


def test_exceptions(client_module: Path) -> None:
    udfs = fletch.testing.load(client_module)
    with pytest.raises(fletch.UdfError) as info:
        udfs.call("fails_on_three", pa.table({"x": [1, 2, 4, 3]}), batch_size=2)
    err = info.value
    assert (err.function, err.batch, err.row, err.exc_type, err.message) == (
        "fails_on_three",
        1,
        1,
        "client_udfs.PriceError",
        "three is not a price",
    )
    assert "raise PriceError" in err.traceback
    with pytest.raises(fletch.SignatureMismatch) as mismatch:
        udfs.call("fails_on_three", pa.array(["x"]))
    assert str(mismatch.value) == (
        "input schema does not match the function's parameters: "
        'fails_on_three: input column 0 ("x"): expected int64, got utf8'
    )
    with pytest.raises(
        fletch.SignatureMismatch, match=r"takes 2 column\(s\) \(name utf8, punctuation utf8\)"
    ):
        udfs.call("greet", pa.array(["x"]))
    with pytest.raises(fletch.SignatureMismatch, match="cannot convert"):
        udfs.call("fails_on_three", ["x"])
    with pytest.raises(fletch.UdfNotFound):
        udfs.call("nope", [1])


def test_lossless_conversions_are_accepted(client_module: Path) -> None:
    udfs = fletch.testing.load(client_module)
    assert udfs.call("fails_on_three", pa.array([1, 2], pa.int8())).to_pylist() == [10, 20]
    assert udfs.call("fails_on_three", pa.array([1], pa.uint32())).to_pylist() == [10]
    assert udfs.call("fails_on_three", pa.array([None, None])).to_pylist() == [None, None]
    assert udfs.call(
        "greet", pa.array(["a"], pa.large_string()), pa.array(["!"], pa.string_view())
    ).to_pylist() == ["hello a!"]
    with pytest.raises(fletch.SignatureMismatch, match="expected int64, got uint64"):
        udfs.call("fails_on_three", pa.array([1], pa.uint64()))


# -- the other kinds: table functions, aggregates, transforms ----------------------------------------------

KINDS = textwrap.dedent(
    """
    from typing import Iterator, NamedTuple, Optional

    import pyarrow as pa
    import pyarrow.compute as pc

    from fletch import transform, udaf, udf, udtf


    @udtf
    def series(n: int) -> Iterator[int]:
        if n < 0:
            raise ValueError(f"negative count {n}")
        yield from range(n)


    class Word(NamedTuple):
        word: str
        length: int


    @udtf
    def words(text: str) -> Iterator[Word]:
        for word in text.split():
            yield Word(word, len(word))


    @udtf
    def pairs(n: int) -> list[tuple[int, str]]:
        return [(i, str(i)) for i in range(n)]


    @udaf
    class Mean:
        def __init__(self) -> None:
            self.total = 0.0
            self.count = 0

        def accumulate(self, x: float) -> None:
            self.total += x
            self.count += 1

        def merge(self, other: "Mean") -> None:
            self.total += other.total
            self.count += other.count

        def finish(self) -> Optional[float]:
            return self.total / self.count if self.count else None


    @udaf
    class VectorSum:
        def __init__(self) -> None:
            self.total = 0

        def accumulate(self, x: pa.Int64Array) -> None:
            self.total += pc.sum(x).as_py() or 0

        def finish(self) -> int:
            if self.total < 0:
                raise ValueError("a negative sum")
            return self.total


    @udaf
    class Unborn:
        def __init__(self) -> None:
            raise RuntimeError("no instance")

        def accumulate(self, x: int) -> None:
            pass

        def finish(self) -> int:
            return 0


    @transform(input_schema={"x": "float64"})
    class RunningAverage:
        def __init__(self) -> None:
            self.total = 0.0
            self.count = 0

        def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
            averages = []
            for value in batch.column("x").to_pylist():
                self.total += value
                self.count += 1
                averages.append(self.total / self.count)
            return pa.record_batch([batch.column("x"), pa.array(averages, pa.float64())], names=["x", "avg"])


    @transform(input_schema={"x": "int64"}, output_schema={"x": "int64"})
    def evens(batch: pa.RecordBatch) -> pa.RecordBatch:
        return batch.filter(pc.equal(pc.bit_wise_and(batch.column(0), 1), 0))


    @transform(input_schema={"x": "int64"}, output_schema={"rows": "int64", "batches": "int64"})
    class Count:
        def __init__(self) -> None:
            self.rows = 0
            self.batches = 0

        def __call__(self, batch: pa.RecordBatch) -> list[pa.RecordBatch]:
            self.rows += batch.num_rows
            self.batches += 1
            return []

        def finish(self) -> pa.RecordBatch:
            rows, batches = pa.array([self.rows]), pa.array([self.batches])
            return pa.record_batch([rows, batches], names=["rows", "batches"])


    @transform(input_schema={"x": "int64"}, output_schema={"x": "int64", "name": "utf8"})
    def named(batch: pa.RecordBatch) -> pa.RecordBatch:
        names = pa.array(batch.schema.names * batch.num_rows)
        return pa.record_batch([batch.column(0), names], ["x", "name"])


    @transform(input_schema={"x": "int64"}, output_schema={"x": "int64"})
    def wrong_type(batch: pa.RecordBatch) -> pa.RecordBatch:
        return pa.record_batch([pa.array(["text"] * batch.num_rows)], names=["x"])


    @udf(on_error="error_column")
    def parse_int(text: str) -> int:
        return int(text)
    """
)


@pytest.fixture
def kinds_module(tmp_path: Path) -> Path:
    path = tmp_path / "kinds_udfs.py"
    path.write_text(KINDS, encoding="utf-8")
    return path


@pytest.fixture
def kinds(kinds_module: Path) -> fletch.testing.LocalUdfs:
    return fletch.testing.load(kinds_module)


def floats(*parts: list[float | None]) -> pa.Table:
    """A table of one float64 column x, one record batch per part."""
    schema = pa.schema([pa.field("x", pa.float64())])
    return pa.Table.from_batches([pa.record_batch([pa.array(p, pa.float64())], schema=schema) for p in parts])


@pytest.mark.parametrize(
    ("name", "inputs", "kwargs", "expected"),
    [
        # Table functions: row counts across the call's batches; a null in a non-Optional parameter yields
        # nothing.
        ("series", ([2, 0, 3],), {}, {"row": [0, 0, 2, 2, 2], "series": [0, 1, 0, 1, 2]}),
        (
            "series",
            (pa.table({"n": [1, None, 2, 1]}),),
            {"batch_size": 2},
            {"row": [0, 2, 2, 3], "series": [0, 0, 1, 0]},
        ),
        (
            "words",
            (["a bb", None, "", "ccc"],),
            {},
            {"row": [0, 0, 3], "word": ["a", "bb", "ccc"], "length": [1, 2, 3]},
        ),
        ("pairs", ([2],), {}, {"row": [0, 0], "c0": [0, 1], "c1": ["0", "1"]}),
        ("series", (iter([]),), {}, {"row": [], "series": []}),
        # Aggregates: one row at the end; with running, one after every batch too; nulls skipped.
        ("Mean", (floats([1.0, 2.0], [None, 6.0]),), {}, {"Mean": [3.0]}),
        (
            "Mean",
            (floats([1.0, 2.0], [None], [6.0]),),
            {"options": {"running": True}},
            {"Mean": [1.5, 1.5, 3.0, 3.0]},
        ),
        ("Mean", (floats([]),), {}, {"Mean": [None]}),
        ("Mean", (iter([]),), {}, {"Mean": [None]}),
        ("VectorSum", ([1, None, 2],), {}, {"VectorSum": [3]}),
        # Transforms: state across the call's batches, finish at the end, columns named as declared.
        (
            "RunningAverage",
            (floats([1.0, 3.0], [], [5.0]),),
            {},
            {"x": [1.0, 3.0, 5.0], "avg": [1.0, 2.0, 3.0]},
        ),
        ("evens", (list(range(6)),), {}, {"x": [0, 2, 4]}),
        ("Count", (pa.table({"x": list(range(5))}),), {"batch_size": 2}, {"rows": [5], "batches": [3]}),
        ("Count", (iter([]),), {}, {"rows": [0], "batches": [0]}),
        ("named", (pa.table({"q": pa.array([1, 2], pa.int8())}),), {}, {"x": [1, 2], "name": ["x", "x"]}),
        # error_column: the first batch decides whether the result has an error column.
        ("parse_int", (pa.table({"t": ["1", "2", "x"]}),), {"batch_size": 2}, {"parse_int": [1, 2, None]}),
        (
            "parse_int",
            (pa.table({"t": ["x", "2", "3"]}),),
            {"batch_size": 2},
            {
                "parse_int": [None, 2, 3],
                "error": ["ValueError: invalid literal for int() with base 10: 'x'", None, None],
            },
        ),
    ],
)
def test_kinds(
    kinds: fletch.testing.LocalUdfs, name: str, inputs: tuple[Any, ...], kwargs: dict[str, Any], expected: Any
) -> None:
    out = kinds.call(name, *inputs, **kwargs)
    assert isinstance(out, pa.Table)
    assert out.to_pydict() == expected


@pytest.mark.parametrize(
    ("name", "options", "schema"),
    [
        (
            "series",
            None,
            pa.schema([pa.field("row", pa.int32(), nullable=False), pa.field("series", pa.int64())]),
        ),
        (
            "words",
            None,
            pa.schema(
                [
                    pa.field("row", pa.int32(), nullable=False),
                    pa.field("word", pa.utf8()),
                    pa.field("length", pa.int64()),
                ]
            ),
        ),
        ("Mean", None, pa.schema([pa.field("Mean", pa.float64())])),
        ("Mean", {"phase": "partial"}, pa.schema([pa.field("state", pa.binary())])),
        ("Count", None, pa.schema([pa.field("rows", pa.int64()), pa.field("batches", pa.int64())])),
    ],
)
def test_kind_schemas(
    kinds: fletch.testing.LocalUdfs, name: str, options: dict[str, Any] | None, schema: pa.Schema
) -> None:
    """The schemas a server declares, even for outputs of no rows."""
    column = pa.array([], pa.float64() if name == "Mean" else pa.int64() if name != "words" else pa.utf8())
    assert kinds.call(name, column, options=options).schema == schema


def test_forms_of_other_kinds(kinds: fletch.testing.LocalUdfs) -> None:
    """Rows of other kinds do not follow the input's: columns give a table, pandas and polars a DataFrame."""
    assert isinstance(kinds.call("series", pa.array([1])), pa.Table)
    frame = kinds.call("series", pd.Series([2, 1], index=[5, 6]))
    assert isinstance(frame, pd.DataFrame)
    assert frame.to_dict("list") == {"row": [0, 0, 1], "series": [0, 1, 0]}
    polars_frame = kinds.call("Mean", pl.DataFrame({"x": [1.0, 3.0]}))
    assert isinstance(polars_frame, pl.DataFrame)
    assert polars_frame["Mean"].to_list() == [2.0]


@pytest.mark.parametrize(
    ("table_batch_rows", "counts", "sizes"),
    [
        (fletch.testing.TABLE_BATCH_ROWS, [[2500, 10]], [1024, 1024, 462]),
        (100, [[250]], [100, 100, 50]),
        (100, [[60, 60], [10]], [100, 20, 10]),  # cut per input batch, not across them
        (fletch.testing.TABLE_BATCH_ROWS, [[1], [0], [2]], [1, 0, 2]),  # a batch yielding nothing: no rows
    ],
)
def test_table_output_batches(
    kinds_module: Path, table_batch_rows: int, counts: list[list[int]], sizes: list[int]
) -> None:
    udfs = fletch.testing.load(kinds_module, table_batch_rows=table_batch_rows)
    outputs = list(udfs.call_stream("series", [pa.record_batch({"n": c}) for c in counts]))
    assert [b.num_rows for b in outputs] == sizes
    rows = [r for b in outputs for r in b.column("row").to_pylist()]
    assert rows == [row for row, n in enumerate(n for c in counts for n in c) for _ in range(n)]


@pytest.mark.parametrize(
    ("name", "batch", "expected"),
    [
        ("Count", {"x": [1, 2, 3, 4, 5]}, {"rows": [5], "batches": [3]}),  # slices of 2, 2 and 1 rows
        ("series", {"n": [1, 0, 1, 2, 1]}, {"row": [0, 2, 3, 3, 4], "series": [0, 0, 0, 1, 0]}),
        ("Mean", {"x": [1.0, 2.0, 6.0]}, {"Mean": [1.5, 3.0, 3.0]}),  # running: once per slice, as a server
    ],
)
def test_large_batches_are_sliced(
    kinds_module: Path, name: str, batch: dict[str, Any], expected: Any
) -> None:
    udfs = fletch.testing.load(kinds_module, max_batch_rows=2)
    options = {"running": True} if name == "Mean" else None
    assert udfs.call(name, pa.record_batch(batch), options=options).to_pydict() == expected


@pytest.mark.parametrize(
    ("name", "inputs", "kwargs", "fields"),
    [
        # (function, batch, row, exc_type, message); rows count from the start of the failing batch.
        (
            "series",
            (pa.table({"n": [1, 1, -1]}),),
            {"batch_size": 2},
            ("series", 1, 0, "ValueError", "negative count -1"),
        ),
        (
            "series",
            (pa.record_batch({"n": [1, 1, -1]}),),
            {"max_batch_rows": 2},
            ("series", 0, 2, "ValueError", "negative count -1"),
        ),
        (
            "VectorSum",
            ([1, -5],),
            {"options": {"running": True}},
            ("VectorSum", 0, None, "ValueError", "a negative sum"),
        ),
        ("VectorSum", ([1, -5],), {}, ("VectorSum", None, None, "ValueError", "a negative sum")),
        ("Unborn", ([1],), {}, ("Unborn", None, None, "RuntimeError", "no instance")),
        (
            "Mean",
            (pa.array([None, b"\0" * 32 + b"forged"]),),
            {"options": {"phase": "merge"}},
            (
                "Mean",
                0,
                1,
                "ValueError",
                "state in row 1 is not one this server made: its signature does not match "
                "(servers that exchange states need the same --state-key-file)",
            ),
        ),
        (
            "wrong_type",
            ([1],),
            {},
            (
                "wrong_type",
                0,
                None,
                "TypeError",
                "wrong_type produced columns [DataType(string)], but its output schema is [DataType(int64)]",
            ),
        ),
    ],
)
def test_kind_failures(
    kinds_module: Path, name: str, inputs: tuple[Any, ...], kwargs: dict[str, Any], fields: tuple[Any, ...]
) -> None:
    udfs = fletch.testing.load(kinds_module, max_batch_rows=kwargs.pop("max_batch_rows", 1 << 16))
    with pytest.raises(fletch.UdfError) as info:
        udfs.call(name, *inputs, **kwargs)
    err = info.value
    assert (err.function, err.batch, err.row, err.exc_type, err.message) == fields


WANT = "invalid exchange options: want a JSON object with keys running and phase, got "


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "Mean",
            {"runing": True},
            WANT + '"{\\"runing\\": true}": json: unknown field "runing"',
        ),
        (
            "Mean",
            {"running": 1},
            WANT + '"{\\"running\\": 1}": '
            "json: cannot unmarshal number into Go struct field ExchangeOptions.running of type bool",
        ),
        (
            "Mean",
            {"Phase": ["partial"]},
            WANT + '"{\\"Phase\\": [\\"partial\\"]}": json: cannot unmarshal array into Go struct field '
            "ExchangeOptions.phase of type udfcatalog.Phase",
        ),
        (
            "Mean",
            {"running": float("nan")},
            WANT + '"{\\"running\\": NaN}": invalid character \'N\' looking for beginning of value',
        ),
        (
            "Mean",
            {"phase": "final"},
            'invalid exchange options: phase "final" is not partial, combine or merge',
        ),
        (
            "VectorSum",
            {"phase": "merge"},
            "invalid exchange options: phase merge needs an aggregate with a merge method; "
            "VectorSum has none",
        ),
        (
            "series",
            {"running": True},
            "invalid exchange options: running applies to aggregates; series is a table function",
        ),
        (
            "Count",
            {"phase": "partial"},
            "invalid exchange options: phase applies to aggregates; Count is a transform function",
        ),
        (
            "parse_int",
            {"running": True},
            "invalid exchange options: running applies to aggregates; parse_int is a scalar function",
        ),
    ],
)
def test_refused_options(
    kinds: fletch.testing.LocalUdfs, name: str, options: dict[str, Any], message: str
) -> None:
    """Refused as the server refuses them, before any input is read: with the server's SignatureMismatch."""
    column = pa.array(["1"]) if name == "parse_int" else pa.array([1.0] if name == "Mean" else [1])
    with pytest.raises(fletch.SignatureMismatch) as info:
        kinds.call(name, column, options=options)
    assert str(info.value) == message


def test_accepted_options(kinds: fletch.testing.LocalUdfs) -> None:
    """Options a server accepts: defaults written out, nulls, and keys that match case-insensitively."""
    for options in ({"running": False, "phase": ""}, {"running": None}, {"phase": None}):
        assert kinds.call("series", [1], options=options).num_rows == 1
    # The server's JSON reader matches "Running"; the worker, which reads the options as sent, does not.
    assert kinds.call("Mean", [1.0], options={"Running": True}).to_pydict() == {"Mean": [1.0]}


def test_two_phases(kinds: fletch.testing.LocalUdfs, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = [[1.0, 2.0], [], [3.0, None, 10.0]]
    states = [kinds.call("Mean", floats(part), options={"phase": "partial"}) for part in parts]
    assert all(s.schema == pa.schema([pa.field("state", pa.binary())]) for s in states)
    combined = kinds.call("Mean", pa.concat_tables(states[:2]), options={"phase": "combine"})
    assert combined.num_rows == 1
    merged = kinds.call("Mean", pa.concat_tables([combined, states[2]]), options={"phase": "merge"})
    assert merged.equals(kinds.call("Mean", floats(*parts)))
    # A state signed with another key (another server's) is refused, as a server refuses it.
    monkeypatch.setenv("FLETCH_STATE_KEY", "00" * 32)
    foreign = kinds.call("Mean", floats([1.0]), options={"phase": "partial"})
    monkeypatch.delenv("FLETCH_STATE_KEY")
    with pytest.raises(fletch.UdfError, match="state in row 0 is not one this server made"):
        kinds.call("Mean", foreign, options={"phase": "merge"})
    with pytest.raises(
        fletch.SignatureMismatch, match='input column 0 \\("state"\\): expected binary, got float64'
    ):
        kinds.call("Mean", floats([1.0]), options={"phase": "merge"})


def test_fresh_state_per_call(kinds: fletch.testing.LocalUdfs) -> None:
    for _ in range(2):
        assert kinds.call("Mean", [2.0, 4.0]).to_pydict() == {"Mean": [3.0]}
        assert kinds.call("RunningAverage", [10.0]).column("avg").to_pylist() == [10.0]


def test_error_column_after_the_first_batch_is_logged(
    kinds: fletch.testing.LocalUdfs, caplog: pytest.LogCaptureFixture
) -> None:
    """A stream that began without an error column cannot grow one: the server logs the failed rows."""
    with caplog.at_level("WARNING", logger="fletch.testing"):
        outputs = list(
            kinds.call_stream("parse_int", [pa.record_batch({"t": ["1"]}), pa.record_batch({"t": ["x"]})])
        )
    assert [b.schema.names for b in outputs] == [["parse_int"], ["parse_int"]]
    assert "parse_int: batch 1: row 0 failed" in caplog.text


def test_call_stream_is_lazy_and_closes(kinds: fletch.testing.LocalUdfs) -> None:
    seen: list[int] = []

    def batches() -> Iterator[pa.RecordBatch]:
        for i in range(3):
            seen.append(i)
            yield pa.record_batch({"x": [float(i)]})

    stream = kinds.call_stream("Mean", batches(), options={"running": True})
    assert stream.info.name == "Mean"
    assert seen == []  # nothing runs before the first next()
    with stream as outputs:
        assert next(outputs).column(0).to_pylist() == [0.0]
    assert seen == [0]
    with pytest.raises(StopIteration):
        next(stream)
    # Options are refused at the first next(), as the server refuses the exchange.
    refused = kinds.call_stream("series", [pa.record_batch({"n": [1]})], options={"running": True})
    with pytest.raises(fletch.SignatureMismatch, match="running applies to aggregates"):
        next(refused)


def test_calls_run_as_in_a_worker(tmp_path: Path) -> None:
    """While a UDF runs, its module is importable and its directory on sys.path, as in a worker: a state
    pickles, and a neighbour imports at call time. Afterwards neither is left behind."""
    (tmp_path / "worker_view.py").write_text(
        textwrap.dedent(
            """
            from fletch import udaf, udf

            @udf
            def scaled(x: int) -> int:
                import worker_view_rate  # a neighbour, imported when called

                return x * worker_view_rate.RATE

            @udaf
            class Total:
                def __init__(self) -> None:
                    self.total = 0

                def accumulate(self, x: int) -> None:
                    self.total += x

                def merge(self, other: "Total") -> None:
                    self.total += other.total

                def finish(self) -> int:
                    return self.total
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "worker_view_rate.py").write_text("RATE = 3\n", encoding="utf-8")
    path_before = list(sys.path)
    udfs = fletch.testing.load(tmp_path / "worker_view.py")
    assert udfs.call("scaled", [1, 2]).to_pylist() == [3, 6]
    state = udfs.call("Total", [1, 2], options={"phase": "partial"})
    assert udfs.call("Total", state, options={"phase": "merge"}).to_pydict() == {"Total": [3]}
    assert "worker_view" not in sys.modules
    assert sys.path == path_before
    sys.modules.pop("worker_view_rate", None)
