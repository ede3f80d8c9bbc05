"""Async UDFs and on_error policies through the real fletch binary."""

from __future__ import annotations

import random
import textwrap
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

Server = Any

MODULE = '''
import asyncio
from typing import Optional

import pyarrow as pa
import pyarrow.compute as pc

from fletch import udf


@udf(max_concurrency=64)
async def jitter(x: int) -> int:
    """Each row sleeps 0-12 ms, so calls finish out of order."""
    await asyncio.sleep((x * 7919 % 13) / 1000)
    return 3 * x


@udf(timeout=0.05, on_error="null")
async def late_is_null(ms: int) -> int:
    await asyncio.sleep(ms / 1000)
    return ms


@udf(timeout=0.05)
async def late_raises(ms: int) -> int:
    await asyncio.sleep(ms / 1000)
    return ms


@udf
async def loop_module(x: int) -> str:
    return type(asyncio.get_running_loop()).__module__


@udf(max_concurrency=500)
async def io_bound(x: int) -> int:
    await asyncio.sleep(0.01)
    return x


@udf(on_error="null")
def inverse_or_null(x: int) -> float:
    return 1 / x


@udf(on_error="error_column")
def inverse_or_message(x: int) -> float:
    return 1 / x


@udf(on_error="null")
def vector_or_null(x: pa.Int64Array) -> pa.Int64Array:
    if pc.any(pc.equal(x, 0)).as_py():
        raise ValueError("zero in the batch")
    return pc.multiply(x, 2)
'''


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory) -> Server:
    root = tmp_path_factory.mktemp("policies")
    (root / "policies.py").write_text(textwrap.dedent(MODULE))
    return start_module_server("--udf-dir", str(root), "--workers", "2")


def ints(values: list[int | None]) -> pa.RecordBatch:
    return pa.record_batch([pa.array(values, pa.int64())], names=["x"])


def rows(outputs: list[pa.RecordBatch], column: int = 0) -> list[Any]:
    return [v for out in outputs for v in out.column(column).to_pylist()]


@pytest.mark.parametrize("seed", range(5))
def test_async_output_row_i_belongs_to_input_row_i(server: Server, seed: int) -> None:
    # A property test: random batch sizes, random per-row latency, two workers.
    rng = random.Random(seed)
    batches, start = [], 0
    for _ in range(rng.randint(1, 8)):
        size = rng.choice([0, 1, 5, 63, 64, 65, 700])
        values: list[int | None] = [None if rng.random() < 0.05 else start + i for i in range(size)]
        batches.append(ints(values))
        start += size
    outputs = server.exchange("jitter", batches)
    expected = [None if v is None else 3 * v for b in batches for v in b.column(0).to_pylist()]
    assert rows(outputs) == expected


def test_async_many_in_flight(server: Server) -> None:
    # 2,000 calls of 10 ms each with up to 500 in flight per worker: finishes, in order.
    (out,) = server.exchange("io_bound", [ints(list(range(2000)))])
    assert out.column(0).to_pylist() == list(range(2000))


def test_async_runs_on_the_bundled_uvloop(server: Server) -> None:
    (out,) = server.exchange("loop_module", [ints([1])])
    assert out.column(0).to_pylist() == ["uvloop"]


def test_async_timeout_under_null_policy(server: Server) -> None:
    (out,) = server.exchange("late_is_null", [ints([1, 200, 2, 300])])
    assert out.column(0).to_pylist() == [1, None, 2, None]
    assert "late_is_null: row 1 failed and is null" in server.stderr_text()


def test_async_timeout_raises_by_default(server: Server) -> None:
    with pytest.raises(pa.ArrowException) as info:
        server.exchange("late_raises", [ints([1, 200])])
    message = str(info.value)
    assert "late_raises: row 1: TimeoutError" in message, message


def test_null_policy(server: Server) -> None:
    (out,) = server.exchange("inverse_or_null", [ints([1, 0, 4])])
    assert out.column(0).to_pylist() == [1.0, None, 0.25]
    log = server.stderr_text()
    assert "inverse_or_null: row 1 failed and is null" in log
    assert "ZeroDivisionError" in log


def test_null_policy_vectorized_fails_the_whole_batch(server: Server) -> None:
    first, second = server.exchange("vector_or_null", [ints([1, 0]), ints([3, 4])])
    assert first.column(0).to_pylist() == [None, None]
    assert second.column(0).to_pylist() == [6, 8]


def test_error_column_when_the_first_batch_fails(server: Server) -> None:
    # RisingWave's convention: a second utf8 column of per-row messages.
    failing, clean = server.exchange("inverse_or_message", [ints([1, 0, 2]), ints([4])])
    assert failing.schema.names == ["inverse_or_message", "error"]
    assert failing.column(0).to_pylist() == [1.0, None, 0.5]
    assert failing.column(1).to_pylist() == [None, "ZeroDivisionError: division by zero", None]
    assert clean.column(1).to_pylist() == [None]


def test_no_error_column_when_no_row_fails(server: Server) -> None:
    # Only batches where some row failed carry the column; a stream that began
    # without it keeps its schema, and later failures are nulls in the log.
    clean, failing = server.exchange("inverse_or_message", [ints([1, 2]), ints([0])])
    assert clean.schema.names == ["inverse_or_message"]
    assert failing.schema.names == ["inverse_or_message"]
    assert failing.column(0).to_pylist() == [None]
    assert "cannot join a stream that began without an error column" in server.stderr_text()


def test_policies_are_listed(server: Server) -> None:
    import json

    import pyarrow.flight as flight

    with flight.FlightClient(server.location) as client:
        (result,) = client.do_action(flight.Action("list", b""))
    listed = {e["name"]: e for e in json.loads(result.body.to_pybytes())}
    assert listed["inverse_or_message"]["on_error"] == "error_column"
    assert listed["inverse_or_null"]["on_error"] == "null"
    assert listed["jitter"]["on_error"] == "raise"
    assert listed["add_int64"]["on_error"] == "raise"
