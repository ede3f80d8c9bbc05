"""Errors: status codes, messages, and that the server keeps serving after each.

pyarrow raises these classes for the gRPC codes fletch uses:
NOT_FOUND -> pa.ArrowKeyError, INVALID_ARGUMENT -> pa.ArrowInvalid,
UNKNOWN -> flight.FlightServerError, RESOURCE_EXHAUSTED -> pa.ArrowInvalid
(message "gRPC returned resource exhausted error, ...").
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def batch_of(*cols: pa.Array) -> pa.RecordBatch:
    return pa.record_batch(list(cols), names=[f"c{i}" for i in range(len(cols))])


def no_columns(rows: int) -> pa.RecordBatch:
    return pa.RecordBatch.from_struct_array(pa.array([{}] * rows, pa.struct([])))


def first_read_error(server: Any, name: str, batch: pa.RecordBatch, expected: type[BaseException]) -> str:
    """Write batch as the first input and return the error of the first read.

    The server may reject the input schema before the batch arrives, so the
    write may fail too, with the same status; but no output batch may come.
    """
    with server.open_exchange(name, batch.schema, expect_error=True) as (writer, reader):
        with contextlib.suppress(expected):
            writer.write_batch(batch)
        with pytest.raises(expected) as info:  # an error, never an output batch
            reader.read_chunk()
    return str(info.value)


def exchange_error(
    server: Any, name: str, batches: list[pa.RecordBatch], failing: int, expected: type[BaseException]
) -> str:
    """Write batches in lock-step; every batch before failing yields output, failing raises."""
    with server.open_exchange(name, batches[0].schema, expect_error=True) as (writer, reader):
        for i, batch in enumerate(batches[:failing]):
            writer.write_batch(batch)
            assert reader.read_chunk().data.num_rows == batch.num_rows, f"batch {i}"
        with contextlib.suppress(expected):
            writer.write_batch(batches[failing])
        with pytest.raises(expected) as info:  # an error, never an output batch
            reader.read_chunk()
    return str(info.value)


# --- NOT_FOUND and bad descriptors on DoExchange ------------------------------


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("ad_int64", "add_int64"),
        ("Upper", "upper"),
        ("echo_int", "echo_int64"),
        ("p", None),
        ("no_such_function_at_all", None),
    ],
)
def test_exchange_unknown_function(server: Any, name: str, suggestion: str | None) -> None:
    with flight.FlightClient(server.location) as client:
        writer, reader = client.do_exchange(flight.FlightDescriptor.for_path(name))
        try:
            with contextlib.suppress(pa.ArrowKeyError):
                writer.begin(pa.schema([("x", pa.int64())]))
            with pytest.raises(pa.ArrowKeyError) as info:
                reader.read_chunk()
        finally:
            with contextlib.suppress(pa.ArrowException):
                writer.close()
    message = str(info.value)
    assert "not found" in message
    assert f'function "{name}" not found' in message
    if suggestion is not None:
        assert re.search(rf'did you mean [^?]*"{suggestion}"', message), message
    server.assert_healthy()


@pytest.mark.parametrize(
    ("descriptor", "problem"),
    [
        (flight.FlightDescriptor.for_path("add_int64", "extra"), "2 elements"),
        (flight.FlightDescriptor.for_path(), "0 elements"),
        (flight.FlightDescriptor.for_command(b"add_int64"), "CMD"),
    ],
    ids=["path-2", "path-0", "cmd"],
)
def test_exchange_bad_descriptor(server: Any, descriptor: flight.FlightDescriptor, problem: str) -> None:
    with flight.FlightClient(server.location) as client:
        writer, reader = client.do_exchange(descriptor)
        try:
            with contextlib.suppress(pa.ArrowInvalid):
                writer.begin(pa.schema([("x", pa.int64())]))
            with pytest.raises(pa.ArrowInvalid, match="invalid argument") as info:
                reader.read_chunk()
        finally:
            with contextlib.suppress(pa.ArrowException):
                writer.close()
    assert problem in str(info.value)
    server.assert_healthy()


# --- INVALID_ARGUMENT: input schema ---------------------------------------------

WRONG_TYPES = [
    # function, input columns, message fragment
    (
        "add_int64",
        [pa.array(["1"]), pa.array([1])],
        'add_int64: input column 0 ("a"): expected int64, got utf8',
    ),
    (
        "add_int64",
        [pa.array([1]), pa.array(["1"])],
        'add_int64: input column 1 ("b"): expected int64, got utf8',
    ),
    (
        "add_int64",
        [pa.array([1]), pa.array([1.0])],
        'add_int64: input column 1 ("b"): expected int64, got float64',
    ),
    (
        "div_int64",
        [pa.array([1], pa.uint64()), pa.array([1])],
        'div_int64: input column 0 ("a"): expected int64, got uint64',
    ),
    (
        "div_int64",
        [pa.array([1]), pa.array([True])],
        'div_int64: input column 1 ("b"): expected int64, got bool',
    ),
    (
        "coalesce_int64",
        [pa.array(["x"], pa.large_string()), pa.array([1])],
        'coalesce_int64: input column 0 ("a"): expected int64, got large_utf8',
    ),
    (
        "coalesce_int64",
        [pa.array([1]), pa.array([1], pa.float32())],
        'coalesce_int64: input column 1 ("b"): expected int64, got float32',
    ),
    ("echo_int64", [pa.array([1.5])], 'echo_int64: input column 0 ("x"): expected int64, got float64'),
    ("echo_utf8", [pa.array([b"x"])], 'echo_utf8: input column 0 ("s"): expected utf8, got binary'),
    (
        "echo_utf8",
        [pa.array([b"x"], pa.large_binary())],
        'echo_utf8: input column 0 ("s"): expected utf8, got large_binary',
    ),
    ("upper", [pa.array([1])], 'upper: input column 0 ("s"): expected utf8, got int64'),
    (
        "multiply_float64",
        [pa.array([1.0], pa.float32()), pa.array([1.0])],
        'multiply_float64: input column 0 ("a"): expected float64, got float32',
    ),
    (
        "multiply_float64",
        [pa.array([1.0]), pa.array([1])],
        'multiply_float64: input column 1 ("b"): expected float64, got int64',
    ),
]


@pytest.mark.parametrize(
    ("name", "cols", "fragment"),
    WRONG_TYPES,
    ids=[re.sub(r"^(\w+): input column (\d+) .*got (.*)$", r"\1-col\2-\3", f) for _, _, f in WRONG_TYPES],
)
def test_wrong_input_type(server: Any, name: str, cols: list[pa.Array], fragment: str) -> None:
    message = first_read_error(server, name, batch_of(*cols), pa.ArrowInvalid)
    assert "invalid argument" in message
    assert fragment in message
    server.assert_healthy()


WRONG_COUNTS = [
    ("add_int64", batch_of(pa.array([1])), 2, 1),
    ("add_int64", batch_of(pa.array([1]), pa.array([2]), pa.array([3])), 2, 3),
    ("upper", batch_of(pa.array(["a"]), pa.array(["b"])), 1, 2),
    ("echo_int64", no_columns(3), 1, 0),
    ("pi", batch_of(pa.array([1.0])), 0, 1),
]


@pytest.mark.parametrize(
    ("name", "batch", "want", "got"), WRONG_COUNTS, ids=[f"{n}-{g}" for n, _, _, g in WRONG_COUNTS]
)
def test_wrong_column_count(server: Any, name: str, batch: pa.RecordBatch, want: int, got: int) -> None:
    message = first_read_error(server, name, batch, pa.ArrowInvalid)
    assert "invalid argument" in message
    assert name in message
    assert re.search(rf"\b{want} column", message), message
    assert re.search(rf"\bgot {got}\b", message), message
    server.assert_healthy()


# --- UNKNOWN: the function failed ---------------------------------------------------


def failing_div(rows: int, zero_at: int) -> pa.RecordBatch:
    a = pa.array(range(rows), pa.int64())
    b = pa.array([0 if i == zero_at else 3 for i in range(rows)], pa.int64())
    return batch_of(a, b)


@pytest.mark.parametrize(
    ("rows", "zero_at"),
    [(1, 0), (10, 9), (1000, 517), (65536, 65535), (65537, 65536), (200_000, 150_000)],
)
def test_division_by_zero_names_the_row(server: Any, rows: int, zero_at: int) -> None:
    # Batches over --max-batch-rows (default 65536) are sliced for execution;
    # the row index must still be the row's index in the input batch.
    message = first_read_error(server, "div_int64", failing_div(rows, zero_at), flight.FlightServerError)
    assert "division by zero" in message
    assert re.search(rf"\brow {zero_at}\b", message), message
    server.assert_healthy()


def test_division_by_zero_in_a_later_batch(server: Any) -> None:
    batches = [failing_div(5, -1), failing_div(0, -1), failing_div(8, -1), failing_div(6, 3)]
    message = exchange_error(server, "div_int64", batches, failing=3, expected=flight.FlightServerError)
    assert "division by zero" in message
    assert re.search(r"\brow 3\b", message), message
    server.assert_healthy()


OVERFLOWS = [
    ("add_int64", [INT64_MAX], [1], 0),
    ("add_int64", [0, 1, INT64_MIN], [0, 1, -1], 2),
    ("add_int64", [1] * 9 + [INT64_MAX - 1], [1] * 9 + [2], 9),
    ("div_int64", [7, INT64_MIN], [7, -1], 1),
]


@pytest.mark.parametrize(("name", "a", "b", "row"), OVERFLOWS)
def test_integer_overflow_names_the_row(server: Any, name: str, a: list[int], b: list[int], row: int) -> None:
    batch = batch_of(pa.array(a, pa.int64()), pa.array(b, pa.int64()))
    message = first_read_error(server, name, batch, flight.FlightServerError)
    assert "integer overflow" in message
    assert re.search(rf"\brow {row}\b", message), message
    server.assert_healthy()


def test_null_skips_the_failing_call(server: Any) -> None:
    """Non-nullable parameters: a null row is not evaluated, so it cannot fail."""
    batch = batch_of(pa.array([None, 1, INT64_MAX], pa.int64()), pa.array([0, None, None], pa.int64()))
    (out,) = server.exchange("div_int64", [batch])
    assert out.column(0).to_pylist() == [None, None, None]
    (out,) = server.exchange("add_int64", [batch])
    assert out.column(0).to_pylist() == [None, None, None]


# --- RESOURCE_EXHAUSTED: --max-message-bytes ---------------------------------------

LIMIT = 1 << 20  # --max-message-bytes 1MiB


@pytest.fixture(scope="module")
def small_server(start_module_server: Callable[..., Any]) -> Any:
    return start_module_server("--max-message-bytes", "1MiB")


def too_large_input() -> tuple[str, pa.RecordBatch]:
    """About 2 MiB of int64 in one batch."""
    return "echo_int64", batch_of(pa.array(range(2 * LIMIT // 8), pa.int64()))


def too_large_output() -> tuple[str, pa.RecordBatch]:
    """800 kB of text whose upper case takes 1.2 MB: 'ɐ' (2 bytes) becomes 'Ɐ' (3 bytes)."""
    return "upper", batch_of(pa.array(["ɐ" * 400_000]))


OVERSIZED = {"input": too_large_input, "output": too_large_output}


def resource_exhausted(server: Any, which: str) -> str:
    name, batch = OVERSIZED[which]()
    # RESOURCE_EXHAUSTED surfaces in pyarrow as ArrowInvalid.
    message = first_read_error(server, name, batch, pa.ArrowInvalid)
    assert "resource exhausted" in message
    return message


@pytest.mark.parametrize("which", sorted(OVERSIZED))
def test_message_too_large_names_sizes(small_server: Any, which: str) -> None:
    message = resource_exhausted(small_server, which)
    assert str(LIMIT) in message or "1MiB" in message, message
    sizes = [int(n) for n in re.findall(r"\d+", message)]
    assert any(n > LIMIT for n in sizes), f"no message size in: {message}"
    small_server.assert_healthy()


def test_output_too_large_mentions_the_flag(small_server: Any) -> None:
    # Oversize input is refused by gRPC itself, whose status names only the
    # sizes; oversize output is caught by the server, which names the flag.
    message = resource_exhausted(small_server, "output")
    assert "--max-message-bytes" in message, message
    small_server.assert_healthy()


def test_server_keeps_serving_after_message_too_large(small_server: Any) -> None:
    resource_exhausted(small_server, "input")
    resource_exhausted(small_server, "output")
    # A batch just under the limit still goes through, both ways.
    batch = batch_of(pa.array(range(100_000), pa.int64()))
    (out,) = small_server.exchange("echo_int64", [batch, batch])[:1]
    assert out.column(0).to_pylist() == list(range(100_000))
    small_server.assert_healthy()
