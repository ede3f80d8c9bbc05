"""fletch.Client against the real server: discovery, every input and return form, the schema cache."""

from __future__ import annotations

import dataclasses
import decimal
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import fletch

from .conftest import CountingMiddleware

Server = Any


# -- discovery -----------------------------------------------------------------------------------------------


def test_list(fc: fletch.Client) -> None:
    infos = fc.list()
    names = [i.name for i in infos]
    assert names == sorted(names)
    assert {"add_int64", "pi", "with_tax", "greet", "seven"} <= set(names)
    add = next(i for i in infos if i.name == "add_int64")
    assert add.kind == "scalar"
    assert add.language == "go"
    assert [(p.name, p.type, p.type_text, p.nullable) for p in add.params] == [
        ("a", pa.int64(), "int64", False),
        ("b", pa.int64(), "int64", False),
    ]
    assert add.returns == fletch.ParamInfo("add_int64", pa.int64(), "int64", True)
    assert add.volatility == "immutable"
    assert add.doc
    assert len(add.version) == 16


def test_describe(fc: fletch.Client) -> None:
    info = fc.describe("with_tax")
    assert isinstance(info, fletch.UdfInfo)
    assert info.name == "with_tax"
    assert info.language == "python"
    assert info.doc == "Price plus 20 % tax."
    assert info.volatility == "immutable"
    assert info.params == (fletch.ParamInfo("price", pa.decimal128(10, 2), "decimal128(10, 2)", False),)
    assert info.input_schema == pa.schema([pa.field("price", pa.decimal128(10, 2))])
    assert info.output_schema == pa.schema(
        [pa.field("with_tax", pa.decimal128(10, 2))]
    )  # the wire says nullable
    assert info.returns.nullable is False  # the function never returns None
    assert info.signature == "with_tax(price decimal128(10, 2)) -> decimal128(10, 2)"
    assert info.metadata["name"] == "with_tax"
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.name = "x"  # type: ignore[misc]


def test_describe_agrees_with_list(fc: fletch.Client) -> None:
    listed = {i.name: i for i in fc.list()}
    for name in ("add_int64", "coalesce_int64", "pi", "greet", "vec_double"):
        assert fc.describe(name, refresh=True) == listed[name]


def test_describe_schema_matches_the_exchange(fc: fletch.Client, udf_server: Server) -> None:
    """output_schema is what the server sends first on DoExchange."""
    for name in ("add_int64", "with_tax", "greet"):
        with flight.FlightClient(udf_server.location) as raw:
            writer, reader = raw.do_exchange(flight.FlightDescriptor.for_path(name))
            writer.done_writing()
            assert reader.schema == fc.describe(name).output_schema
            writer.close()


# -- call: each input form and its return form ---------------------------------------------------------------


def test_call_lists(fc: fletch.Client) -> None:
    out = fc.call("add_int64", [1, 2, None], [10, 20, 30])
    assert isinstance(out, pa.Array)
    assert out.to_pylist() == [11, 22, None]


def test_call_lists_use_the_declared_types(fc: fletch.Client) -> None:
    # Python values become decimal128(10, 2), not the decimal type pyarrow would infer.
    out = fc.call("with_tax", [decimal.Decimal("10.00"), None, decimal.Decimal("0.99")])
    assert out.type == pa.decimal128(10, 2)
    assert out.to_pylist() == [decimal.Decimal("12.00"), None, decimal.Decimal("1.19")]
    assert fc.call("greet", ("ann", None), ["!", "?"]).to_pylist() == ["hello ann!", "hello stranger?"]


def test_call_arrow_arrays_and_chunked_arrays(fc: fletch.Client) -> None:
    a = pa.chunked_array([[1, 2], [3], [4, 5, 6]])
    b = pa.array([10, 20, 30, 40, 50, 60], pa.int32())  # narrower integers are converted by the server
    out = fc.call("add_int64", a, b)
    assert isinstance(out, pa.Array)
    assert out.to_pylist() == [11, 22, 33, 44, 55, 66]
    assert fc.call("upper", pa.array(["a", "é"], pa.large_string())).to_pylist() == ["A", "É"]


