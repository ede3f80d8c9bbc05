"""Databend's own UDF client, databend-udf's UDFClient (pinned in requirements-test.txt), against fletch: the
health check, echo and function listing its users run first, and calls with nulls to Go and Python UDFs."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from databend_udf.client import UDFClient

Server = Any

MODULE = """
from fletch import udf


@udf
def gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


@udf
def greet(name: str | None) -> str:
    return f"hello {name or 'stranger'}"
"""


@pytest.fixture(scope="module")
def client(
    start_module_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UDFClient]:
    root: Path = tmp_path_factory.mktemp("databend")
    (root / "databend_udfs.py").write_text(textwrap.dedent(MODULE))
    server = start_module_server("--udf-dir", str(root), "--workers", "1")
    host, port = server.location.removeprefix("grpc://").rsplit(":", 1)
    c = UDFClient(host, int(port))
    yield c
    c.client.close()


def test_health_check_echo_and_list(client: UDFClient) -> None:
    assert client.health_check() is True
    assert client.echo("ping") == "ping"
    assert sorted(client.list_functions()) == ["builtin_echo", "builtin_healthy"]


def test_go_udf_with_nulls(client: UDFClient) -> None:
    assert client.call_function("add_int64", 1, 2) == [3]
    assert client.call_function("add_int64", None, 2) == [None]
    assert client.call_function_batch("add_int64", a=[1, None, 3], b=[10, 20, None]) == [11, None, None]
    assert client.call_function("pi")[0] == pytest.approx(3.14159265)


def test_python_udf_with_nulls(client: UDFClient) -> None:
    assert client.call_function_batch("gcd", a=[12, None, 9], b=[18, 4, None]) == [6, None, None]
    assert client.call_function_batch("greet", name=["ann", None]) == ["hello ann", "hello stranger"]


def test_the_schema_databend_checks_is_nullable(client: UDFClient) -> None:
    # Databend compares it with CREATE FUNCTION gcd(BIGINT, BIGINT) RETURNS BIGINT, whose fields are nullable.
    schema = client.get_function_info("gcd").schema
    assert [f.nullable for f in schema] == [True, True, True]
    assert schema.metadata[b"x-databend-udf-input-count"] == b"2"
