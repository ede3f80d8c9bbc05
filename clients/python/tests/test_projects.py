"""Projects, environments and live registration through the real fletch binary.

Modules here are written at test time, outside the repository: package directories, zips with a settings file,
a venv holding a package the embedded Python lacks, and modules registered and reloaded over DoAction.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

Server = Any


def ints(values: list[int], name: str = "x") -> pa.RecordBatch:
    return pa.record_batch([pa.array(values, pa.int64())], names=[name])


def call(server: Server, name: str, batch: pa.RecordBatch) -> list[Any]:
    (out,) = server.exchange(name, [batch])
    return list(out.column(0).to_pylist())


def action(server: Server, kind: str, body: dict[str, Any] | None = None) -> Any:
    payload = json.dumps(body).encode() if body is not None else b""
    with flight.FlightClient(server.location) as client:
        (result,) = client.do_action(flight.Action(kind, payload))
    return json.loads(result.body.to_pybytes())


def names(server: Server) -> set[str]:
    with flight.FlightClient(server.location) as client:
        return {info.descriptor.path[0].decode() for info in client.list_flights()}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def zip_bytes(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, textwrap.dedent(text))
    return buffer.getvalue()


PID_UDF = """
import os

import pyarrow as pa

from fletch import udf


@udf
def {name}(x: pa.Int64Array) -> pa.Int64Array:
    return pa.array([os.getpid()] * len(x), pa.int64())
"""


# --- projects and environments -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("projects")
    # A plain module, in the default environment.
    write(root / "plain.py", PID_UDF.format(name="plain_pid"))
    # A package directory: its UDFs come from a submodule.
    write(root / "shapes" / "__init__.py", "from shapes.area import area\n")
    write(
        root / "shapes" / "area.py",
        """
        from fletch import udf


        @udf
        def area(w: float, h: float) -> float:
            return w * h
        """,
    )
    # A zip with settings inside: env vars, one worker, small batches.
    (root / "greeter.zip").write_bytes(
        zip_bytes(
            {
                "fletch.toml": """
                    workers = 1
                    max_batch_rows = 100
                    [env]
                    GREETING = "hello from the zip's settings"
                """,
                "greeter.py": textwrap.dedent(
                    """
                    import os

                    import pyarrow as pa

                    from fletch import udf
                    from greeter_helpers import shout


                    @udf
                    def greeting(x: int) -> str:
                        return shout(os.environ["GREETING"])


                    @udf
                    def slice_rows(x: pa.Int64Array) -> pa.Int64Array:
                        return pa.array([len(x)] * len(x), pa.int64())
                    """
                )
                + PID_UDF.format(name="zip_pid"),
                "greeter_helpers.py": """
                    def shout(text: str) -> str:
                        return text.upper()
                """,
            }
        )
    )
    return root


@pytest.fixture(scope="module")
def projects(start_module_server: Callable[..., Server], project_dir: Path) -> Server:
    return start_module_server("--udf-dir", str(project_dir), "--workers", "2")


def test_package_directory(projects: Server) -> None:
    assert call(projects, "area", pa.record_batch([pa.array([2.0]), pa.array([3.5])], names=["w", "h"])) == [
        7.0
    ]


def test_zip_project_reads_an_env_var_from_its_settings(projects: Server) -> None:
    assert call(projects, "greeting", ints([1, 2])) == ["HELLO FROM THE ZIP'S SETTINGS"] * 2


def test_each_environment_has_its_own_pool(projects: Server) -> None:
    big = ints(list(range(5000)))
    zip_pids = set(call(projects, "zip_pid", big))
    plain_pids = set(call(projects, "plain_pid", big))
    assert len(zip_pids) == 1  # workers = 1 in the zip's settings
    assert zip_pids.isdisjoint(plain_pids)


def test_max_batch_rows_per_project(projects: Server) -> None:
    assert set(call(projects, "slice_rows", ints(list(range(250))))) == {100, 50}


def test_modules_are_listed_with_their_module(projects: Server) -> None:
    with flight.FlightClient(projects.location) as client:
        (result,) = client.do_action(flight.Action("list", b""))
    listed = {e["name"]: e for e in json.loads(result.body.to_pybytes())}
    assert (listed["area"]["module"], listed["greeting"]["module"], listed["plain_pid"]["module"]) == (
        "shapes",
        "greeter",
        "plain",
    )
    assert listed["slice_rows"]["max_batch_rows"] == 100
    assert "max_batch_rows" not in listed["area"]


def test_a_bad_settings_file_stops_the_server(fletch_bin: Path, tmp_path: Path) -> None:
    write(tmp_path / "m.py", PID_UDF.format(name="m"))
    write(tmp_path / "m.fletch.toml", "wokers = 2\n")
    result = subprocess.run(
        [str(fletch_bin), "serve", "--listen", "127.0.0.1:0", "--udf-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "m.fletch.toml" in result.stderr
    assert "wokers" in result.stderr


EXTRA_PACKAGE = "fletch_test_extra_pkg"


@pytest.fixture(scope="module")
def venv_with_extra_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv that has pyarrow (from the test venv, through a .pth file) and a package nothing else has."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = (venv / "lib").glob("python3*/site-packages")
    (site / "test_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    write(site / EXTRA_PACKAGE / "__init__.py", "def triple(x: int) -> int:\n    return 3 * x\n")
    return venv


def test_venv_with_a_package_the_embedded_python_lacks(
    start_server: Callable[..., Server], tmp_path: Path, venv_with_extra_package: Path
) -> None:
    write(
        tmp_path / "uses_extra" / "__init__.py",
        f"""
        from fletch import udf
        from {EXTRA_PACKAGE} import triple as _triple


        @udf
        def triple(x: int) -> int:
            return _triple(x)
        """,
    )
    write(tmp_path / "uses_extra" / "fletch.toml", f'python = "{venv_with_extra_package}"\n')
    write(
        tmp_path / "embedded.py",
        f"""
        from fletch import udf


        @udf
        def has_extra(x: int) -> bool:
            try:
                import {EXTRA_PACKAGE}  # noqa: F401
            except ImportError:
                return False
            return True
        """,
    )
    server = start_server("--udf-dir", str(tmp_path), "--workers", "1")
    assert call(server, "triple", ints([1, 2])) == [3, 6]
    assert call(server, "has_extra", ints([1])) == [False]  # the embedded Python does not see it
    assert str(venv_with_extra_package) in server.stderr_text()


# --- live registration ------------------------------------------------------------------------------------


VERSIONED = """
import time

