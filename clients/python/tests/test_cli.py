"""The fletch command line: version, usage errors, environment variables, drain."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

RUN_TIMEOUT_S = 15.0
REFUSE_TIMEOUT_S = 15.0


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without FLETCH_* settings, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLETCH_")}
    env.update(extra or {})
    return env


def run_fletch(
    binary: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run fletch to completion; fail if it is still running after RUN_TIMEOUT_S (e.g. it started serving)."""
    try:
        return subprocess.run(
            [str(binary), *args],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"fletch {' '.join(args)} did not exit; stderr:\n{exc.stderr!r}")


def unused_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def refused(location: str) -> bool:
    """Whether a new connection to location fails with UNAVAILABLE."""
    with flight.FlightClient(location) as c:
        try:
            list(c.list_flights(options=flight.FlightCallOptions(timeout=5)))
        except flight.FlightUnavailableError:
            return True
    return False


def wait_until_refused(location: str, timeout: float = REFUSE_TIMEOUT_S) -> None:
    """Poll with new connections until the server stops accepting them."""
    deadline = time.monotonic() + timeout
    while not refused(location):
        if time.monotonic() > deadline:
            pytest.fail(f"{location} still accepts calls {timeout} s after SIGTERM")


def int_batch(values: list[int]) -> pa.RecordBatch:
    return pa.record_batch([pa.array(values, pa.int64())], names=["x"])


def test_version(fletch_bin: Path) -> None:
    result = run_fletch(fletch_bin, "version")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"fletch \S+\n", result.stdout), result.stdout


USAGE_ERRORS = [
    # arguments, environment, what stderr must mention
    ([], {}, "command"),
    (["bogus"], {}, 'unknown command "bogus"'),
    (["serve", "extra-argument"], {}, "extra-argument"),
    (["serve", "--no-such-flag"], {}, "no-such-flag"),
    (["serve", "--max-batch-rows", "abc"], {}, "max-batch-rows"),
    (["serve", "--max-batch-rows", "0"], {}, "max-batch-rows"),
    (["serve", "--max-batch-rows", "-5"], {}, "max-batch-rows"),
    (["serve", "--max-message-bytes", "0"], {}, "max-message-bytes"),
    (["serve", "--max-message-bytes", "3GiB"], {}, "max-message-bytes"),
    (["serve", "--max-batch-bytes", "12XB"], {}, "max-batch-bytes"),
    (["serve", "--log-level", "loud"], {}, "log-level"),
    (["serve", "--log-format", "xml"], {}, "log-format"),
    (["serve", "--drain-timeout", "forever"], {}, "drain-timeout"),
    (["serve", "--no-builtins=maybe"], {}, "no-builtins"),
    (["serve"], {"FLETCH_MAX_BATCH_ROWS": "abc"}, "FLETCH_MAX_BATCH_ROWS"),
    (["serve"], {"FLETCH_MAX_MESSAGE_BYTES": "lots"}, "FLETCH_MAX_MESSAGE_BYTES"),
    (["serve"], {"FLETCH_LOG_LEVEL": "loud"}, "loud"),
]


@pytest.mark.parametrize(
    ("args", "env", "mention"),
    USAGE_ERRORS,
    ids=[" ".join(a) + "".join(f" {k}={v}" for k, v in e.items()) or "no-args" for a, e, _ in USAGE_ERRORS],
)
def test_usage_error_exits_2(fletch_bin: Path, args: list[str], env: dict[str, str], mention: str) -> None:
    if args[:1] == ["serve"]:
        args = [*args, "--listen", unused_address()]  # in case it starts serving after all
    result = run_fletch(fletch_bin, *args, env=env)
    assert result.returncode == 2, f"exit code {result.returncode}; stderr:\n{result.stderr}"
    assert mention in result.stderr, result.stderr
    assert result.stdout == ""


