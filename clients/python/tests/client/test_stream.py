"""Client.call_stream: lazy input, bounded read-ahead, early exits and errors without leaked threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

import fletch
from fletch._client import DEFAULT_MAX_IN_FLIGHT

Server = Any

BATCHES = 200
ROWS = 1000


class Source:
    """A generator of numbered batches that records how many it has produced."""

    def __init__(self, count: int = BATCHES, rows: int = ROWS, fail_at: int | None = None) -> None:
        self.count = count
        self.rows = rows
        self.fail_at = fail_at
        self.produced = 0
        self.closed = False

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            for i in range(self.count):
                if i == self.fail_at:
                    raise RuntimeError(f"source failed at batch {i}")
                self.produced += 1
                yield pa.record_batch({"x": pa.array(range(i * self.rows, (i + 1) * self.rows), pa.int64())})
        finally:
            self.closed = True


def fletch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fletch-call-")]


@pytest.fixture
def baseline() -> Iterator[set[threading.Thread]]:
    """The threads before the test; the test must end with exactly these."""
    before = set(threading.enumerate())
    yield before
    assert set(threading.enumerate()) == before


def test_stream_is_lazy_and_bounded(fc: fletch.Client, baseline: set[threading.Thread]) -> None:
    source = Source()
    stream = fc.call_stream("echo_int64", iter(source))
    assert source.produced == 0  # nothing happens before the first next()
    ahead = []
    for consumed, batch in enumerate(stream, start=1):
        assert batch.num_rows == ROWS
        assert batch.column(0)[0].as_py() == (consumed - 1) * ROWS  # in order
        if consumed % 25 == 0:
            time.sleep(0.05)  # give an unbounded writer every chance to run ahead
        ahead.append(source.produced - consumed)
    assert consumed == BATCHES
    assert source.produced == BATCHES
    # The writer stays at most max_in_flight batches ahead of the consumer.
    assert max(ahead) <= DEFAULT_MAX_IN_FLIGHT
    assert max(ahead) >= 1  # but it does run ahead: input and output overlap
    assert fletch_threads() == []


def test_max_in_flight(udf_server: Server, baseline: set[threading.Thread]) -> None:
    source = Source(count=50)
    with fletch.Client(udf_server.location, max_in_flight=2) as c:
        consumed = 0
        for _ in c.call_stream("echo_int64", iter(source)):
            consumed += 1
            time.sleep(0.005)
            assert source.produced - consumed <= 2
    assert consumed == 50


def test_early_break_joins_the_writer(fc: fletch.Client, baseline: set[threading.Thread]) -> None:
    source = Source()
    for i, _ in enumerate(fc.call_stream("echo_int64", iter(source))):
        if i == 2:
            break
    # Leaving the loop dropped the stream, which cancelled the call and joined its thread.
    assert fletch_threads() == []
    assert source.produced <= 3 + DEFAULT_MAX_IN_FLIGHT
    # The server is fine and the client still works.
    assert fc.call("echo_int64", [1, 2]).to_pylist() == [1, 2]


def test_close_and_context_manager(fc: fletch.Client, baseline: set[threading.Thread]) -> None:
    stream = fc.call_stream("echo_int64", iter(Source()))
    next(stream)
    assert len(fletch_threads()) == 1
    stream.close()
    assert fletch_threads() == []
    with pytest.raises(StopIteration):
        next(stream)

    with fc.call_stream("echo_int64", iter(Source())) as stream:
        next(stream)
    assert fletch_threads() == []

    # An exception in the consumer's loop body leaves through the with block.
    def consume() -> None:
        with fc.call_stream("echo_int64", iter(Source())) as stream:
            for _ in stream:
                raise KeyError("consumer failed")

    with pytest.raises(KeyError):
        consume()
    assert fletch_threads() == []


def test_unstarted_stream_needs_no_cleanup(fc: fletch.Client, baseline: set[threading.Thread]) -> None:
    source = Source()
    stream = fc.call_stream("echo_int64", iter(source))
    del stream
    assert source.produced == 0


def test_input_error_surfaces_in_the_iterator(fc: fletch.Client, baseline: set[threading.Thread]) -> None:
    source = Source(fail_at=5)
    received: list[pa.RecordBatch] = []
    with pytest.raises(RuntimeError, match="source failed at batch 5"):
        received.extend(fc.call_stream("echo_int64", iter(source)))
    assert len(received) <= 5
    assert fletch_threads() == []


def test_bad_batches_surface_in_the_iterator(fc: fletch.Client, baseline: set[threading.Thread]) -> None:
    def mixed() -> Iterator[Any]:
        yield pa.record_batch({"x": [1]})
        yield pa.record_batch({"x": ["not an int"]})

    with pytest.raises(fletch.SignatureMismatch, match="every batch of one call must have the same schema"):
        list(fc.call_stream("echo_int64", mixed()))

    def not_batches() -> Iterator[Any]:
        yield [1, 2, 3]

    with pytest.raises(TypeError, match="not a pyarrow RecordBatch"):
        list(fc.call_stream("echo_int64", not_batches()))
    assert fletch_threads() == []


def test_server_error_mid_stream(fc: fletch.Client, baseline: set[threading.Thread]) -> None:
    def batches() -> Iterator[pa.RecordBatch]:
        for x in (1, 2, 3, 4):
            yield pa.record_batch({"x": [x]})

    received: list[list[int]] = []
    with pytest.raises(fletch.UdfError) as info:
        received.extend(b.column(0).to_pylist() for b in fc.call_stream("fails_on_three", batches()))
    # Outputs come in order; the server runs batches in parallel, so the error may overtake earlier outputs.
    assert received == [[10], [20]][: len(received)]
    assert (info.value.function, info.value.batch, info.value.row) == ("fails_on_three", 2, 0)
    assert fletch_threads() == []


def test_stream_from_reader_and_batch_size(fc: fletch.Client, baseline: set[threading.Thread]) -> None:
    table = pa.table({"x": list(range(100))})
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=30))
    sizes = [b.num_rows for b in fc.call_stream("echo_int64", reader, batch_size=40)]
    assert sizes == [40, 40, 20]


def test_empty_stream(fc: fletch.Client, baseline: set[threading.Thread]) -> None:
    assert list(fc.call_stream("echo_int64", iter([]))) == []


def test_stream_info(fc: fletch.Client) -> None:
    with fc.call_stream("echo_int64", []) as stream:
        assert stream.info.name == "echo_int64"
        assert list(stream) == []
