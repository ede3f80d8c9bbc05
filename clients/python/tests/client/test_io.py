"""The input and output conversions Client.call and fletch.testing share (no server needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import fletch
from fletch._io import finish_call, output_table, prepare_call, rechunk

ADD = fletch.UdfInfo.from_json(
    {
        "name": "add",
        "kind": "scalar",
        "language": "python",
        "params": [{"name": "a", "type": "int32", "nullable": False}, {"name": "b", "type": "int64"}],
        "return": {"name": "add", "type": "int64", "nullable": True},
    }
)


def batches(call_input: object) -> list[pa.RecordBatch]:
    return list(call_input.batches)  # type: ignore[attr-defined]


def test_columns_are_converted_to_the_declared_types() -> None:
    call = prepare_call(ADD, ([1, 2], np.array([3, 4])))
    (batch,) = batches(call)
    assert batch.schema == pa.schema([("a", pa.int32()), ("b", pa.int64())])
    assert call.form == "array"
    # Arrow data is sent as it is: the server decides.
    (batch,) = batches(prepare_call(ADD, (pa.array([1], pa.int8()), pa.array(["x"]))))
    assert batch.schema.types == [pa.int8(), pa.utf8()]
    # Extra columns are inferred, for the server to refuse.
    (batch,) = batches(prepare_call(ADD, ([1], [2], ["x"])))
    assert batch.schema.names == ["a", "b", "c2"]


def test_conversion_errors() -> None:
    with pytest.raises(
        fletch.SignatureMismatch, match=r"add: input column 0 \('a'\): cannot convert .* int32"
    ):
        prepare_call(ADD, ([2**40], [1]))
    with pytest.raises(TypeError, match="cannot use a int as a column"):
        prepare_call(ADD, (1, 2))
    with pytest.raises(TypeError, match="pass it as the only argument"):
        prepare_call(ADD, (pd.DataFrame({"a": [1]}), [1]))
    with pytest.raises(TypeError, match=r"add takes 2 column\(s\) \(a int32, b int64\)"):
        prepare_call(ADD, ())
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        prepare_call(ADD, ([1], [2]), batch_size=0)


def test_default_batching() -> None:
    n = 64 * 1024 + 5
    sizes = [b.num_rows for b in batches(prepare_call(ADD, (np.zeros(n, np.int32), np.zeros(n, np.int64))))]
    assert sizes == [64 * 1024, 5]
    table = pa.table({"a": pa.chunked_array([[1], [2, 3]], pa.int32()), "b": [1, 2, 3]})
    assert [b.num_rows for b in batches(prepare_call(ADD, (table,)))] == [1, 2]
    assert [b.num_rows for b in batches(prepare_call(ADD, (table,), batch_size=2))] == [2, 1]


def test_rechunk() -> None:
    parts = [pa.record_batch({"x": list(range(i, i + n))}) for i, n in ((0, 3), (3, 0), (3, 4), (7, 1))]
    out = list(rechunk(parts, 3))
    assert [b.num_rows for b in out] == [3, 3, 2]
    assert [v for b in out for v in b.column(0).to_pylist()] == list(range(8))
    assert list(rechunk([], 3)) == []


def test_output_forms() -> None:
    outputs = [pa.record_batch({"add": [1, 2]}), pa.record_batch({"add": [3]})]
    array = finish_call(ADD, prepare_call(ADD, ([0, 0, 0], [0, 0, 0])), outputs)
    assert isinstance(array, pa.Array)
    assert array.to_pylist() == [1, 2, 3]
    table = finish_call(
        ADD, prepare_call(ADD, (pa.table({"a": pa.array([0], pa.int32()), "b": [0]}),)), outputs
    )
    assert table.column("add").to_pylist() == [1, 2, 3]
    series = finish_call(ADD, prepare_call(ADD, (pd.Series([0, 0, 0], index=[5, 6, 7]), [0, 0, 0])), outputs)
    assert list(series.index) == [5, 6, 7]
    assert series.name == "add"
    frame = finish_call(ADD, prepare_call(ADD, (pl.DataFrame({"a": [0, 0, 0], "b": [0, 0, 0]}),)), outputs)
    assert isinstance(frame, pl.DataFrame)
    assert frame.columns == ["add"]
    empty = finish_call(ADD, prepare_call(ADD, ([], [])), [])
    assert empty.type == pa.int64()
    assert len(empty) == 0


def test_error_column() -> None:
    """Batches with on_error="error_column" failures carry an error column; tables keep it."""
    outputs = [
        pa.record_batch({"add": [1]}),
        pa.record_batch({"add": pa.array([None], pa.int64()), "error": ["ValueError: bad"]}),
    ]
    table = output_table(ADD, outputs)
    assert table.schema.names == ["add", "error"]
    assert table.column("error").to_pylist() == [None, "ValueError: bad"]
    array = finish_call(ADD, prepare_call(ADD, ([0, 0], [0, 0])), outputs)
    assert array.to_pylist() == [1, None]


def test_other_kinds_return_tables() -> None:
    table_fn = fletch.UdfInfo.from_json({**ADD.metadata, "kind": "table"})
    outputs = [
        pa.record_batch({"row": pa.array([0, 0], pa.int32()), "add": [1, 2]}),
        pa.record_batch({"row": pa.array([1], pa.int32()), "add": [3]}),
    ]
    out = finish_call(table_fn, prepare_call(table_fn, ([0, 0], [0, 0])), outputs)
    assert isinstance(out, pa.Table)
    assert out.column("row").to_pylist() == [0, 0, 1]


def test_udf_info_round_trip() -> None:
    assert ADD.signature == "add(a int32, b int64 null) -> int64"
    assert ADD.input_schema == pa.schema([("a", pa.int32()), ("b", pa.int64())])
    assert ADD.output_schema == pa.schema([("add", pa.int64())])
    assert hash(ADD) == hash(fletch.UdfInfo.from_json(dict(ADD.metadata)))
    with pytest.raises(fletch.ServerError, match="cannot read"):
        fletch.UdfInfo.from_json({"name": "x", "return": {"name": "x", "type": "no such type"}})
