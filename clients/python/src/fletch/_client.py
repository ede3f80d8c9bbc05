"""fletch.Client: list, describe and call the UDFs of a fletch server over Arrow Flight."""

from __future__ import annotations

import builtins
import collections
import contextlib
import enum
import json
import threading
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final

import pyarrow as pa
import pyarrow.flight as flight

from fletch._errors import (
    FletchError,
    ServerError,
    SignatureMismatch,
    UdfNotFound,
    from_flight_error,
    grpc_code,
)
from fletch._info import UdfInfo
from fletch._io import (
    ResultStream,
    check_output,
    check_stream,
    encode_options,
    finish_call,
    prepare_call,
    rechunk,
)

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "Client", "ResultStream"]

# Input batches a call may send ahead of the output batches the caller has consumed.
DEFAULT_MAX_IN_FLIGHT: Final = 8
# The request header that carries exchange options (docs/protocol.md, "Exchange options").
OPTIONS_HEADER: Final = b"fletch-options"

_SCHEMES: Final = ("grpc://", "grpc+tcp://", "grpc+tls://", "grpc+unix://")


class _Unset(enum.Enum):
    UNSET = 0


UNSET: Final = _Unset.UNSET


def _location(location: str | flight.Location, *, tls: bool) -> str:
    if isinstance(location, flight.Location):
        return str(location.uri.decode() if isinstance(location.uri, bytes) else location.uri)
    if not isinstance(location, str) or not location:
        raise TypeError(
            f"location must be 'grpc://host:port', 'grpc+tls://host:port' or 'host:port', not {location!r}"
        )
    if location.startswith(_SCHEMES):
        return location
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise ValueError(f"location {location!r}: unsupported scheme {scheme!r}; use grpc:// or grpc+tls://")
    return ("grpc+tls://" if tls else "grpc://") + location


# gRPC sends the deadline as a timeout truncated to its unit, so the server's timer may fire (and reset the
# stream, which the client sees as CANCELLED) a little before the client's.
_DEADLINE_SLACK_S: Final = 0.05


