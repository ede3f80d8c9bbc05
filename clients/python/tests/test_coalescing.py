"""Batches queued for a Python scalar UDF may be evaluated in one worker call (docs/python-udfs.md, the worker
protocol): the client must not be able to tell, except by speed. Each test streams many batches at once, so
they queue up behind the first, and checks the answers batch by batch against lock-step ones."""

from __future__ import annotations

import contextlib
import random
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

Server = Any

MODULE = """
import pyarrow as pa

from fletch import udf


@udf
def batch_len(x: pa.Int64Array) -> pa.Int64Array:
    # Each row says how many rows its call held: more than its batch's means batches were joined.
    return pa.array([len(x)] * len(x), pa.int64())


@udf
def ident(x: pa.Int64Array) -> pa.Int64Array:
    return x


@udf
def fail_at_zero(x: int) -> int:
    if x == 0:
        raise ValueError("zero")
    return x


@udf(on_error="error_column")
def inverse(x: int) -> float:
    return 1 / x
"""


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory) -> Server:
    root: Path = tmp_path_factory.mktemp("coalescing")
    (root / "coalescing.py").write_text(textwrap.dedent(MODULE))
    return start_module_server("--udf-dir", str(root), "--workers", "1")


def streamed(server: Server, name: str, batches: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    """Write every batch from a thread while reading the answers: the batches queue up in the server."""
    with flight.FlightClient(server.location) as client:
        writer, reader = client.do_exchange(flight.FlightDescriptor.for_path(name))
        writer.begin(batches[0].schema)

        def write() -> None:
            # A server that ends the exchange early (a failing row) fails the writes; the reader reports it.
            with contextlib.suppress(pa.ArrowException):
                for batch in batches:
                    writer.write_batch(batch)
                writer.done_writing()

        thread = threading.Thread(target=write)
        thread.start()
        try:
            return [chunk.data for chunk in reader if chunk.data is not None]
        finally:
            thread.join()
            writer.close()


def lock_step(server: Server, name: str, batches: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    """One exchange that sends each batch only once the answer to the last came: nothing can queue up."""
    outs: list[pa.RecordBatch] = server.exchange(name, batches)
    return outs


def numbered(sizes: list[int], zero_at: tuple[int, int] | None = None) -> list[pa.RecordBatch]:
    """Batches of 1, 2, 3, ... of the given sizes; zero_at (batch, row) holds 0 instead."""
    out, start = [], 1
    for i, size in enumerate(sizes):
        values = list(range(start, start + size))
        if zero_at is not None and zero_at[0] == i:
            values[zero_at[1]] = 0
        out.append(pa.record_batch([pa.array(values, pa.int64())], names=["x"]))
        start += size
    return out


def random_sizes(seed: int, n: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.choice([0, 1, rng.randint(2, 64), rng.randint(65, 2000)]) for _ in range(n)]


@pytest.mark.parametrize("seed", range(4))
def test_batch_for_batch_in_order(server: Server, seed: int) -> None:
    batches = numbered(random_sizes(seed, 300))
    outs = streamed(server, "ident", batches)
    assert [o.num_rows for o in outs] == [b.num_rows for b in batches]
    assert [o.column(0) for o in outs] == [b.column(0) for b in batches]


def test_queued_batches_are_joined(server: Server) -> None:
    batches = numbered([100] * 400)
    outs = streamed(server, "batch_len", batches)
    assert [o.num_rows for o in outs] == [100] * 400
    seen = [o.column(0)[0].as_py() for o in outs]
    assert max(seen) > 100, f"every call held one batch: {sorted(set(seen))}"
    assert lock_step(server, "batch_len", batches[:3])[0].column(0)[0].as_py() == 100


def test_a_failing_row_is_reported_on_its_own_batch(server: Server) -> None:
    batches = numbered([50] * 200, zero_at=(137, 23))
    with pytest.raises(flight.FlightServerError, match=r"batch 137: fail_at_zero: row 23: ValueError: zero"):
        streamed(server, "fail_at_zero", batches)
    server.assert_healthy()


@pytest.mark.parametrize("failing", [(0, 5), (9, 0), (150, 49)])
def test_error_column_as_without_joining(server: Server, failing: tuple[int, int]) -> None:
    batches = numbered([50] * 200, zero_at=failing)
    outs = streamed(server, "inverse", batches)
    want = lock_step(server, "inverse", batches)
    assert [o.schema.names for o in outs] == [w.schema.names for w in want]
    assert outs == want
