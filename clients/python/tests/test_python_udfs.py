"""Python UDFs through the real fletch binary and its embedded interpreter.

Each module-scoped server loads the modules written below from a temporary
--udf-dir. Calls go through plain pyarrow.flight.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute
import pyarrow.flight as flight
import pytest

# The server fixtures come from conftest.py; Server is its handle type.
Server = Any
CALL_TIMEOUT_S = 60.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


TYPES_MODULE = """
from __future__ import annotations

import dataclasses
import datetime
import decimal
from typing import Optional

import pyarrow as pa
import pyarrow.compute as pc

from fletch import udf


@dataclasses.dataclass
class Point:
    x: int
    y: Optional[str]


@udf
def id_int(v: Optional[int]) -> Optional[int]:
    return v

@udf
def id_float(v: Optional[float]) -> Optional[float]:
    return v

@udf
def id_str(v: Optional[str]) -> Optional[str]:
    return v

@udf
def id_bytes(v: Optional[bytes]) -> Optional[bytes]:
    return v

@udf
def id_bool(v: Optional[bool]) -> Optional[bool]:
    return v

@udf
def id_decimal(v: Optional[decimal.Decimal]) -> Optional[decimal.Decimal]:
    return v

@udf
def id_date(v: Optional[datetime.date]) -> Optional[datetime.date]:
    return v

@udf
def id_datetime(v: Optional[datetime.datetime]) -> Optional[datetime.datetime]:
    return v

@udf
def id_time(v: Optional[datetime.time]) -> Optional[datetime.time]:
    return v

@udf
def id_timedelta(v: Optional[datetime.timedelta]) -> Optional[datetime.timedelta]:
    return v

@udf
def id_list(v: Optional[list[Optional[int]]]) -> Optional[list[Optional[int]]]:
    return v

@udf
def id_map(v: Optional[dict[str, Optional[float]]]) -> Optional[dict[str, Optional[float]]]:
    return v

@udf
def id_point(v: Optional[Point]) -> Optional[Point]:
    return v

@udf
def plus_one(x: int) -> int:
    return x + 1

@udf
def vadd(a: pa.Int64Array, b: pa.Int64Array) -> pa.Int64Array:
    return pc.add(a, b)

@udf(name="shout")
def to_upper(s: pa.StringArray) -> pa.StringArray:
    return pc.utf8_upper(s)
"""

BEHAVIOUR_MODULE = """
import ctypes
import os
import time

from fletch import udf

calls = 0


@udf
def raises(x: int) -> int:
    if x == 3:
        raise ValueError("three is right out")
    return x


@udf
def returns_none(x: int) -> int:
    return None if x == 2 else x


@udf
def prints(x: int) -> int:
    print("printed from a UDF:", x)
    return x


@udf
def prints_a_lot(x: int) -> int:
    print("A" * 2_000_000)
    return x


@udf
def segfault(x: int) -> int:
    return ctypes.string_at(0)[0]


@udf
def exits(x: int) -> int:
    os._exit(3)


@udf
def sleeps(x: int) -> int:
    time.sleep(x)
    return x


@udf
def counter(x: int) -> int:
    global calls
    calls += 1
    return calls