def test_call_numpy(fc: fletch.Client) -> None:
    out = fc.call("multiply_float64", np.array([1.5, 2.0]), np.array([2, 4], dtype=np.int32))
    assert out.to_pylist() == [3.0, 8.0]
    assert fc.call("add_int64", np.arange(5), np.ones(5, dtype=np.int64)).to_pylist() == [1, 2, 3, 4, 5]


def test_call_table(fc: fletch.Client) -> None:
    table = pa.table({"x": pa.chunked_array([[1, 2], [3]]), "y": [4, 5, 6]})
    out = fc.call("add_int64", table)
    assert isinstance(out, pa.Table)
    assert out.schema == pa.schema([pa.field("add_int64", pa.int64())])
    assert out.column(0).to_pylist() == [5, 7, 9]
    assert [len(c) for c in out.column(0).chunks] == [2, 1]  # the caller's batching is kept


def test_call_record_batch(fc: fletch.Client) -> None:
    batch = pa.record_batch({"s": ["a", None, "c"]})
    out = fc.call("upper", batch)
    assert isinstance(out, pa.Table)
    assert out.column("upper").to_pylist() == ["A", None, "C"]


def test_call_reader(fc: fletch.Client) -> None:
    table = pa.table({"a": [1, 2, 3], "b": [1, 1, 1]})
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=1))
    out = fc.call("add_int64", reader)
    assert isinstance(out, pa.Table)
    assert out.column(0).to_pylist() == [2, 3, 4]
    assert out.column(0).num_chunks == 3


def test_call_iterator_of_batches(fc: fletch.Client) -> None:
    def batches() -> Iterator[pa.RecordBatch]:
        for i in range(5):
            yield pa.record_batch({"a": [i, i], "b": [100, 200]})

    out = fc.call("add_int64", batches())
    assert isinstance(out, pa.Table)
    assert out.column(0).to_pylist() == [100 + i + d for i in range(5) for d in (0, 100)]
    # A list of record batches is a stream of batches too.
    listed = fc.call("add_int64", list(batches()))
    assert listed.equals(out)