import pyarrow as pa

from fletch import udaf, udf

VERSION = {version}


@udf
def version_of(x: int) -> int:
    time.sleep(0.001)
    return VERSION


@udaf
class version_sum:
    def __init__(self) -> None:
        self.total = 0

    def accumulate(self, x: int) -> None:
        self.total += VERSION

    def finish(self) -> int:
        return self.total
"""


@pytest.fixture
def live(start_server: Callable[..., Server], tmp_path: Path) -> Server:
    write(tmp_path / "udfs" / "versioned.py", VERSIONED.format(version=1))
    return start_server("--udf-dir", str(tmp_path / "udfs"), "--workers", "2", "--live-registration")


def test_registration_is_off_by_default(server: Server) -> None:
    with pytest.raises(flight.FlightUnauthorizedError, match="start it with --live-registration"):
        action(server, "register", {"module": "m", "source": "x = 1"})
    with flight.FlightClient(server.location) as client:
        types = {a.type for a in client.list_actions()}
    assert "register" not in types


def test_register_call_replace_unregister(live: Server) -> None:
    registered = action(live, "register", {"module": "added", "source": PID_UDF.format(name="added_pid")})
    assert [(f["name"], f["module"]) for f in registered] == [("added_pid", "added")]
    first_version = registered[0]["version"]
    assert len(set(call(live, "added_pid", ints([1, 2, 3])))) >= 1

    source = "from fletch import udf\n\n@udf\ndef added_pid(x: int) -> int:\n    return -x\n"
    (again,) = action(live, "register", {"module": "added", "source": source})
    assert again["version"] != first_version
    assert call(live, "added_pid", ints([1, 2])) == [-1, -2]

    assert action(live, "unregister", {"module": "added"}) == []
    assert "added_pid" not in names(live)
    with pytest.raises(pa.ArrowKeyError):
        call(live, "added_pid", ints([1]))
    live.assert_healthy()


def test_register_a_zip(live: Server) -> None:
    archive = zip_bytes(
        {
            "zipped.py": "from fletch import udf\nfrom zipped_dep import K\n\n"
            "@udf\ndef zipped(x: int) -> int:\n    return x + K\n",
            "zipped_dep.py": "K = 100\n",
        }
    )
    registered = action(live, "register", {"module": "zipped", "zip": base64.b64encode(archive).decode()})
    assert [f["name"] for f in registered] == ["zipped"]
    assert call(live, "zipped", ints([1])) == [101]


@pytest.mark.parametrize(
    ("kind", "body", "error", "message"),
    [
        ("register", {"module": "bad", "source": "def broken(:\n"}, pa.ArrowInvalid, "SyntaxError"),
        (
            "register",
            {"module": "bad", "source": "import no_such_module_xyz\n"},
            pa.ArrowInvalid,
            "no_such_module_xyz",
        ),
        ("register", {"module": "versioned", "source": "x = 1\n"}, pa.ArrowException, "already exists"),
        (
            "register",
            {"module": "../evil", "source": "x = 1\n"},
            pa.ArrowInvalid,
            "must be a Python identifier",
        ),
        ("register", {"module": "m"}, pa.ArrowInvalid, "give exactly one of source and zip"),
        ("register", {"module": "m", "source": "x", "extra": 1}, pa.ArrowInvalid, 'unknown field "extra"'),
        ("unregister", {"module": "versioned"}, pa.ArrowInvalid, "remove it there"),
        ("unregister", {"module": "nothing"}, pa.ArrowKeyError, "module not found"),
        ("reload", {"module": "nothing"}, pa.ArrowKeyError, "module not found"),
    ],
)
def test_admin_errors(
    live: Server, kind: str, body: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        action(live, kind, body)
    # Nothing changed: the directory's module still serves its first version.
    assert call(live, "version_of", ints([1])) == [1]
    assert "bad" not in {n for n in names(live) if n == "bad"}


def test_a_failed_registration_keeps_the_previous_version(live: Server) -> None:
    action(live, "register", {"module": "kept", "source": PID_UDF.format(name="kept_pid")})
    with pytest.raises(pa.ArrowInvalid, match="ZeroDivisionError"):
        action(live, "register", {"module": "kept", "source": "x = 1 / 0\n"})
    assert "kept_pid" in names(live)
    call(live, "kept_pid", ints([1]))


def exchange_slowly(
    server: Server, name: str, batches: int, results: list[Any], errors: list[BaseException]
) -> None:
    """Lock-step batches with pauses, so the exchange spans a reload."""
    try:
        with server.open_exchange(name, ints([0]).schema) as (writer, reader):
            for _ in range(batches):
                chunk = server.write_and_read(writer, reader, ints([1, 2, 3]))
                results.extend(chunk.data.column(0).to_pylist())
                time.sleep(0.05)
            server.finish_exchange(writer, reader)
    except BaseException as err:  # reported by the test
        errors.append(err)


def test_reload_during_ten_running_exchanges_fails_none(live: Server, tmp_path: Path) -> None:
    results: list[list[Any]] = [[] for _ in range(10)]
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=exchange_slowly, args=(live, "version_of", 40, results[i], errors))
        for i in range(10)
    ]
    for t in threads:
        t.start()
    time.sleep(0.5)  # every exchange is under way
    write(tmp_path / "udfs" / "versioned.py", VERSIONED.format(version=2))
    reloaded = action(live, "reload", {"module": "versioned"})
    assert {f["name"] for f in reloaded} == {"version_of", "version_sum"}
    for t in threads:
        t.join()
    assert errors == []
    # Each exchange kept the version it started with, for every row.
    assert all(r == [1] * 120 for r in results), [set(r) for r in results]
    # New exchanges get the new version.
    assert call(live, "version_of", ints([1])) == [2]


def test_a_stateful_exchange_keeps_its_worker_across_a_reload(live: Server, tmp_path: Path) -> None:
    with live.open_exchange("version_sum", ints([0]).schema) as (writer, reader):
        writer.write_batch(ints([1, 1]))
        write(tmp_path / "udfs" / "versioned.py", VERSIONED.format(version=5))
        action(live, "reload", {})
        writer.write_batch(ints([1]))
        writer.done_writing()
        (chunk,) = list(reader)
    assert chunk.data.column(0).to_pylist() == [3]  # three rows of version 1
    assert call(live, "version_of", ints([1])) == [5]


def test_watch_reloads_changed_files(start_server: Callable[..., Server], tmp_path: Path) -> None:
    udfs = tmp_path / "udfs"
    write(udfs / "versioned.py", VERSIONED.format(version=1))
    server = start_server("--udf-dir", str(udfs), "--workers", "1", "--watch", "--watch-interval", "100ms")
    assert call(server, "version_of", ints([1])) == [1]

    write(udfs / "versioned.py", VERSIONED.format(version=7))
    write(udfs / "another.py", PID_UDF.format(name="another_pid"))
    wait_until(lambda: call(server, "version_of", ints([1])) == [7] and "another_pid" in names(server))

    (udfs / "another.py").unlink()
    wait_until(lambda: "another_pid" not in names(server))

    # A module that fails to import leaves the rest serving.
    write(udfs / "broken.py", "import no_such_module_xyz\n")
    wait_until(lambda: "no_such_module_xyz" in server.stderr_text())
    assert call(server, "version_of", ints([1])) == [7]


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {timeout} s")
        time.sleep(0.1)


def test_a_module_named_like_an_imported_module_is_refused(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    write(tmp_path / "os.py", PID_UDF.format(name="os_pid"))
    write(tmp_path / "fine.py", PID_UDF.format(name="fine_pid"))
    server = start_server("--udf-dir", str(tmp_path), "--workers", "1")
    assert "the module name 'os' is taken" in server.stderr_text()
    assert "fine_pid" in names(server)
    assert "os_pid" not in names(server)
