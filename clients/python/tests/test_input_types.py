"""Input types engines send, into parameters declared with another member of the same family (docs/types.md):
each reaches Go and Python UDFs converted, with its values and nulls intact."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

Server = Any

MODULE = """
from fletch import udf


@udf(input_types=["utf8_view"], result_type="utf8_view")
def view_echo(s):
    return s


@udf(input_types=["binary_view"], result_type="binary_view")
def binary_view_echo(b):
    return b


@udf
def py_echo(s: str | None) -> str | None:
    return s
"""


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory) -> Server:
    root: Path = tmp_path_factory.mktemp("input_types")
    (root / "input_types.py").write_text(textwrap.dedent(MODULE))
    return start_module_server("--udf-dir", str(root), "--workers", "1")


STRINGS = ["a", None, "", "a string longer than twelve bytes", "ünïcödé"]


@pytest.mark.parametrize("sent", [pa.utf8(), pa.large_utf8(), pa.string_view()], ids=str)
@pytest.mark.parametrize("name", ["view_echo", "py_echo", "echo_utf8"])
def test_string_family(server: Server, name: str, sent: pa.DataType) -> None:
    batch = pa.record_batch([pa.array(STRINGS, sent)], names=["s"])
    (out,) = server.exchange(name, [batch])
    assert out.column(0).to_pylist() == STRINGS


@pytest.mark.parametrize("sent", [pa.binary(), pa.large_binary(), pa.binary_view()], ids=str)
def test_binary_family(server: Server, sent: pa.DataType) -> None:
    values = [b"a", None, b"", b"\x00\xff" * 10]
    batch = pa.record_batch([pa.array(values, sent)], names=["b"])
    (out,) = server.exchange("binary_view_echo", [batch])
    assert out.column(0).to_pylist() == values