def test_call_pandas(fc: fletch.Client) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [10.0, None, 30.0]}, index=["x", "y", "z"])
    out = fc.call("add_int64", frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["add_int64"]
    assert list(out.index) == ["x", "y", "z"]
    assert out["add_int64"].iloc[0] == 11
    assert pd.isna(out["add_int64"].iloc[1])

    series = fc.call("upper", pd.Series(["a", None, "c"], index=[7, 8, 9]))
    assert isinstance(series, pd.Series)
    assert series.name == "upper"
    assert list(series.index) == [7, 8, 9]
    assert series.tolist()[0::2] == ["A", "C"]
    assert fc.call("add_int64", pd.Series([1, 2]), pd.Series([3, 4])).tolist() == [4, 6]


def test_call_polars(fc: fletch.Client) -> None:
    frame = pl.DataFrame({"a": [1, 2, None], "b": [10, 20, 30]})
    out = fc.call("add_int64", frame)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == ["add_int64"]
    assert out["add_int64"].to_list() == [11, 22, None]
    series = fc.call("upper", pl.Series("s", ["a", "b"]))
    assert isinstance(series, pl.Series)
    assert series.name == "upper"
    assert series.to_list() == ["A", "B"]


def test_call_zero_argument(fc: fletch.Client) -> None:
    out = fc.call("pi", rows=3)
    assert isinstance(out, pa.Array)
    assert out.to_pylist() == [3.141592653589793] * 3
    assert fc.call("seven", rows=70_000).to_pylist() == [7] * 70_000  # two batches of at most 64 Ki rows
    assert fc.call("seven", rows=0).to_pylist() == []
    with pytest.raises(TypeError, match="rows=N"):
        fc.call("pi")
    with pytest.raises(ValueError, match="rows= is for calls without columns"):
        fc.call("add_int64", [1], [2], rows=1)


def test_call_empty_input(fc: fletch.Client) -> None:
    out = fc.call("add_int64", [], [])
    assert out.type == pa.int64()
    assert len(out) == 0
    table = fc.call("add_int64", pa.table({"a": pa.array([], pa.int64()), "b": pa.array([], pa.int64())}))
    assert table.num_rows == 0


def test_call_batch_size(fc: fletch.Client) -> None:
    # Each output batch comes from one input batch, so the output's chunks show the batching.
    out = fc.call("echo_int64", pa.table({"x": list(range(10))}), batch_size=4)
    assert [len(c) for c in out.column(0).chunks] == [4, 4, 2]
    merged = fc.call("echo_int64", pa.table({"x": pa.chunked_array([[1], [2], [3], [4], [5]])}), batch_size=2)
    assert [len(c) for c in merged.column(0).chunks] == [2, 2, 1]
    assert merged.column(0).to_pylist() == [1, 2, 3, 4, 5]
    big = fc.call("echo_int64", np.arange(200_000))  # columns: 64 Ki rows per batch by default
    assert big.to_pylist() == list(range(200_000))

    def batches() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch({"x": list(range(7))})

    streamed = fc.call("echo_int64", batches(), batch_size=3)
    assert [len(c) for c in streamed.column(0).chunks] == [3, 3, 1]


def test_call_row_count_is_checked(fc: fletch.Client) -> None:
    with pytest.raises(ValueError, match="same length"):
        fc.call("add_int64", [1, 2], [1])


# -- the client object ---------------------------------------------------------------------------------------


def test_context_manager_closes(udf_server: Server) -> None:
    with fletch.Client(udf_server.location) as c:
        assert c.call("add_int64", [1], [2]).to_pylist() == [3]
        assert repr(c) == f"<fletch.Client {udf_server.location}>"
    assert repr(c).endswith("closed>")
    with pytest.raises(ValueError, match="closed"):
        c.list()
    c.close()  # twice is fine


@pytest.mark.parametrize("form", ["grpc", "bare"])
def test_locations(udf_server: Server, form: str) -> None:
    location = udf_server.location if form == "grpc" else udf_server.location.removeprefix("grpc://")
    with fletch.Client(location) as c:
        assert c.location == udf_server.location
        assert c.call("pi", rows=1).to_pylist() == [3.141592653589793]
    with pytest.raises(ValueError, match="unsupported scheme"):
        fletch.Client("http://" + udf_server.location.removeprefix("grpc://"))


def test_schema_cache(udf_server: Server, counting: CountingMiddleware) -> None:
    with fletch.Client(udf_server.location, middleware=[counting]) as c:
        first = c.describe("add_int64")
        assert counting.calls["GET_FLIGHT_INFO"] == 1
        assert c.describe("add_int64") is first  # cached: no second call
        c.call("add_int64", [1], [2])
        c.call("add_int64", [3], [4])
        assert counting.calls["GET_FLIGHT_INFO"] == 1
        assert counting.calls["DO_EXCHANGE"] == 2
        c.describe("add_int64", refresh=True)
        assert counting.calls["GET_FLIGHT_INFO"] == 2

        # list() refreshes every entry; describe then needs no call.
        c.list()
        c.describe("upper")
        assert counting.calls["GET_FLIGHT_INFO"] == 2
        assert counting.calls["DO_ACTION"] == 1

        # A schema mismatch drops the entry: the server's catalog may have changed.
        with pytest.raises(fletch.SignatureMismatch):
            c.call("add_int64", pa.array(["x"]), pa.array([1]))
        c.describe("add_int64")
        assert counting.calls["GET_FLIGHT_INFO"] == 3

        # So does an unknown name, and forget() drops entries by hand.
        c.forget()
        c.describe("upper")
        assert counting.calls["GET_FLIGHT_INFO"] == 4


def test_client_is_thread_safe(fc: fletch.Client) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(5):
                assert fc.call("add_int64", [i], [1]).to_pylist() == [i + 1]
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_timeout_per_call(udf_server: Server) -> None:
    with fletch.Client(udf_server.location, timeout=0.5) as c:
        with pytest.raises(fletch.DeadlineExceeded):
            c.call("sleep_seconds", [3.0])
        assert c.call("sleep_seconds", [0.7], timeout=30).to_pylist() == [0.7]
        assert c.call("sleep_seconds", [0.7], timeout=None).to_pylist() == [0.7]
