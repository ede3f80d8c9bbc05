"""The nullability contract of docs/types.md, through the real server and plain pyarrow.flight.

Result columns are declared nullable (engines such as RisingWave decode with arrow-rs, which rejects a batch
holding a null in a column declared non-null; Databend's CREATE FUNCTION declares nullable fields), while
nested fields keep their declared nullability, which the server holds both input and output to.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

Server = Any

MODULE = """
import math
from typing import Iterator, NamedTuple, Optional

from fletch import udf, udtf


@udf
def gcd(a: int, b: int) -> int:
    return math.gcd(a, b)


@udf(on_error="null")
def inverse(x: int) -> float:
    return 1 / x


@udf(on_error="error_column")
def inverse_or_error(x: int) -> float:
    return 1 / x


@udf
def total(xs: list[int]) -> int:
    return sum(xs)


@udf
def total_optional(xs: list[Optional[int]]) -> int:
    return sum(x for x in xs if x is not None)


@udf
def pair(x: int) -> list[int]:
    return [x, x]


@udf
def holey(x: int) -> list[int]:
    return [x, None]  # breaks the declared list<int64 not null>


class Part(NamedTuple):
    word: str
    size: int


@udtf
def parts(s: str) -> Iterator[Part]:
    for word in s.split():
        yield Part(word, len(word))
"""


@pytest.fixture(scope="module")
def nulls_server(
    start_module_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory
) -> Server:
    root: Path = tmp_path_factory.mktemp("nullability")
    (root / "contract.py").write_text(textwrap.dedent(MODULE))
    return start_module_server("--udf-dir", str(root), "--workers", "1")


def exchange(server: Server, name: str, *columns: pa.Array) -> list[pa.RecordBatch]:
    batch = pa.record_batch(list(columns), names=[f"c{i}" for i in range(len(columns))])
    with flight.FlightClient(server.location) as client:
        writer, reader = client.do_exchange(flight.FlightDescriptor.for_path(name))
        writer.begin(batch.schema)
        writer.write_batch(batch)
        writer.done_writing()
        outputs = [chunk.data for chunk in reader if chunk.data is not None]
        writer.close()
    return outputs


def nulls_where_declared_non_null(field: pa.Field, array: pa.Array, path: str = "") -> Iterator[str]:
    """Every position of array that holds a null although field (or a nested field) is declared non-null."""
    if not field.nullable and array.null_count:
        yield path or field.name
    valid = array.is_valid()
    t = field.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        held = [v.values for v, ok in zip(array, valid, strict=True) if ok.as_py()]
        values = pa.concat_arrays(held or [array.values[:0]])
        yield from nulls_where_declared_non_null(t.value_field, values, f"{path}.item")
    elif pa.types.is_struct(t):
        kept = array.filter(valid)
        for i in range(t.num_fields):
            yield from nulls_where_declared_non_null(t.field(i), kept.field(i), f"{path}.{t.field(i).name}")


def assert_contract(batches: list[pa.RecordBatch]) -> None:
    for batch in batches:
        for i, field in enumerate(batch.schema):
            if field.name != "row":
                assert field.nullable, f"result column {field} is declared non-null"
            bad = list(nulls_where_declared_non_null(field, batch.column(i)))
            assert not bad, f"nulls under non-null fields {bad} in {batch}"


def test_every_result_field_is_declared_nullable(nulls_server: Server) -> None:
    with flight.FlightClient(nulls_server.location) as client:
        infos = list(client.list_flights())
        (listed,) = client.do_action(flight.Action("list", b""))
    assert len(infos) > 10
    for info in infos:
        outputs = list(info.schema)[info.total_records :]
        for f in outputs:
            assert f.nullable or f.name == "row", f"{info.descriptor.path[0]!r}: {f} is declared non-null"
    # The description still says which functions never return null themselves.
    described = {entry["name"]: entry for entry in json.loads(listed.body.to_pybytes())}
    assert described["gcd"]["return"]["nullable"] is False
    assert described["gcd"]["params"][0]["nullable"] is False


def test_null_argument_gives_a_null_result_under_a_nullable_field(nulls_server: Server) -> None:
    (out,) = exchange(nulls_server, "gcd", pa.array([12, None, 9, None]), pa.array([18, 4, None, None]))
    assert out.schema.field(0).nullable
    assert out.column(0).to_pylist() == [6, None, None, None]
    assert_contract([out])


def test_error_policies_yield_nulls_under_a_nullable_field(nulls_server: Server) -> None:
    (out,) = exchange(nulls_server, "inverse", pa.array([2, 0, None]))
    assert out.column(0).to_pylist() == [0.5, None, None]
    (err,) = exchange(nulls_server, "inverse_or_error", pa.array([2, 0]))
    assert err.column(0).to_pylist() == [0.5, None]
    assert err.schema.names == ["inverse_or_error", "error"]
    assert_contract([out, err])


def test_nested_non_null_output_is_kept_and_holds(nulls_server: Server) -> None:
    (out,) = exchange(nulls_server, "pair", pa.array([1, None]))
    assert out.column(0).to_pylist() == [[1, 1], None]
    assert out.schema.field(0).type.value_field.nullable is False
    assert_contract([out])


def test_nested_null_in_output_is_refused(nulls_server: Server) -> None:
    with pytest.raises(
        flight.FlightInternalError, match=r'its field "item" is declared not null but holds a null in row 0'
    ):
        exchange(nulls_server, "holey", pa.array([1]))
    nulls_server.assert_healthy()


def test_nested_null_in_input_is_refused_before_the_udf_runs(nulls_server: Server) -> None:
    xs = pa.array([[1, 2], [3, None]], type=pa.list_(pa.int64()))  # as RisingWave sends INT[]
    with pytest.raises(
        pa.ArrowInvalid, match=r'expected list<int64 not null>, got a null in "item" at row 1'
    ):
        exchange(nulls_server, "total", xs)
    (out,) = exchange(nulls_server, "total_optional", xs)
    assert out.column(0).to_pylist() == [3, 3]
    (ok,) = exchange(nulls_server, "total", pa.array([[1, 2], None, []], type=pa.list_(pa.int64())))
    assert ok.column(0).to_pylist() == [3, None, 0]


def test_table_function_columns(nulls_server: Server) -> None:
    outs = exchange(nulls_server, "parts", pa.array(["a bb", None, "ccc"]))
    table = pa.Table.from_batches(outs)
    assert table.column("row").to_pylist() == [0, 0, 2]
    assert table.column("word").to_pylist() == ["a", "bb", "ccc"]
    assert not table.schema.field("row").nullable
    assert_contract(outs)
