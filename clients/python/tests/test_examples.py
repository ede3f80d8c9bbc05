"""examples/udfs, served as `make serve` serves it, gives what docs/python-udfs.md says."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from tests.conftest import REPO_ROOT

Server = Any


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server]) -> Server:
    return start_module_server("--udf-dir", str(REPO_ROOT / "examples" / "udfs"), "--workers", "2")


@pytest.fixture
def call(server: Server) -> Iterable[Callable[..., pa.Table]]:
    """The helper of docs/python-udfs.md, against the test's server."""
    client = flight.connect(server.location)

    def call(name: str, *batches: pa.RecordBatch, options: dict[str, Any] | None = None) -> pa.Table:
        headers = [(b"fletch-options", json.dumps(options).encode())] if options else []
        writer, reader = client.do_exchange(
            flight.FlightDescriptor.for_path(name), flight.FlightCallOptions(headers=headers, timeout=60)
        )
        writer.begin(batches[0].schema)
        for batch in batches:
            writer.write_batch(batch)
        writer.done_writing()
        table = reader.read_all()
        writer.close()
        return table

    yield call
    client.close()


def column(name: str, values: Iterable[Any], type: pa.DataType | None = None) -> pa.RecordBatch:
    return pa.record_batch([pa.array(values, type)], names=[name])


def test_async(call: Callable[..., pa.Table]) -> None:
    out = call("slow_square", column("x", range(1000)))
    assert out.column(0).to_pylist() == [x * x for x in range(1000)]


def test_error_column(call: Callable[..., pa.Table]) -> None:
    assert call("parse_int", column("text", ["1", "x", "3"])).to_pydict() == {
        "parse_int": [1, None, 3],
        "error": [None, "ValueError: invalid literal for int() with base 10: 'x'", None],
    }


def test_table_function(call: Callable[..., pa.Table]) -> None:
    assert call("tokens", column("text", ["hello big world", ""]), column("text", ["again"])).to_pydict() == {
        "row": [0, 0, 0, 2],
        "token": ["hello", "big", "world", "again"],
        "position": [0, 1, 2, 0],
    }


def test_aggregate(call: Callable[..., pa.Table]) -> None:
    assert call("average", column("x", [1.0, 2.0]), column("x", [3.0, None, 6.0])).to_pydict() == {
        "average": [3.0]
    }
    running = call("average", column("x", [1.0, 2.0]), column("x", [6.0]), options={"running": True})
    assert running.to_pydict() == {"average": [1.5, 3.0, 3.0]}


def test_aggregate_in_two_phases(call: Callable[..., pa.Table]) -> None:
    parts = [
        call("average", column("x", xs), options={"phase": "partial"}) for xs in ([1.0, 2.0], [3.0, 6.0])
    ]
    states = pa.concat_tables(parts).combine_chunks().to_batches()[0]
    assert call("average", states, options={"phase": "merge"}).to_pydict() == {"average": [3.0]}


def test_transform(call: Callable[..., pa.Table]) -> None:
    out = call("running_average", column("x", [1.0, 3.0]), column("x", [5.0]))
    assert out.to_pydict() == {"average": [1.0, 2.0, 3.0]}