"""

BROKEN_MODULE = """
import fletch_no_such_module_anywhere
"""


def write_modules(root: Path, modules: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    return root


@pytest.fixture(scope="module")
def udf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_modules(
        tmp_path_factory.mktemp("udfs"),
        {"types_mod": TYPES_MODULE, "behaviour": BEHAVIOUR_MODULE, "broken": BROKEN_MODULE},
    )


@pytest.fixture(scope="module")
def py_server(start_module_server: Callable[..., Server], udf_dir: Path) -> Server:
    return start_module_server("--udf-dir", str(udf_dir), "--workers", "2", "--call-timeout", "30s")


def call(server: Server, name: str, *columns: pa.Array) -> pa.Array:
    """One batch through name; returns the output column."""
    if columns:
        batch = pa.record_batch(list(columns), names=[f"c{i}" for i in range(len(columns))])
    else:
        batch = pa.RecordBatch.from_struct_array(pa.array([{}], pa.struct([])))
    (out,) = server.exchange(name, [batch])
    return out.column(0)


def first_error(server: Server, name: str, *columns: pa.Array) -> pa.ArrowException:
    with pytest.raises(pa.ArrowException) as info:
        call(server, name, *columns)
    return info.value


# --- discovery ----------------------------------------------------------------

EXPECTED_SIGNATURES = {
    "id_int": ("int64", "int64"),
    "id_float": ("float64", "float64"),
    "id_str": ("utf8", "utf8"),
    "id_bytes": ("binary", "binary"),
    "id_bool": ("bool", "bool"),
    "id_decimal": ("decimal128(38, 9)", "decimal128(38, 9)"),
    "id_date": ("date32", "date32"),
    "id_datetime": ("timestamp[us]", "timestamp[us]"),
    "id_time": ("time64[us]", "time64[us]"),
    "id_timedelta": ("duration[us]", "duration[us]"),
    "id_list": ("list<int64>", "list<int64>"),
    "id_map": ("map<utf8, float64>", "map<utf8, float64>"),
    "id_point": ("struct<x: int64 not null, y: utf8>", "struct<x: int64 not null, y: utf8>"),
    "plus_one": ("int64", "int64"),
    "vadd": ("int64", "int64"),
    "shout": ("utf8", "utf8"),
}


def test_python_udfs_are_listed(py_server: Server) -> None:
    import json

    with flight.FlightClient(py_server.location) as client:
        (result,) = client.do_action(flight.Action("list", b""))
        listed = {entry["name"]: entry for entry in json.loads(result.body.to_pybytes())}
    for name, (param, ret) in EXPECTED_SIGNATURES.items():
        entry = listed[name]
        assert entry["language"] == "python", entry
        assert entry["params"][0]["type"] == param, entry
        assert entry["return"]["type"] == ret, entry
        assert entry["version"], entry
    assert "to_upper" not in listed  # name= renames it
    assert listed["plus_one"]["params"][0]["nullable"] is False
    assert listed["id_int"]["params"][0]["nullable"] is True


def test_signature_schema(py_server: Server) -> None:
    with flight.FlightClient(py_server.location) as client:
        info = client.get_flight_info(flight.FlightDescriptor.for_path("vadd"))
    assert info.total_records == 2
    assert [f.type for f in info.schema] == [pa.int64(), pa.int64(), pa.int64()]


# --- values -------------------------------------------------------------------

D = decimal.Decimal
SAMPLES: dict[str, tuple[pa.DataType, list[Any]]] = {
    "id_int": (pa.int64(), [1, None, -(2**63), 2**63 - 1, 0]),
    "id_float": (pa.float64(), [1.5, None, -0.0, 1e308]),
    "id_str": (pa.utf8(), ["a", None, "", "ünïcödé ✓", "日本語"]),
    "id_bytes": (pa.binary(), [b"a", None, b"", b"\x00\xff"]),
    "id_bool": (pa.bool_(), [True, None, False]),
    "id_decimal": (pa.decimal128(38, 9), [D("1.5"), None, D("-12345678901234567890.123456789")]),
    "id_date": (pa.date32(), [datetime.date(2026, 11, 21), None, datetime.date(1, 1, 1)]),
    "id_datetime": (pa.timestamp("us"), [datetime.datetime(2026, 11, 21, 9, 30, 1, 5), None]),
    "id_time": (pa.time64("us"), [datetime.time(23, 59, 59, 999999), None]),
    "id_timedelta": (pa.duration("us"), [datetime.timedelta(days=-1, microseconds=3), None]),
    "id_list": (pa.list_(pa.int64()), [[1, None, 3], None, []]),
    "id_map": (pa.map_(pa.utf8(), pa.float64()), [[("a", 1.0), ("b", None)], None, []]),
    "id_point": (
        pa.struct([pa.field("x", pa.int64(), nullable=False), pa.field("y", pa.utf8())]),
        [{"x": 1, "y": "one"}, None, {"x": 2, "y": None}],
    ),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("rows", [0, 1, 1 << 20])
def test_identity_over_every_type(py_server: Server, name: str, rows: int) -> None:
    # 1 Mi rows are sliced across both workers; equality checks order too.
    arrow_type, values = SAMPLES[name]
    column = pa.array((values * (rows // len(values) + 1))[:rows], type=arrow_type)
    out = call(py_server, name, column)
    assert out.type == arrow_type
    assert out.equals(column), f"{name}: first difference at {first_difference(out, column)}"


def first_difference(a: pa.Array, b: pa.Array) -> int:
    return next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))


@pytest.mark.parametrize("rows", [0, 1, 1 << 20])
def test_vectorized_with_nulls(py_server: Server, rows: int) -> None:
    a = pa.array([None if i % 7 == 0 else i for i in range(rows)], pa.int64())
    b = pa.array(range(rows), pa.int64())
    expected = pa.array([None if i % 7 == 0 else 2 * i for i in range(rows)], pa.int64())
    assert call(py_server, "vadd", a, b).equals(expected)
    words = pa.array([None if i % 5 == 0 else f"wörd{i}" for i in range(rows)], pa.utf8())
    assert call(py_server, "shout", words).equals(pa.compute.utf8_upper(words))


def test_million_rows_keep_their_order_across_workers(py_server: Server) -> None:
    n = 1 << 20
    x = pa.array(range(n), pa.int64())
    out = call(py_server, "plus_one", x)
    assert out.to_pylist() == list(range(1, n + 1))
    total = call(py_server, "vadd", x, x)
    assert total.to_pylist() == [2 * i for i in range(n)]


def test_many_batches_in_order(py_server: Server) -> None:
    import random

    rng = random.Random(7)
    sizes = [rng.choice([0, 1, 17, 1000, 70_000]) for _ in range(30)]
    start, batches = 0, []
    for size in sizes:
        batches.append(pa.record_batch([pa.array(range(start, start + size), pa.int64())], names=["x"]))
        start += size
    outputs = py_server.exchange("plus_one", batches)
    got = [v for out in outputs for v in out.column(0).to_pylist()]
    assert got == list(range(1, start + 1))


def test_null_policy(py_server: Server) -> None:
    # plus_one's parameter is not Optional: nulls come back null, uncalled.
    assert call(py_server, "plus_one", pa.array([1, None, 3])).to_pylist() == [2, None, 4]
    assert call(py_server, "vadd", pa.array([1, None]), pa.array([1, 1])).to_pylist() == [2, None]
    assert call(py_server, "shout", pa.array(["ça", None])).to_pylist() == ["ÇA", None]


def test_lossless_input_casts(py_server: Server) -> None:
    assert call(py_server, "id_str", pa.array([None, None])).to_pylist() == [None, None]  # the null type
    assert call(py_server, "plus_one", pa.array([1, 2], pa.int32())).to_pylist() == [2, 3]
    assert call(py_server, "id_str", pa.array(["a"], pa.large_utf8())).to_pylist() == ["a"]
    assert call(py_server, "id_list", pa.array([[1]], pa.large_list(pa.int64()))).to_pylist() == [[1]]


# --- failures -----------------------------------------------------------------


def test_exception_carries_type_message_name_and_traceback(py_server: Server) -> None:
    err = first_error(py_server, "raises", pa.array([1, 2, 3, 4]))
    assert isinstance(err, flight.FlightServerError)  # gRPC UNKNOWN
    message = str(err)
    for part in ("raises", "row 2", "ValueError", "three is right out", "Traceback", "behaviour.py"):
        assert part in message, message
    py_server.assert_healthy()
    assert call(py_server, "raises", pa.array([1])).to_pylist() == [1]


def test_none_from_a_non_optional_return(py_server: Server) -> None:
    message = str(first_error(py_server, "returns_none", pa.array([1, 2, 3])))
    for part in ("returns_none", "row 1", "None"):
        assert part in message, message


@pytest.mark.parametrize(
    ("name", "death"),
    [("segfault", "segmentation fault"), ("exits", "exit status 3")],
)
def test_worker_death_is_one_clear_error(py_server: Server, name: str, death: str) -> None:
    message = str(first_error(py_server, name, pa.array([1])))
    assert "worker" in message, message
    assert death in message, message
    if name == "segfault":
        assert "Fatal Python error: Segmentation fault" in message, message
    # The worker is replaced and the server keeps serving Python UDFs.
    assert call(py_server, "plus_one", pa.array([41])).to_pylist() == [42]
    py_server.assert_healthy()


def worker_pids(server: Server) -> list[int]:
    pids = []
    for task in Path(f"/proc/{server.process.pid}/task").iterdir():
        children = (task / "children").read_text().split()
        pids.extend(int(p) for p in children)
    return pids


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def call_or_abort(server: Server) -> list[Any] | None:
    """plus_one(1), or None if the call went to a worker that was killed (ABORTED, "worker crashed")."""
    try:
        result: list[Any] = call(server, "plus_one", pa.array([1])).to_pylist()
    except flight.FlightInternalError as exc:
        if "worker crashed" not in str(exc):
            raise
        return None
    return result


def test_kill_9_mid_exchange(py_server: Server) -> None:
    errors: list[BaseException] = []

    def slow_call() -> None:
        try:
            call(py_server, "sleeps", pa.array([30]))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=slow_call)
    thread.start()
    # Kill every worker until the call ends: once it runs on one, that one dies mid-call. (A kill that comes
    # before the call reaches a worker only makes it wait for a replacement.)
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while thread.is_alive() and time.monotonic() < deadline:
        for pid in worker_pids(py_server):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        thread.join(0.5)
    thread.join(CALL_TIMEOUT_S)
    assert not thread.is_alive()
    assert len(errors) == 1, errors
    message = str(errors[0])
    assert "worker" in message, message
    assert "killed" in message, message
    # Workers killed in the loop's last round may still take a call before their replacements are up: those
    # calls fail ABORTED, as they should; the server soon serves again.
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while (answer := call_or_abort(py_server)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert answer == [2]


def test_a_huge_print_is_logged_cut_and_the_worker_serves_on(py_server: Server) -> None:
    for _ in range(3):  # the same worker, whichever it is, keeps working
        assert call(py_server, "prints_a_lot", pa.array([7])).to_pylist() == [7]
    assert call(py_server, "plus_one", pa.array([1])).to_pylist() == [2]
    assert "bytes more" in py_server.stderr_text()


def test_prints_are_relogged_with_the_function(py_server: Server) -> None:
    call(py_server, "prints", pa.array([12345]))
    log = py_server.stderr_text()
    line = next((ln for ln in log.splitlines() if "printed from a UDF: 12345" in ln), None)
    assert line is not None, log[-2000:]
    assert "function=prints" in line, line


def test_state_lives_in_the_worker(start_server: Callable[..., Server], udf_dir: Path) -> None:
    server = start_server("--udf-dir", str(udf_dir), "--workers", "1")
    first = call(server, "counter", pa.array([0, 0, 0])).to_pylist()
    second = call(server, "counter", pa.array([0, 0])).to_pylist()
    assert first == [1, 2, 3]
    assert second == [4, 5]


# --- module loading and interpreters -----------------------------------------


def test_import_error_is_reported_and_others_load(py_server: Server) -> None:
    log = py_server.stderr_text()
    assert "module failed to import" in log, log[-3000:]
    assert "broken.py" in log
    assert "fletch_no_such_module_anywhere" in log
    assert "Traceback" in log
    with flight.FlightClient(py_server.location) as client:
        names = {info.descriptor.path[0].decode() for info in client.list_flights()}
    assert {"plus_one", "raises", "add_int64"} <= names


def run_fletch(fletch_bin: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(fletch_bin), "serve", "--listen", f"127.0.0.1:{free_port()}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_strict_refuses_to_start(fletch_bin: Path, udf_dir: Path) -> None:
    result = run_fletch(fletch_bin, "--udf-dir", str(udf_dir), "--strict")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "--strict" in result.stderr
    assert "broken.py" in result.stderr
    assert "fletch_no_such_module_anywhere" in result.stderr


def test_decorator_errors_name_the_function(fletch_bin: Path, tmp_path: Path) -> None:
    bad = write_modules(
        tmp_path / "bad",
        {"bad": "from fletch import udf\n\n@udf\ndef needs_types(x):\n    return x\n"},
    )
    result = run_fletch(fletch_bin, "--udf-dir", str(bad), "--strict")
    assert result.returncode == 1
    assert "udf needs_types: parameter x has no type annotation" in result.stderr, result.stderr[-2000:]


def test_external_python_venv(start_server: Callable[..., Server], udf_dir: Path) -> None:
    # The test venv itself is a venv with pyarrow: serve the UDFs with it.
    server = start_server("--udf-dir", str(udf_dir), "--python", sys.prefix, "--workers", "1")
    assert call(server, "plus_one", pa.array([1, None])).to_pylist() == [2, None]
    assert call(server, "vadd", pa.array([1]), pa.array([2])).to_pylist() == [3]
    assert sys.prefix in server.stderr_text()


def test_unusable_python_is_refused(fletch_bin: Path, udf_dir: Path, tmp_path: Path) -> None:
    result = run_fletch(fletch_bin, "--udf-dir", str(udf_dir), "--python", str(tmp_path / "no-such-python"))
    assert result.returncode == 1
    assert "no-such-python" in result.stderr
    assert "unusable Python interpreter" in result.stderr


def test_two_servers_extract_into_one_fresh_state_dir(
    start_server: Callable[..., Server], udf_dir: Path, tmp_path: Path
) -> None:
    # Both start at once on an empty state directory: one extracts while the
    # other waits its turn, and both serve.
    state = tmp_path / "state"
    results: list[Server] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            args = ("--udf-dir", str(udf_dir), "--workers", "1", "--state-dir", str(state))
            results.append(start_server(*args))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for server in results:
        assert call(server, "plus_one", pa.array([1])).to_pylist() == [2]
    assert len([p for p in state.iterdir() if p.is_dir() and p.name.startswith("python-")]) == 1