def test_listen_failure_exits_1(fletch_bin: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        result = run_fletch(fletch_bin, "serve", "--listen", address)
    assert result.returncode == 1, result.stderr
    assert "listen" in result.stderr


def test_env_listen(start_server: Callable[..., Any]) -> None:
    address = unused_address()
    server = start_server(listen="", env={"FLETCH_LISTEN": address})
    assert server.location == f"grpc://{address}"
    server.assert_healthy()


def test_env_no_builtins(start_server: Callable[..., Any]) -> None:
    server = start_server(env={"FLETCH_NO_BUILTINS": "true"})
    with server.client() as c:
        assert list(c.list_flights()) == []


def test_env_max_message_bytes(start_server: Callable[..., Any]) -> None:
    server = start_server(env={"FLETCH_MAX_MESSAGE_BYTES": "1MiB"})
    batch = int_batch(list(range(2 * (1 << 20) // 8)))
    with (
        server.open_exchange("echo_int64", batch.schema, expect_error=True) as (writer, reader),
        pytest.raises(pa.ArrowInvalid, match="resource exhausted"),
    ):
        server.write_and_read(writer, reader, batch)
    server.assert_healthy()


def test_env_log_format(start_server: Callable[..., Any]) -> None:
    server = start_server(env={"FLETCH_LOG_FORMAT": "json"})
    lines = [line for line in server.stderr_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line


def test_flag_beats_env_listen(start_server: Callable[..., Any]) -> None:
    env_address = unused_address()
    server = start_server(env={"FLETCH_LISTEN": env_address})
    assert env_address not in server.location
    server.assert_healthy()
    assert refused(f"grpc://{env_address}")


def test_flag_beats_env_no_builtins(start_server: Callable[..., Any]) -> None:
    server = start_server("--no-builtins=false", env={"FLETCH_NO_BUILTINS": "true"})
    with server.client() as c:
        assert len(list(c.list_flights())) == 10  # the built-ins
    server.assert_healthy()


def test_flag_beats_env_max_message_bytes(start_server: Callable[..., Any]) -> None:
    server = start_server("--max-message-bytes", "64MiB", env={"FLETCH_MAX_MESSAGE_BYTES": "1MiB"})
    values = list(range(2 * (1 << 20) // 8))
    (out,) = server.exchange("echo_int64", [int_batch(values)])
    assert out.column(0).to_pylist() == values


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_drain(start_server: Callable[..., Any], sig: signal.Signals) -> None:
    server = start_server()
    with (
        server.client() as c,
        server.open_exchange("echo_int64", int_batch([]).schema, c) as (writer, reader),
    ):
        writer.write_batch(int_batch([1, 2, 3]))
        assert reader.read_chunk().data.column(0).to_pylist() == [1, 2, 3]

        server.process.send_signal(sig)
        wait_until_refused(server.location)  # draining: new calls are refused

        writer.write_batch(int_batch([4, None, 6]))
        assert reader.read_chunk().data.column(0).to_pylist() == [4, None, 6]
        server.finish_exchange(writer, reader)
    # Leaving the with block closed the writer, which raises if the call failed.
    code = server.wait()
    assert code == 0, server.describe()
    assert refused(server.location)
    with flight.FlightClient(server.location) as c, pytest.raises(flight.FlightUnavailableError):
        c.wait_for_available(timeout=1)


def test_drain_timeout_cancels_open_exchange(start_server: Callable[..., Any]) -> None:
    server = start_server("--drain-timeout", "1s")
    with (
        server.client() as c,
        server.open_exchange("echo_int64", int_batch([]).schema, c, expect_error=True) as (writer, reader),
    ):
        writer.write_batch(int_batch([1]))
        assert reader.read_chunk().data.num_rows == 1
        started = time.monotonic()
        server.terminate()
        code = server.wait(timeout=20)
        assert code == 0, server.describe()
        assert time.monotonic() - started < 15, "the drain did not stop at --drain-timeout"
        with pytest.raises(flight.FlightError):
            server.write_and_read(writer, reader, int_batch([2]))
    assert "drain" in server.stderr_text()


def test_health_verb(fletch_bin: Path, server: Any) -> None:
    address = server.location.removeprefix("grpc://")
    ok = subprocess.run(
        [str(fletch_bin), "health", "--address", address], capture_output=True, text=True, timeout=30
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "SERVING"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    down = subprocess.run(
        [str(fletch_bin), "health", "--address", closed, "--timeout", "1s"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert down.returncode == 1
    assert closed in down.stderr
