"""Fixtures for the fletch.Client and fletch.testing tests.

The server fixtures (start_server, start_module_server, server) come from tests/conftest.py; this file adds a
module of Python UDFs for the client tests, a server that serves it, and a middleware that counts calls.
"""

from __future__ import annotations

import json
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import fletch

Server = Any  # tests/conftest.py's Server handle

# UDFs the client tests call: failures of every kind, a decimal, a zero-argument Python UDF.
CLIENT_UDFS = textwrap.dedent(
    '''
    import ctypes
    import time
    from decimal import Decimal
    from typing import Annotated, Optional

    import pyarrow as pa
    import pyarrow.compute as pc

    from fletch import udf


    class PriceError(Exception):
        pass


    @udf(volatility="immutable")
    def with_tax(price: Annotated[Decimal, pa.decimal128(10, 2)]) -> Annotated[Decimal, pa.decimal128(10, 2)]:
        """Price plus 20 % tax."""
        return (price * Decimal("1.2")).quantize(Decimal("0.01"))


    @udf
    def greet(name: Optional[str], punctuation: str) -> str:
        return f"hello {name or 'stranger'}{punctuation}"


    @udf
    def fails_on_three(x: int) -> int:
        if x == 3:
            raise PriceError("three is not a price")
        return x * 10


    @udf
    def vec_fails(x: pa.Int64Array) -> pa.Int64Array:
        raise ValueError("no vectors today")


    @udf
    def segfault(x: int) -> int:
        ctypes.string_at(0)
        return x


    @udf
    def sleep_seconds(x: float) -> float:
        time.sleep(x)
        return x


    @udf
    def seven() -> int:
        return 7


    @udf
    def vec_double(x: pa.Int64Array) -> pa.Int64Array:
        return pc.multiply(x, 2)
    '''
)


@pytest.fixture(scope="module")
def udf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("client_udfs")
    (root / "client_udfs.py").write_text(CLIENT_UDFS, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def udf_server(start_module_server: Callable[..., Server], udf_dir: Path) -> Server:
    """A server with the built-in functions and client_udfs.py."""
    return start_module_server("--udf-dir", str(udf_dir), "--workers", "2")


@pytest.fixture
def fc(udf_server: Server) -> Iterator[fletch.Client]:
    """A fletch.Client of udf_server, closed after the test."""
    with fletch.Client(udf_server.location, timeout=60) as c:
        yield c


class CountingMiddleware(flight.ClientMiddlewareFactory):
    """Counts the calls a client makes, by Flight method name (GET_FLIGHT_INFO, DO_EXCHANGE, ...)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def start_call(self, info: flight.CallInfo) -> None:
        with self._lock:
            self.calls[str(info.method).rsplit(".", 1)[-1]] += 1


@pytest.fixture
def counting() -> CountingMiddleware:
    return CountingMiddleware()


# -- a stand-in server for what fletch does not do yet: authentication, TLS, servers without the list action

ECHO_INFO = {
    "name": "echo",
    "kind": "scalar",
    "language": "python",
    "params": [{"name": "x", "type": "int64", "nullable": False}],
    "return": {"name": "echo", "type": "int64", "nullable": True},
    "doc": "returns x",
    "volatility": "immutable",
    "version": "0123456789abcdef",
}
TOKEN = "secret"


class _TokenCheck(flight.ServerMiddlewareFactory):
    """Refuses calls without ``authorization: Bearer secret``; records the headers it saw."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def start_call(self, info: flight.CallInfo, headers: dict[str, list[str]]) -> None:
        values = headers.get("authorization", [])
        self.seen.extend(values)
        if values != [f"Bearer {TOKEN}"]:
            raise flight.FlightUnauthenticatedError("invalid token")


class StandIn(flight.FlightServerBase):  # type: ignore[misc]
    """A pyarrow Flight server that serves one UDF, echo, the way fletch does."""

    def __init__(self, location: str, *, list_action: bool = True, **kwargs: Any) -> None:
        self.tokens = _TokenCheck()
        super().__init__(location, middleware={"auth": self.tokens}, **kwargs)
        self._list_action = list_action

    def _info(self) -> flight.FlightInfo:
        schema = pa.schema([pa.field("x", pa.int64()), pa.field("echo", pa.int64())])
        return flight.FlightInfo(
            schema,
            flight.FlightDescriptor.for_path("echo"),
            [],
            1,
            -1,
            app_metadata=json.dumps(ECHO_INFO).encode(),
        )

    def list_flights(self, context: Any, criteria: bytes) -> Iterator[flight.FlightInfo]:
        yield self._info()

    def get_flight_info(self, context: Any, descriptor: flight.FlightDescriptor) -> flight.FlightInfo:
        if descriptor.path != [b"echo"]:
            raise KeyError(f"function {descriptor.path!r} not found")
        return self._info()

    def do_action(self, context: Any, action: flight.Action) -> Iterator[bytes]:
        if action.type != "list" or not self._list_action:
            raise NotImplementedError(f"unknown action {action.type!r}")
        yield json.dumps([ECHO_INFO]).encode()

    def do_exchange(
        self,
        context: Any,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.MetadataRecordBatchWriter,
    ) -> None:
        writer.begin(pa.schema([pa.field("echo", pa.int64())]))
        for chunk in reader:
            if chunk.data is not None:
                writer.write_batch(pa.record_batch([chunk.data.column(0)], names=["echo"]))


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn("grpc://127.0.0.1:0")
    yield server
    server.shutdown()


@pytest.fixture
def auth_server(stand_in: StandIn) -> str:
    return f"grpc://127.0.0.1:{stand_in.port}"
