"""fletch.Client with the other kinds and policies of examples/udfs/kinds.py: table functions, aggregates,
transforms, exchange options and on_error="error_column"."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import fletch
import fletch.testing

Server = Any

KINDS = Path(__file__).resolve().parents[4] / "examples" / "udfs" / "kinds.py"


@pytest.fixture(scope="module")
def kinds_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kinds")
    shutil.copy(KINDS, root / "kinds.py")
    return root


@pytest.fixture(scope="module")
def kc(start_module_server: Callable[..., Server], kinds_dir: Path) -> Iterator[fletch.Client]:
    server = start_module_server("--udf-dir", str(kinds_dir), "--workers", "2")
    with fletch.Client(server.location, timeout=60) as client:
        yield client


def test_kinds_are_described(kc: fletch.Client) -> None:
    kinds = {i.name: i.kind for i in kc.list()}
    assert kinds["tokens"] == "table"
    assert kinds["average"] == "aggregate"
    assert kinds["running_average"] == "transform"
    assert kinds["parse_int"] == "scalar"


def test_table_function(kc: fletch.Client) -> None:
    out = kc.call("tokens", ["a b", "", "c"])
    assert isinstance(out, pa.Table)
    assert out.to_pydict() == {"row": [0, 0, 2], "token": ["a", "b", "c"], "position": [0, 1, 0]}
    # The last batch yields nothing: the writer thread half-closes after its grace period.
    out = kc.call("tokens", pa.table({"text": ["x y", ""]}), batch_size=1)
    assert out.column("token").to_pylist() == ["x", "y"]
    streamed = list(
        kc.call_stream("tokens", [pa.record_batch({"t": ["p q r"]}), pa.record_batch({"t": ["s"]})])
    )
    assert sum(b.num_rows for b in streamed) == 4


def test_aggregate_and_options(kc: fletch.Client) -> None:
    out = kc.call("average", pa.table({"x": [1.0, 2.0, 3.0, 4.0]}), batch_size=2)
    assert out.column("average").to_pylist() == [2.5]
    running = kc.call(
        "average", pa.table({"x": [1.0, 2.0, 3.0, 4.0]}), batch_size=2, options={"running": True}
    )
    assert running.column("average").to_pylist() == [1.5, 2.5, 2.5]
    assert kc.call("average", pa.table({"x": pa.array([], pa.float64())})).num_rows == 1


def test_transform(kc: fletch.Client) -> None:
    out = kc.call("running_average", pa.table({"x": [1.0, 3.0, 5.0]}), batch_size=1)
    assert out.column("average").to_pylist() == [1.0, 2.0, 3.0]


def test_error_column(kc: fletch.Client, kinds_dir: Path) -> None:
    table = kc.call("parse_int", pa.table({"text": ["1", "x", "3"]}))
    assert table.schema.names == ["parse_int", "error"]
    assert table.column("parse_int").to_pylist() == [1, None, 3]
    assert table.column("error").to_pylist()[1].startswith("ValueError: invalid literal")
    assert kc.call("parse_int", ["1", "x"]).to_pylist() == [1, None]
    # fletch.testing applies the same policy.
    local = fletch.testing.load(kinds_dir / "kinds.py")
    assert local.call("parse_int", pa.table({"text": ["1", "x", "3"]})).equals(table)
    # And calls the other kinds as the server does.
    assert local.call("tokens", ["a b", "", "c"]).equals(kc.call("tokens", ["a b", "", "c"]))
    running = {"running": True}
    assert local.call("average", [1.0, 2.0], options=running).equals(
        kc.call("average", [1.0, 2.0], options=running)
    )


@pytest.mark.parametrize("name", ["tokens", "average", "running_average", "parse_int"])
def test_refused_options_do_not_crash(kc: fletch.Client, name: str) -> None:
    """The server refuses the call at once while the writer may be half-closing: no double WritesDone.

    Before the reading thread took over the half-close, this aborted the process within a few hundred calls.
    """
    baseline = set(threading.enumerate())
    columns: tuple[Any, ...] = (["a b"],) if name in ("tokens", "parse_int") else ([1.0, 2.0],)
    for _ in range(300):
        with pytest.raises(fletch.SignatureMismatch, match="invalid exchange options"):
            kc.call(name, *columns, options={"no_such_option": 1})
    assert set(threading.enumerate()) == baseline
