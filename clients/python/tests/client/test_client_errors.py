"""Every fletch exception from a real server condition, and the mapping from pyarrow's exceptions."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import fletch
import fletch.testing
from fletch._errors import ERRORS_BY_CODE, from_flight_error, grpc_code, parse_udf_error, server_message

Server = Any

BOILERPLATE = (
    "gRPC client debug context",
    "Client context",
    "Flight returned",
    "gRPC returned",
    "Flight RPC",
)


def assert_clean(err: fletch.FletchError, cause: type[BaseException]) -> None:
    """The message is the server's, without pyarrow's boilerplate; the pyarrow exception is the cause."""
    assert isinstance(err.__cause__, cause), repr(err.__cause__)
    for text in BOILERPLATE:
        assert text not in str(err), str(err)


# -- from real server conditions -----------------------------------------------------------------------------


def test_unknown_udf(fc: fletch.Client) -> None:
    with pytest.raises(fletch.UdfNotFound) as info:
        fc.call("ad_int64", [1], [2])
    assert str(info.value).startswith('function "ad_int64" not found; did you mean "add_int64"')
    assert info.value.code == "NOT_FOUND"
    assert isinstance(info.value, LookupError)
    assert_clean(info.value, pa.ArrowKeyError)
    with pytest.raises(fletch.UdfNotFound):
        fc.describe("no_such_function")


def test_unknown_udf_on_the_exchange(fc: fletch.Client, udf_server: Server) -> None:
    """A cached signature for a name the server no longer has: NOT_FOUND comes from DoExchange."""
    fake = fletch.UdfInfo.from_json({**fc.describe("add_int64").metadata, "name": "gone"})
    fc._cache["gone"] = fake
    with pytest.raises(fletch.UdfNotFound) as info:
        fc.call("gone", [1], [2])
    assert info.value.code == "NOT_FOUND"
    assert "gone" not in fc._cache  # the entry was dropped


def test_wrong_types(fc: fletch.Client) -> None:
    with pytest.raises(fletch.SignatureMismatch) as info:
        fc.call("add_int64", pa.array([1]), pa.array(["x"]))
    assert str(info.value) == (
        "input schema does not match the function's parameters: "
        'add_int64: input column 1 ("b"): expected int64, got utf8'
    )
    assert info.value.code == "INVALID_ARGUMENT"
    assert_clean(info.value, pa.ArrowInvalid)

    with pytest.raises(fletch.SignatureMismatch, match=r"add_int64 takes 2 column\(s\)"):
        fc.call("add_int64", pa.array([1]))


def test_exchange_options_that_do_not_apply(fc: fletch.Client, udf_dir: Any) -> None:
    """Options travel in the fletch-options header; a scalar UDF takes none."""
    with pytest.raises(fletch.SignatureMismatch) as info:
        fc.call("add_int64", [1], [2], options={"running": True})
    assert info.value.code == "INVALID_ARGUMENT"
    assert str(info.value) == (
        "invalid exchange options: running applies to aggregates; add_int64 is a scalar function"
    )
    local = fletch.testing.load(udf_dir / "client_udfs.py")
    with pytest.raises(fletch.SignatureMismatch, match="running applies to aggregates; seven is a scalar"):
        local.call("seven", rows=1, options={"running": True})


def test_python_values_that_do_not_convert(fc: fletch.Client) -> None:
    """Lists are converted to the declared types before anything is sent."""
    with pytest.raises(
        fletch.SignatureMismatch, match=r"add_int64: input column 1 \('b'\): cannot convert"
    ) as info:
        fc.call("add_int64", [1], ["x"])
    assert info.value.code is None  # raised by the client
    assert isinstance(info.value.__cause__, pa.ArrowException)


def test_python_udf_raises(fc: fletch.Client) -> None:
    with pytest.raises(fletch.UdfError) as info:
        fc.call("fails_on_three", [1, 2, 3, 4])
    err = info.value
    assert err.code == "UNKNOWN"
    assert (err.function, err.batch, err.row) == ("fails_on_three", 0, 2)
    assert err.exc_type == "client_udfs.PriceError"
    assert err.message == "three is not a price"
    assert err.traceback.startswith("Traceback (most recent call last):\n")
    assert 'raise PriceError("three is not a price")' in err.traceback
    assert err.traceback.rstrip().endswith("client_udfs.PriceError: three is not a price")
    assert str(err) == "fails_on_three: row 2: client_udfs.PriceError: three is not a price"
    assert_clean(err, flight.FlightServerError)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.function, copy.row, copy.exc_type, copy.batch) == (err.function, err.row, err.exc_type, 0)


def test_python_udf_raises_in_a_later_batch(fc: fletch.Client) -> None:
    with pytest.raises(fletch.UdfError) as info:
        fc.call("fails_on_three", pa.table({"x": [1, 2, 4, 5, 3]}), batch_size=2)
    assert (info.value.batch, info.value.row) == (2, 0)


def test_vectorized_udf_raises(fc: fletch.Client) -> None:
    with pytest.raises(fletch.UdfError) as info:
        fc.call("vec_fails", [1, 2])
    err = info.value
    assert (err.function, err.row, err.exc_type, err.message) == (
        "vec_fails",
        None,
        "ValueError",
        "no vectors today",
    )
    assert str(err) == "vec_fails: ValueError: no vectors today"


def test_go_udf_fails(fc: fletch.Client) -> None:
    with pytest.raises(fletch.UdfError) as info:
        fc.call("div_int64", [1, 2], [1, 0])
    err = info.value
    assert (err.function, err.batch, err.row, err.exc_type, err.message, err.traceback) == (
        "div_int64",
        0,
        1,
        "",
        "division by zero",
        "",
    )
    assert str(err) == "div_int64: row 1: division by zero"


def test_worker_crash(fc: fletch.Client) -> None:
    with pytest.raises(fletch.WorkerCrashed) as info:
        fc.call("segfault", [1])
    assert info.value.code == "ABORTED"
    assert "python worker died" in str(info.value)
    assert "segmentation fault" in str(info.value)
    assert_clean(info.value, flight.FlightInternalError)
    assert fc.call("fails_on_three", [1]).to_pylist() == [10]  # the worker was replaced


def test_call_timeout(start_server: Callable[..., Server], udf_dir: Any) -> None:
    server = start_server("--udf-dir", str(udf_dir), "--workers", "1", "--call-timeout", "1s")
    with fletch.Client(server.location, timeout=60) as c:
        with pytest.raises(fletch.DeadlineExceeded) as info:
            c.call("sleep_seconds", [5.0])
        assert info.value.code == "DEADLINE_EXCEEDED"
        assert "call timeout" in str(info.value)
        assert isinstance(info.value, TimeoutError)
        assert_clean(info.value, flight.FlightTimedOutError)


def test_client_deadline(fc: fletch.Client) -> None:
    with pytest.raises(fletch.DeadlineExceeded) as info:
        fc.call("sleep_seconds", [3.0], timeout=0.3)
    assert info.value.code == "DEADLINE_EXCEEDED"


def test_message_too_large(start_server: Callable[..., Server]) -> None:
    server = start_server("--max-message-bytes", "1MiB")
    two_mib = pa.table({"x": np.arange(256 * 1024, dtype=np.int64)})  # one 2 MiB batch
    with fletch.Client(server.location, timeout=60) as c:
        with pytest.raises(fletch.MessageTooLarge) as info:
            c.call("echo_int64", two_mib)
        assert info.value.code == "RESOURCE_EXHAUSTED"
        assert "larger than max" in str(info.value)
        assert_clean(info.value, pa.ArrowInvalid)
        # The fix the docs give: smaller batches.
        out = c.call("echo_int64", two_mib, batch_size=32 * 1024)
        assert out.num_rows == 256 * 1024


def test_stopped_server(start_server: Callable[..., Server]) -> None:
    server = start_server()
    location = server.location
    with fletch.Client(location, timeout=10) as c:
        assert c.call("add_int64", [1], [2]).to_pylist() == [3]
        server.stop()
        with pytest.raises(fletch.Unavailable) as info:
            c.call("add_int64", [1], [2])  # cached signature: fails on the exchange
        assert info.value.code == "UNAVAILABLE"
        assert isinstance(info.value, ConnectionError)
        assert_clean(info.value, flight.FlightUnavailableError)
        with pytest.raises(fletch.Unavailable):
            c.list()


def test_errors_leave_the_client_usable(fc: fletch.Client) -> None:
    for name, args in [
        ("nope", ([1],)),
        ("add_int64", (pa.array(["x"]), pa.array([1]))),
        ("div_int64", ([1], [0])),
    ]:
        with pytest.raises(fletch.FletchError):
            fc.call(name, *args)
    assert fc.call("add_int64", [1], [2]).to_pylist() == [3]


# -- the mapping, unit-tested --------------------------------------------------------------------------------

# Messages as pyarrow 26 words them, for each code; the DoExchange forms carry a debug context.
MESSAGES: list[tuple[type[BaseException], str, type[fletch.FletchError], str, str]] = [
    (
        pa.ArrowKeyError,
        'Flight returned not found error, with message: function "x" not found',
        fletch.UdfNotFound,
        "NOT_FOUND",
        'function "x" not found',
    ),
    (
        pa.ArrowInvalid,
        "Flight returned invalid argument error, with message: bad. gRPC client debug context: "
        "INVALID_ARGUMENT:bad. Client context: OK",
        fletch.SignatureMismatch,
        "INVALID_ARGUMENT",
        "bad",
    ),
    (
        pa.ArrowInvalid,
        "gRPC returned resource exhausted error, with message: grpc: received message larger than max "
        "(2 vs. 1). gRPC client debug context: RESOURCE_EXHAUSTED:grpc: received message larger than max "
        "(2 vs. 1). Client context: OK",
        fletch.MessageTooLarge,
        "RESOURCE_EXHAUSTED",
        "grpc: received message larger than max (2 vs. 1)",
    ),
    (
        flight.FlightServerError,
        "Flight RPC failed with message: batch 0: f: row 1: ValueError: bad",
        fletch.UdfError,
        "UNKNOWN",
        "batch 0: f: row 1: ValueError: bad",
    ),
    (
        flight.FlightInternalError,
        "gRPC returned aborted error, with message: batch 0: worker crashed: f: python worker died",
        fletch.WorkerCrashed,
        "ABORTED",
        "batch 0: worker crashed: f: python worker died",
    ),
    (
        flight.FlightInternalError,
        "Flight returned internal error, with message: internal error: panic: boom. gRPC client debug "
        "context: INTERNAL:internal error: panic: boom. Client context: OK",
        fletch.ServerError,
        "INTERNAL",
        "internal error: panic: boom",
    ),
    (
        flight.FlightUnavailableError,
        "Flight returned unavailable error, with message: failed to connect to all addresses",
        fletch.Unavailable,
        "UNAVAILABLE",
        "failed to connect to all addresses",
    ),
    (
        flight.FlightUnauthenticatedError,
        "Flight returned unauthenticated error, with message: invalid token",
        fletch.Unauthenticated,
        "UNAUTHENTICATED",
        "invalid token",
    ),
    (
        flight.FlightTimedOutError,
        "Flight returned timeout error, with message: Deadline Exceeded. gRPC client debug context: "
        "DEADLINE_EXCEEDED:Deadline Exceeded. Additionally, could not finish writing record batches before "
        "closing. Client context: OK",
        fletch.DeadlineExceeded,
        "DEADLINE_EXCEEDED",
        "Deadline Exceeded",
    ),
    (
        flight.FlightCancelledError,
        "Flight cancelled call, with message: Stream removed (CANCELLED). gRPC client debug context: "
        "CANCELLED:Stream removed (CANCELLED). Client context: OK",
        fletch.Cancelled,
        "CANCELLED",
        "Stream removed (CANCELLED)",
    ),
    (
        pa.ArrowNotImplementedError,
        'Flight returned unimplemented error, with message: unknown action "x"',
        fletch.ServerError,
        "UNIMPLEMENTED",
        'unknown action "x"',
    ),
    (
        flight.FlightUnauthorizedError,
        "Flight returned unauthorized error, with message: no",
        fletch.PermissionDenied,
        "PERMISSION_DENIED",
        "no",
    ),
    # Without pyarrow's wording, the class decides.
    (flight.FlightInternalError, "something broke", fletch.ServerError, "INTERNAL", "something broke"),
    (
        flight.FlightUnauthenticatedError,
        "who are you",
        fletch.Unauthenticated,
        "UNAUTHENTICATED",
        "who are you",
    ),
    (flight.FlightTimedOutError, "late", fletch.DeadlineExceeded, "DEADLINE_EXCEEDED", "late"),
    (flight.FlightCancelledError, "stop", fletch.Cancelled, "CANCELLED", "stop"),
    (pa.ArrowKeyError, "missing", fletch.UdfNotFound, "NOT_FOUND", "missing"),
    (pa.ArrowInvalid, "invalid", fletch.SignatureMismatch, "INVALID_ARGUMENT", "invalid"),
]


@pytest.mark.parametrize(
    ("cls", "text", "expected", "code", "message"), MESSAGES, ids=[m[3] for m in MESSAGES]
)
def test_mapping(
    cls: type[BaseException], text: str, expected: type[fletch.FletchError], code: str, message: str
) -> None:
    exc = cls(text)
    assert grpc_code(exc) == code
    assert server_message(exc) == message
    err = from_flight_error(exc, function="f")
    assert type(err) is expected
    assert isinstance(err, fletch.FletchError)
    assert err.code == code
    assert err.__cause__ is exc
    if expected is not fletch.UdfError:
        assert str(err) == message


def test_one_table() -> None:
    expected = {
        "NOT_FOUND": fletch.UdfNotFound,
        "INVALID_ARGUMENT": fletch.SignatureMismatch,
        "UNKNOWN": fletch.UdfError,
        "ABORTED": fletch.WorkerCrashed,
        "UNAVAILABLE": fletch.Unavailable,
        "UNAUTHENTICATED": fletch.Unauthenticated,
        "PERMISSION_DENIED": fletch.PermissionDenied,
        "DEADLINE_EXCEEDED": fletch.DeadlineExceeded,
        "RESOURCE_EXHAUSTED": fletch.MessageTooLarge,
        "CANCELLED": fletch.Cancelled,
        "INTERNAL": fletch.ServerError,
    }
    assert expected == ERRORS_BY_CODE
    for cls in {*ERRORS_BY_CODE.values(), fletch.ServerError}:
        assert issubclass(cls, fletch.FletchError)
        assert cls.__module__ == "fletch"


UDF_MESSAGES: list[tuple[str, str | None, str | None, tuple[Any, ...]]] = [
    (
        "batch 3: greet: row 7: ValueError: bad name\nTraceback (most recent call last):\n"
        '  File "m.py", line 2, in greet\nValueError: bad name',
        "greet",
        "python",
        (
            "greet",
            3,
            7,
            "ValueError",
            "bad name",
            'Traceback (most recent call last):\n  File "m.py", line 2, in greet\nValueError: bad name',
        ),
    ),
    # A multi-line message, a qualified type.
    (
        "batch 0: f: row 0: decimal.InvalidOperation: line one\nline two\n"
        "Traceback (most recent call last):\nX",
        None,
        None,
        (
            "f",
            0,
            0,
            "decimal.InvalidOperation",
            "line one\nline two",
            "Traceback (most recent call last):\nX",
        ),
    ),
    # Vectorized: no row; an empty message.
    ("batch 1: vec: KeyError: ", "vec", "python", ("vec", 1, None, "KeyError", "", "")),
    # fletch's own checks have no traceback.
    (
        "batch 0: f: row 2: TypeError: f returned None for row 2, but its return type int is not Optional",
        "f",
        "python",
        ("f", 0, 2, "TypeError", "f returned None for row 2, but its return type int is not Optional", ""),
    ),
    # A traceback that could not be formatted is just the last line.
    ("batch 0: f: row 1: E: m\nE: m", "f", "python", ("f", 0, 1, "E", "m", "E: m")),
    # Go: no exception type.
    (
        "batch 0: div_int64: row 1: division by zero",
        "div_int64",
        "go",
        ("div_int64", 0, 1, "", "division by zero", ""),
    ),
    (
        "batch 0: add_int64: row 0: integer overflow",
        None,
        None,
        ("add_int64", 0, 0, "", "integer overflow", ""),
    ),
    ("batch 2: f: Overflow: x", "f", "go", ("f", 2, None, "", "Overflow: x", "")),
    # A failure in an aggregate's or transform's finish() has no batch.
    ("end of input: agg: ValueError: empty", "agg", "python", ("agg", None, None, "ValueError", "empty", "")),
    # A function name containing ": " is found when the caller knows it.
    ("batch 0: a: b: row 1: ValueError: v", "a: b", "python", ("a: b", 0, 1, "ValueError", "v", "")),
    # Something else entirely.
    ("Stream removed", "f", None, ("f", None, None, "", "Stream removed", "")),
]


@pytest.mark.parametrize(("message", "function", "language", "fields"), UDF_MESSAGES)
def test_parse_udf_error(
    message: str, function: str | None, language: str | None, fields: tuple[Any, ...]
) -> None:
    err = parse_udf_error(message, function, language)
    assert (err.function, err.batch, err.row, err.exc_type, err.message, err.traceback) == fields


def test_unauthenticated_from_a_real_grpc_server(auth_server: str) -> None:
    """fletch has no authentication yet; a pyarrow Flight server that checks the token stands in."""
    with fletch.Client(auth_server, token="wrong") as c:
        with pytest.raises(fletch.Unauthenticated) as info:
            c.list()
        assert info.value.code == "UNAUTHENTICATED"
        assert str(info.value) == "invalid token"
    with fletch.Client(auth_server, token="secret") as c:
        assert [i.name for i in c.list()] == ["echo"]


def test_cancelled_after_the_deadline_is_a_deadline() -> None:
    """The server may reset the stream at the deadline a moment before the client's timer fires."""
    exc = flight.FlightCancelledError(
        "Flight cancelled call, with message: Stream removed (Received RST_STREAM with error code 8 "
        "(RST_STREAM)). gRPC client debug context: CANCELLED:Stream removed. Client context: OK"
    )
    assert type(from_flight_error(exc)) is fletch.Cancelled
    err = from_flight_error(exc, deadline_passed=True)
    assert type(err) is fletch.DeadlineExceeded
    assert err.code == "DEADLINE_EXCEEDED"
