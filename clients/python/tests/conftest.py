"""Fixtures that run the real fletch binary for end-to-end tests.

Every test talks to a ``fletch serve`` process over Arrow Flight. Servers are
started through a launcher so that any test module can ask for one with its
own flags::

    def test_something(start_server):
        server = start_server("--max-batch-rows", "1000")
        with server.client() as client:
            ...

``server`` is a module-scoped server with the default flags, and
``start_module_server`` is the module-scoped factory for modules that share
a server with extra flags (for example ``--udf-dir``).

The binary comes from ``$FLETCH_BIN`` or ``<repo>/bin/fletch``; build it with
``go build -o bin/fletch ./cmd/fletch`` from the repository root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest

log = logging.getLogger("fletch.tests")

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BIN = REPO_ROOT / "bin" / "fletch"

# Generous: the first Python server on a machine extracts the embedded runtime.
STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
# One wait_for_available attempt. Each attempt uses a fresh client so that
# gRPC's reconnect backoff on a refused connection does not slow start-up.
POLL_ATTEMPT_S = 0.2
STARTUP_ATTEMPTS = 3  # retries when the free port was taken in the meantime
# Deadline for one DoExchange, so that a server that never answers fails the
# test (DEADLINE_EXCEEDED) instead of hanging the suite.
EXCHANGE_TIMEOUT_S = 60.0


def fletch_binary() -> Path:
    """The fletch binary under test, or a test failure explaining how to build it."""
    path = Path(os.environ.get("FLETCH_BIN", DEFAULT_BIN))
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"fletch binary not found at {path}; build it with "
            f"`cd {REPO_ROOT} && go build -o bin/fletch ./cmd/fletch` "
            "or point FLETCH_BIN at one",
            pytrace=False,
        )
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a fletch process: ours without FLETCH_* settings, plus extra.

    FLETCH_TEST_WORKER_TRANSPORT, if set, becomes the servers' --worker-transport (make test-python-pipe runs
    the Python UDF tests with the pipe fallback)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLETCH_")}
    if transport := os.environ.get("FLETCH_TEST_WORKER_TRANSPORT"):
        env["FLETCH_WORKER_TRANSPORT"] = transport
    env.update(extra or {})
    return env


@dataclasses.dataclass
class Server:
    """One running ``fletch serve`` process."""

    process: subprocess.Popen[bytes]
    location: str
    stderr_path: Path
    args: tuple[str, ...]
    failed_to_start: bool = False
    tls_root_certs: bytes | None = None
    client_cert: tuple[bytes, bytes] | None = None  # (chain, key) for mutual TLS
    _clients: list[flight.FlightClient] = dataclasses.field(default_factory=list)

    def client(self) -> flight.FlightClient:
        """A new client for this server; it is closed when the server stops."""
        c = flight.FlightClient(self.location, **self.tls_kwargs())
        self._clients.append(c)
        return c

    def tls_kwargs(self) -> dict[str, bytes]:
        """The FlightClient arguments for this server's TLS, if any."""
        kwargs = {} if self.tls_root_certs is None else {"tls_root_certs": self.tls_root_certs}
        if self.client_cert is not None:
            kwargs["cert_chain"], kwargs["private_key"] = self.client_cert
        return kwargs

    def stderr_text(self) -> str:
        """Everything the server has logged so far."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def describe(self) -> str:
        """Command line, exit status and log, for assertion messages."""
        return (
            f"fletch {' '.join(self.args)} (pid {self.process.pid}, "
            f"exit code {self.process.returncode}); stderr:\n{self.stderr_text()}"
        )

    def close_clients(self) -> None:
        for c in self._clients:
            with contextlib.suppress(Exception):
                c.close()
        self._clients.clear()

    def terminate(self) -> None:
        """Send SIGTERM (start a drain) without waiting."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """Wait for the process to exit; fail with its log if it does not."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"fletch did not exit within {timeout} s of SIGTERM: {self.describe()}")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """Close our clients, SIGTERM the server and return its exit code."""
        self.close_clients()
        self.terminate()
        return self.wait(timeout)

    # --- conveniences shared by the test modules -------------------------

    def exchange(
        self,
        name: str,
        batches: Sequence[pa.RecordBatch],
        schema: pa.Schema | None = None,
        client: flight.FlightClient | None = None,
    ) -> list[pa.RecordBatch]:
        """Run one DoExchange in lock-step: write a batch, read its output.

        Checks that each input batch yields exactly one output batch with the
        same row count and that nothing follows after done_writing.
        """
        if schema is None:
            schema = batches[0].schema
        if client is None:
            with flight.FlightClient(self.location) as own:
                return self.exchange(name, batches, schema, own)
        outputs: list[pa.RecordBatch] = []
        with self.open_exchange(name, schema, client) as (writer, reader):
            for i, batch in enumerate(batches):
                writer.write_batch(batch)
                chunk = reader.read_chunk()
                assert chunk.data is not None, f"{name}: batch {i}: no data in the output message"
                assert chunk.data.num_rows == batch.num_rows, (
                    f"{name}: batch {i}: {chunk.data.num_rows} output rows for {batch.num_rows} input rows"
                )
                outputs.append(chunk.data)
            self.finish_exchange(writer, reader)
        return outputs

    @contextlib.contextmanager
    def open_exchange(
        self,
        name: str,
        schema: pa.Schema,
        client: flight.FlightClient | None = None,
        *,
        expect_error: bool = False,
    ) -> Iterator[tuple[flight.FlightStreamWriter, flight.FlightStreamReader]]:
        """Open DoExchange on PATH [name] and begin with schema.

        On the way out the writer is closed, which raises the call's final
        status if it is an error. That is skipped if the body raised, or if
        expect_error is set (the body checked the error itself). Without a
        client, a new one is used and closed afterwards.
        """
        if client is None:
            with (
                flight.FlightClient(self.location) as own,
                self.open_exchange(name, schema, own, expect_error=expect_error) as streams,
            ):
                yield streams
            return
        writer, reader = client.do_exchange(
            flight.FlightDescriptor.for_path(name),
            options=flight.FlightCallOptions(timeout=EXCHANGE_TIMEOUT_S),
        )
        ok = False
        try:
            writer.begin(schema)
            yield writer, reader
            ok = not expect_error
        finally:
            if ok:
                writer.close()
            else:
                with contextlib.suppress(pa.ArrowException):
                    writer.close()

    @staticmethod
    def finish_exchange(writer: flight.FlightStreamWriter, reader: flight.FlightStreamReader) -> None:
        """Half-close and check that the server sends no further batch."""
        writer.done_writing()
        with pytest.raises(StopIteration):  # no output may follow
            reader.read_chunk()

    @staticmethod
    def write_and_read(
        writer: flight.FlightStreamWriter, reader: flight.FlightStreamReader, batch: pa.RecordBatch
    ) -> flight.FlightStreamChunk:
        """One lock-step round: write a batch, read what comes back."""
        writer.write_batch(batch)
        return reader.read_chunk()

    def assert_healthy(self) -> None:
        """A normal discovery call and a normal exchange both work."""
        with flight.FlightClient(self.location) as c:
            names = [info.descriptor.path[0].decode() for info in c.list_flights()]
            if "add_int64" not in names:  # e.g. --no-builtins
                return
            batch = pa.record_batch([pa.array([1, None, -3]), pa.array([2, 5, 3])], names=["a", "b"])
            (out,) = self.exchange("add_int64", [batch], client=c)
            assert out.column(0).to_pylist() == [3, None, 0]


class Launcher:
    """Starts fletch servers and stops them all at teardown."""

    def __init__(self, binary: Path, log_dir: Path) -> None:
        self.binary = binary
        self.log_dir = log_dir
        self.servers: list[Server] = []

    def start(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        listen: str | None = None,
        log_level: str | None = "debug",
        tls_root_certs: bytes | None = None,
        client_cert: tuple[bytes, bytes] | None = None,
    ) -> Server:
        """Start ``fletch serve`` and wait until it answers ListFlights.

        listen: the address to pass as --listen; by default a free port on
        127.0.0.1. Pass listen="" to leave --listen off (the address must then
        come from env, and is read from FLETCH_LISTEN). tls_root_certs: the
        CA of a server started with --tls-cert; its location is grpc+tls.
        client_cert: (chain, key) for a server started with --tls-client-ca.
        A server that answers UNAUTHENTICATED (one with --auth-tokens) is up.
        """
        for attempt in range(STARTUP_ATTEMPTS):
            address = listen if listen is not None else f"127.0.0.1:{free_port()}"
            cmd: list[str] = ["serve"]
            if address:
                cmd += ["--listen", address]
            elif env and env.get("FLETCH_LISTEN"):
                address = env["FLETCH_LISTEN"]
            else:
                raise ValueError('listen="" needs FLETCH_LISTEN in env')
            if log_level is not None:
                cmd += ["--log-level", log_level]
            cmd += list(args)
            server = self._spawn(cmd, env, address, tls_root_certs, client_cert)
            if server is not None:
                return server
            if listen is not None or attempt == STARTUP_ATTEMPTS - 1:
                break
        last = self.servers[-1]
        pytest.fail(f"fletch exited before serving: {last.describe()}", pytrace=False)

    def _spawn(
        self,
        cmd: list[str],
        env: Mapping[str, str] | None,
        address: str,
        tls_root_certs: bytes | None,
        client_cert: tuple[bytes, bytes] | None,
    ) -> Server | None:
        stderr_path = self.log_dir / f"fletch-{len(self.servers)}.stderr"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [str(self.binary), *cmd],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                env=server_env(env),
            )
        scheme = "grpc" if tls_root_certs is None else "grpc+tls"
        server = Server(
            process=process,
            location=f"{scheme}://{address}",
            stderr_path=stderr_path,
            args=tuple(cmd),
            tls_root_certs=tls_root_certs,
            client_cert=client_cert,
        )
        self.servers.append(server)
        log.debug("started %s", server.describe())
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                server.failed_to_start = True
                if "address already in use" in server.stderr_text():
                    return None  # someone took our free port; try another
                pytest.fail(f"fletch exited before serving: {server.describe()}", pytrace=False)
            if time.monotonic() > deadline:
                server.stop()
                pytest.fail(f"fletch did not answer within {STARTUP_TIMEOUT_S} s: {server.describe()}")
            with flight.FlightClient(server.location, **server.tls_kwargs()) as probe:
                try:
                    probe.wait_for_available(timeout=POLL_ATTEMPT_S)
                    return server
                except flight.FlightUnauthenticatedError:
                    return server
                except (flight.FlightUnavailableError, flight.FlightTimedOutError):
                    continue

    def stop_all(self) -> None:
        """Stop every server; fail naming each that did not exit 0."""
        failures = []
        for server in self.servers:
            if server.failed_to_start:
                continue  # reported when it happened
            code = server.stop()
            if code != 0:
                failures.append(server.describe())
        self.servers.clear()
        if failures:
            pytest.fail(
                "fletch did not exit 0 (SIGTERM at teardown, or it died earlier):\n" + "\n\n".join(failures)
            )


StartServer = Callable[..., Server]


@pytest.fixture(scope="session")
def fletch_bin() -> Path:
    """Path of the fletch binary (from $FLETCH_BIN or <repo>/bin/fletch)."""
    return fletch_binary()


@pytest.fixture
def start_server(fletch_bin: Path, tmp_path: Path) -> Iterator[StartServer]:
    """Factory: start_server(*flags, env=None, listen=None) -> Server, stopped after the test."""
    launcher = Launcher(fletch_bin, tmp_path)
    yield launcher.start
    launcher.stop_all()


@pytest.fixture(scope="module")
def start_module_server(fletch_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """Like start_server, but the servers live until the end of the module."""
    launcher = Launcher(fletch_bin, tmp_path_factory.mktemp("fletch"))
    yield launcher.start
    launcher.stop_all()


@pytest.fixture(scope="module")
def server(start_module_server: StartServer) -> Server:
    """A fletch server with the default flags, shared by a module's tests."""
    return start_module_server()


@pytest.fixture
def client(server: Server) -> Iterator[flight.FlightClient]:
    """A client of the module's default server, closed after the test."""
    with flight.FlightClient(server.location) as c:
        yield c