class _Deadline:
    """One call's options and when its deadline passes."""

    def __init__(self, options: flight.FlightCallOptions, seconds: float | None) -> None:
        self.options = options
        self._deadline = None if seconds is None else time.monotonic() + seconds

    def deadline_passed(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline - _DEADLINE_SLACK_S


class _CallOptions:
    """The options of calls made with one timeout; start() begins a call's deadline."""

    def __init__(
        self,
        options: flight.FlightCallOptions,
        seconds: float | None,
        exchange_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._options = options
        self._seconds = seconds
        self.exchange_options: Mapping[str, Any] = exchange_options or {}

    def start(self) -> _Deadline:
        return _Deadline(self._options, self._seconds)


class Client:
    """A client of one fletch server.

    ::

        with fletch.Client("127.0.0.1:8815") as client:
            client.call("add_int64", [1, 2], [10, 20])     # <pyarrow.lib.Int64Array> [11, 22]

    Args:
        location: ``"grpc://host:port"``, ``"grpc+tls://host:port"`` or ``"host:port"`` (plain gRPC, or TLS
            when tls_root_certs is given).
        token: sent as ``authorization: Bearer <token>`` on every call.
        tls_root_certs: PEM certificates to verify a ``grpc+tls`` server with (default: the system's).
        tls_cert_chain, tls_private_key: the PEM client certificate and its key, for a server that
            requires mutual TLS (``--tls-client-ca``).
        timeout: the default deadline of every call, in seconds (None: no deadline). Each method takes
            ``timeout=`` to override it; for ``call`` and ``call_stream`` it bounds the whole exchange.
        headers: more headers for every call.
        middleware: pyarrow ``ClientMiddlewareFactory`` objects, for tracing or metrics.
        max_in_flight: how many input batches a call may send ahead of the output batches consumed; this
            bounds the memory of ``call_stream``.
        override_hostname: the host name to verify the server's TLS certificate against.

    Signatures are cached per UDF: ``describe`` asks the server once per name (``list`` refreshes them all),
    and a call failing with UdfNotFound or SignatureMismatch drops the name's entry, as the server's catalog
    may have changed. A Client is safe to use from several threads.
    """

    def __init__(
        self,
        location: str | flight.Location,
        *,
        token: str | None = None,
        tls_root_certs: bytes | str | None = None,
        tls_cert_chain: bytes | str | None = None,
        tls_private_key: bytes | str | None = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        middleware: Sequence[flight.ClientMiddlewareFactory] | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        override_hostname: str | None = None,
    ) -> None:
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ValueError(f"max_in_flight must be a positive int, not {max_in_flight!r}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds or None, not {timeout!r}")
        self._location = _location(location, tls=tls_root_certs is not None or tls_cert_chain is not None)
        kwargs: dict[str, Any] = {}
        if (tls_cert_chain is None) != (tls_private_key is None):
            raise ValueError("tls_cert_chain and tls_private_key go together")
        for arg, pem in (
            ("tls_root_certs", tls_root_certs),
            ("cert_chain", tls_cert_chain),
            ("private_key", tls_private_key),
        ):
            if pem is not None:
                kwargs[arg] = pem.encode() if isinstance(pem, str) else pem
        if middleware:
            kwargs["middleware"] = list(middleware)
        if override_hostname is not None:
            kwargs["override_hostname"] = override_hostname
        call_headers: list[tuple[bytes, bytes]] = []
        if token is not None:
            call_headers.append((b"authorization", f"Bearer {token}".encode()))
        for key, value in (headers or {}).items():
            call_headers.append((key.lower().encode(), value.encode()))
        self._headers = call_headers
        self._timeout = timeout
        self._max_in_flight = max_in_flight
        self._cache: dict[str, UdfInfo] = {}
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._flight = flight.FlightClient(self._location, **kwargs)
        except pa.ArrowException as exc:
            raise from_flight_error(exc) from exc

    # -- lifecycle -------------------------------------------------------------------------------------------

    @property
    def location(self) -> str:
        """The server's location, with its scheme."""
        return self._location

    def close(self) -> None:
        """Close the connection. Calls after this fail; closing twice is fine."""
        if not self._closed:
            self._closed = True
            self._flight.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<fletch.Client {self._location}{state}>"

    def _options(
        self, timeout: float | _Unset | None, options: Mapping[str, Any] | None = None
    ) -> _CallOptions:
        if self._closed:
            raise ValueError("this fletch.Client is closed")
        seconds = self._timeout if timeout is UNSET else timeout
        headers = self._headers
        encoded = encode_options(options)
        if encoded is not None:
            headers = [*headers, (OPTIONS_HEADER, encoded.encode())]
        return _CallOptions(flight.FlightCallOptions(timeout=seconds, headers=headers), seconds, options)

    # -- discovery -------------------------------------------------------------------------------------------

    def list(self, *, timeout: float | _Unset | None = UNSET) -> builtins.list[UdfInfo]:
        """Every UDF the server serves, sorted by name; refreshes the signature cache.

        Uses the ``list`` action, or ListFlights on servers without it.
        """
        call = self._options(timeout).start()
        try:
            try:
                results = builtins.list(
                    self._flight.do_action(flight.Action("list", b""), options=call.options)
                )
            except pa.ArrowException as exc:
                if grpc_code(exc) != "UNIMPLEMENTED":
                    raise
                infos = self._list_flights(call.options)
            else:
                infos = self._parse_list(results)
        except pa.ArrowException as exc:
            raise from_flight_error(exc, deadline_passed=call.deadline_passed()) from exc
        infos.sort(key=lambda i: i.name)
        with self._lock:
            self._cache = {i.name: i for i in infos}
        return infos

    @staticmethod
    def _parse_list(results: Sequence[flight.Result]) -> builtins.list[UdfInfo]:
        if len(results) != 1:
            raise ServerError(f"the list action returned {len(results)} results, want 1")
        try:
            items = json.loads(results[0].body.to_pybytes())
        except ValueError as err:
            raise ServerError(f"the list action did not return JSON: {err}") from err
        if not isinstance(items, builtins.list):
            raise ServerError("the list action did not return a JSON array")
        return [UdfInfo.from_json(item) for item in items]

    def _list_flights(self, options: flight.FlightCallOptions) -> builtins.list[UdfInfo]:
        return [self._info_of(fi) for fi in self._flight.list_flights(options=options)]

    @staticmethod
    def _info_of(fi: flight.FlightInfo, name: str | None = None) -> UdfInfo:
        metadata = getattr(fi, "app_metadata", b"")
        if metadata:
            return UdfInfo.from_app_metadata(metadata)
        if name is None:
            path = fi.descriptor.path or [b""]
            name = path[0].decode() if isinstance(path[0], bytes) else str(path[0])
        return UdfInfo.from_signature_schema(name, fi.schema, fi.total_records)

    def describe(
        self, name: str, *, refresh: bool = False, timeout: float | _Unset | None = UNSET
    ) -> UdfInfo:
        """The UDF's signature and description (GetFlightInfo), from the cache unless refresh is set.

        Raises:
            UdfNotFound: the server has no UDF of that name.
        """
        if not refresh:
            with self._lock:
                cached = self._cache.get(name)
            if cached is not None:
                return cached
        call = self._options(timeout).start()
        try:
            fi = self._flight.get_flight_info(flight.FlightDescriptor.for_path(name), options=call.options)
        except pa.ArrowException as exc:
            err = from_flight_error(exc, function=name, deadline_passed=call.deadline_passed())
            if isinstance(err, UdfNotFound):
                self.forget(name)
            raise err from exc
        info = self._info_of(fi, name)
        with self._lock:
            self._cache[name] = info
        return info

    def forget(self, name: str | None = None) -> None:
        """Drop name's cached signature (every name's when None), so the next use asks the server."""
        with self._lock:
            if name is None:
                self._cache.clear()
            else:
                self._cache.pop(name, None)

    # -- calls -----------------------------------------------------------------------------------------------

    def call(
        self,
        name: str,
        *columns: Any,
        rows: int | None = None,
        batch_size: int | None = None,
        timeout: float | _Unset | None = UNSET,
        options: Mapping[str, Any] | None = None,
    ) -> Any:
        """Call a UDF over columns or a table and return its results.

        Args:
            name: the UDF.
            columns: the input, matched to the parameters by position: one column per parameter (pyarrow
                Arrays or ChunkedArrays; Python lists, tuples and numpy arrays, converted to the declared
                types; pandas or polars Series), or a single ``pa.Table``, ``pa.RecordBatch``,
                ``pa.RecordBatchReader``, iterator of record batches, or pandas or polars DataFrame.
            rows: for a UDF without parameters, the number of rows to produce.
            batch_size: rows per batch sent; by default tables, record batches, readers and iterators keep
                their batching, and everything else is sent in batches of 64 Ki rows.
            timeout: the call's deadline in seconds, overriding the client's.
            options: exchange options, sent as JSON in the ``fletch-options`` header (for aggregates:
                ``{"running": True}``, ``{"phase": "partial"}``; see docs/protocol.md).

        Returns:
            Columns give a ``pa.Array`` (a pandas or polars Series if the first column is one), tables a
            ``pa.Table`` with one column named after the UDF (a pandas or polars DataFrame for those).

        Raises:
            UdfNotFound, SignatureMismatch, UdfError, WorkerCrashed, DeadlineExceeded, MessageTooLarge,
            Unavailable, ...: see ``docs/client.md``.
        """
        info = self.describe(name, timeout=timeout)
        prepared = prepare_call(info, columns, rows=rows, batch_size=batch_size)
        with self._stream(info, prepared.batches, self._options(timeout, options)) as stream:
            outputs = builtins.list(stream)
        return finish_call(info, prepared, outputs)

    def call_stream(
        self,
        name: str,
        batches: Iterable[pa.RecordBatch],
        *,
        batch_size: int | None = None,
        timeout: float | _Unset | None = UNSET,
        options: Mapping[str, Any] | None = None,
    ) -> ResultStream:
        """Stream record batches through a UDF; returns an iterator of output batches, one per input batch.

        batches (a generator, a reader, any iterable) is consumed by a background thread while you iterate,
        at most ``max_in_flight`` batches ahead of what you have consumed, so neither the input nor the
        output has to fit in memory. An exception raised by batches is raised by the iterator. Leaving the
        iteration early (``break``, an exception) cancels the call and joins the thread; use the result as a
        context manager, or call ``close()``, when you do not iterate to the end.

        batch_size re-chunks the input into batches of that many rows; options are exchange options, as for
        ``call``.
        """
        info = self.describe(name, timeout=timeout)
        stream: Iterable[pa.RecordBatch] = check_stream(name, batches)
        if batch_size is not None:
            if not isinstance(batch_size, int) or batch_size < 1:
                raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")
            stream = rechunk(stream, batch_size)
        return self._stream(info, stream, self._options(timeout, options))

    def _stream(
        self, info: UdfInfo, batches: Iterable[pa.RecordBatch], options: _CallOptions
    ) -> ResultStream:
        # The generator holds the call's state; nothing in it refers back to the stream, so dropping the
        # stream closes the generator at once, which ends the call.
        return ResultStream(info, _Exchange(self, info, batches, options, self._max_in_flight).run())

    def _failed(self, info: UdfInfo, exc: BaseException, call: _Deadline) -> FletchError:
        err = from_flight_error(
            exc, function=info.name, language=info.language, deadline_passed=call.deadline_passed()
        )
        if isinstance(err, (UdfNotFound, SignatureMismatch)):
            self.forget(info.name)
        return err


def _outputs_per_batch(info: UdfInfo, options: Mapping[str, Any]) -> int | None:
    """How many output batches the server sends for each input batch before the half-close, if known.

    Scalar UDFs answer each batch with one (docs/protocol.md); aggregates with none, or one with the
    ``running`` option; table functions and transforms with any number.
    """
    if info.kind == "scalar":
        return 1
    if info.kind == "aggregate":
        return 1 if options.get("running") else 0
    return None


# For table functions and transforms, how long the writer thread leaves the half-close to the reading thread
# before doing it itself (see _Exchange).
_HALF_CLOSE_GRACE_S: Final = 0.1


class _Exchange:
    """One DoExchange: a writer thread sends the input batches while the caller's thread reads the outputs.

    pyarrow's exchange stream lets one thread write while another reads, but when the reading side sees the
    call end it half-closes the stream itself (gRPC WritesDone); a concurrent ``done_writing()`` from another
    thread makes a second WritesDone, which aborts the process. So the writer thread only writes, and the
    reading thread half-closes once the writer is done, reading only while outputs are due. That needs to
    know how many outputs each input batch gets, which the protocol says for scalar UDFs and aggregates.

    Table functions and transforms send any number: the reading thread half-closes when an output arrives
    after the last input was written, and if none arrives within _HALF_CLOSE_GRACE_S the writer thread does
    it. Errors that end the call at once (bad options, a schema mismatch) arrive within that time; a failure
    that ends the call at the very moment the writer half-closes is the one race left.
    """

    def __init__(
        self,
        client: Client,
        info: UdfInfo,
        batches: Iterable[pa.RecordBatch],
        options: _CallOptions,
        max_in_flight: int,
    ) -> None:
        self._client = client
        self._info = info
        self._batches = batches
        self._options = options
        self._per_batch = _outputs_per_batch(info, options.exchange_options)
        self._check_rows = info.kind == "scalar"  # one output row per input row
        # The window needs one output per input batch to tell that the caller has consumed a batch.
        self._slots = threading.Semaphore(max_in_flight) if self._per_batch == 1 else None
        self._stop = threading.Event()
        # Guards _due, _written, _half_closed and _ended; notified when they change.
        self._changed = threading.Condition()
        self._due: collections.deque[int] = collections.deque()  # rows of the batches whose output is due
        self._written = False  # every input batch is written, or the writer failed
        self._half_closed = False  # done_writing() was called, or is being called
        self._ended = False  # the reading thread has seen the call end
        self._input_error: BaseException | None = None
        self._write_error: BaseException | None = None
        self._writer: flight.FlightStreamWriter | None = None
        self._reader: flight.FlightStreamReader | None = None
        self._thread: threading.Thread | None = None
        self._call: _Deadline  # set when the call starts

    def run(self) -> Generator[pa.RecordBatch, None, None]:
        name = self._info.name
        self._call = self._options.start()
        try:
            writer, reader = self._client._flight.do_exchange(
                flight.FlightDescriptor.for_path(name), options=self._call.options
            )
        except pa.ArrowException as exc:
            raise self._client._failed(self._info, exc, self._call) from exc
        self._writer, self._reader = writer, reader
        finished = False
        try:
            self._thread = threading.Thread(target=self._write, name=f"fletch-call-{name}", daemon=True)
            self._thread.start()
            index = 0
            while True:
                if self._per_batch is not None and not self._half_closed:
                    # Read only when an output is due; half-close here once everything is written.
                    with self._changed:
                        self._changed.wait_for(lambda: bool(self._due) or self._written)
                        written = self._written
                    if written:
                        self._join()
                        self._half_close(writer)
                elif self._per_batch is None:
                    with self._changed:
                        mine = self._written and not self._half_closed
                        self._half_closed = self._half_closed or mine
                        self._changed.notify_all()  # the writer thread need not wait any longer
                    if mine:
                        self._half_close(writer)
                try:
                    chunk = reader.read_chunk()
                except StopIteration:
                    self._end()
                    break
                except pa.ArrowException as exc:
                    self._end()
                    raise self._read_failure(exc) from exc
                batch = chunk.data
                if batch is None:  # app_metadata only
                    continue
                with self._changed:
                    rows = self._due.popleft() if self._due else None
                if rows is not None and self._slots is not None:
                    self._slots.release()
                if self._check_rows:
                    if rows is None:
                        raise ServerError(f"{name}: the server sent output batch {index} for no input batch")
                    check_output(name, index, rows, batch)
                index += 1
                yield batch
            self._join()
            if self._input_error is not None:
                raise self._input_error
            if self._write_error is not None:
                if not isinstance(self._write_error, pa.ArrowException):
                    raise self._write_error
                raise self._client._failed(self._info, self._write_error, self._call) from self._write_error
            if self._check_rows and self._due:
                raise ServerError(
                    f"{name}: the server ended the call after {index} output batches; "
                    f"{len(self._due)} input batches got none"
                )
            try:
                writer.close()
            except pa.ArrowException as exc:
                raise self._client._failed(self._info, exc, self._call) from exc
            finished = True
        finally:
            if not finished:
                self._abort()

    def _half_close(self, writer: flight.FlightStreamWriter) -> None:
        """Once every batch is written: raise what the writer met, or half-close."""
        self._half_closed = True
        if self._input_error is not None:
            self._join()
            raise self._input_error
        if self._write_error is None:
            try:
                writer.done_writing()
            except pa.ArrowException as exc:
                raise self._client._failed(self._info, exc, self._call) from exc
        elif not isinstance(self._write_error, pa.ArrowException):
            raise self._write_error
        # else the call has ended: reading gives its status

    def _end(self) -> None:
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def _read_failure(self, exc: pa.ArrowException) -> BaseException:
        if self._input_error is not None and grpc_code(exc) == "CANCELLED":
            self._join()
            return self._input_error  # the input failed, and the writer cancelled the call
        return self._client._failed(self._info, exc, self._call)

    def _write(self) -> None:
        """The writer thread: the input batches to the server (and the half-close, if outputs are unknown)."""
        writer, reader = self._writer, self._reader
        assert writer is not None and reader is not None
        try:
            iterator = iter(self._batches)
            begun = False
            while True:
                if self._slots is not None:
                    self._slots.acquire()
                if self._stop.is_set():
                    return
                try:
                    batch = next(iterator)
                except StopIteration:
                    break
                except BaseException as exc:  # the caller's input failed: end the call with its exception
                    self._input_error = exc
                    reader.cancel()
                    return
                if not begun:
                    writer.begin(batch.schema)
                    begun = True
                if self._per_batch == 1:
                    with self._changed:
                        self._due.append(batch.num_rows)
                        self._changed.notify_all()
                writer.write_batch(batch)
        except BaseException as exc:  # the call failed; the reader sees its status
            if not self._stop.is_set():
                self._write_error = exc
        finally:
            with self._changed:
                self._written = True
                self._changed.notify_all()
        if self._per_batch is None and self._write_error is None:
            self._half_close_if_reader_does_not()

    def _half_close_if_reader_does_not(self) -> None:
        """Table functions and transforms: half-close unless the reading thread does it (see the class)."""
        writer = self._writer
        assert writer is not None
        with self._changed:
            self._changed.wait_for(
                lambda: self._half_closed or self._ended or self._stop.is_set(), timeout=_HALF_CLOSE_GRACE_S
            )
            mine = not (self._half_closed or self._ended or self._stop.is_set())
            self._half_closed = self._half_closed or mine
        if mine:
            try:
                writer.done_writing()
            except BaseException as exc:  # the call failed; the reader sees its status
                self._write_error = exc

    def _join(self) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _abort(self) -> None:
        """End an unfinished call: stop the writer, cancel the call, join the thread, close the stream."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._slots is not None:
            self._slots.release()
        if self._reader is not None:
            with contextlib.suppress(pa.ArrowException):
                self._reader.cancel()
        self._join()
        if self._writer is not None:
            with contextlib.suppress(pa.ArrowException):
                self._writer.close()
