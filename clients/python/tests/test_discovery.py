"""Discovery: ListFlights, GetFlightInfo, GetSchema and the actions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

INPUT_COUNT_KEY = b"x-databend-udf-input-count"

# name -> (params as (name, canonical type, nullable), canonical return type)
BUILTINS: dict[str, tuple[list[tuple[str, str, bool]], str]] = {
    "add_int64": ([("a", "int64", False), ("b", "int64", False)], "int64"),
    "builtin_echo": ([("s", "large_utf8", True)], "large_utf8"),
    "builtin_healthy": ([], "int32"),
    "coalesce_int64": ([("a", "int64", True), ("b", "int64", True)], "int64"),
    "div_int64": ([("a", "int64", False), ("b", "int64", False)], "int64"),
    # echo_* and multiply_float64 are vectorized kernels that handle nulls
    # themselves, so their parameters are declared nullable.
    "echo_int64": ([("x", "int64", True)], "int64"),
    "echo_utf8": ([("s", "utf8", True)], "utf8"),
    "multiply_float64": ([("a", "float64", True), ("b", "float64", True)], "float64"),
    "pi": ([], "float64"),
    "upper": ([("s", "utf8", False)], "utf8"),
}

ARROW_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "int32": pa.int32(),
    "utf8": pa.string(),
    "large_utf8": pa.large_string(),
    "float64": pa.float64(),
}

UDF_KEYS = {"name", "kind", "language", "params", "return", "doc", "volatility", "on_error", "version"}


def expected_schema(name: str) -> pa.Schema:
    """Input fields named after the parameters, then the output named after the function."""
    params, ret = BUILTINS[name]
    fields = [pa.field(p, ARROW_TYPES[t]) for p, t, _ in params]
    fields.append(pa.field(name, ARROW_TYPES[ret]))
    return pa.schema(fields, metadata={INPUT_COUNT_KEY: str(len(params)).encode()})


def check_udf_json(name: str, meta: dict[str, Any]) -> None:
    """meta is the JSON description of built-in name."""
    params, ret = BUILTINS[name]
    assert set(meta) == UDF_KEYS, meta
    assert meta["name"] == name
    assert meta["kind"] == "scalar"
    assert meta["language"] == "go"
    assert meta["params"] == [{"name": p, "type": t, "nullable": n} for p, t, n in params]
    assert meta["return"] == {"name": name, "type": ret, "nullable": True}
    assert isinstance(meta["doc"], str)
    assert meta["doc"]
    assert isinstance(meta["volatility"], str)
    assert meta["volatility"]
    assert meta["on_error"] == "raise"
    assert isinstance(meta["version"], str)
    assert meta["version"]


def action_results(client: flight.FlightClient, action: str) -> list[bytes]:
    return [r.body.to_pybytes() for r in client.do_action(action)]


def test_list_flights_has_one_flight_per_builtin(client: flight.FlightClient) -> None:
    infos = list(client.list_flights())
    names = [info.descriptor.path[0].decode() for info in infos]
    assert sorted(names) == sorted(BUILTINS)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_list_flights_entry(client: flight.FlightClient, name: str) -> None:
    (info,) = [i for i in client.list_flights() if i.descriptor.path == [name.encode()]]
    assert info.schema.equals(expected_schema(name), check_metadata=True), info.schema
    assert info.total_records == len(BUILTINS[name][0])
    assert info.descriptor.descriptor_type == flight.DescriptorType.PATH
    assert info.endpoints == []
    check_udf_json(name, json.loads(info.app_metadata))


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_get_flight_info(client: flight.FlightClient, name: str) -> None:
    info = client.get_flight_info(flight.FlightDescriptor.for_path(name))
    assert info.schema.equals(expected_schema(name), check_metadata=True), info.schema
    assert info.schema.metadata[INPUT_COUNT_KEY] == str(len(BUILTINS[name][0])).encode()
    assert info.total_records == len(BUILTINS[name][0])
    assert info.descriptor == flight.FlightDescriptor.for_path(name)
    assert info.descriptor.descriptor_type == flight.DescriptorType.PATH
    assert info.descriptor.path == [name.encode()]
    assert info.endpoints == []
    check_udf_json(name, json.loads(info.app_metadata))


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_get_schema(client: flight.FlightClient, name: str) -> None:
    result = client.get_schema(flight.FlightDescriptor.for_path(name))
    assert result.schema.equals(expected_schema(name), check_metadata=True), result.schema


def test_descriptions_agree(client: flight.FlightClient) -> None:
    """ListFlights, GetFlightInfo and the list action describe each UDF identically."""
    listed = {i.descriptor.path[0].decode(): json.loads(i.app_metadata) for i in client.list_flights()}
    (body,) = action_results(client, "list")
    from_action = {m["name"]: m for m in json.loads(body)}
    for name in BUILTINS:
        info = client.get_flight_info(flight.FlightDescriptor.for_path(name))
        assert json.loads(info.app_metadata) == listed[name] == from_action[name]


def test_list_action(client: flight.FlightClient) -> None:
    (body,) = action_results(client, "list")
    entries = json.loads(body)
    assert isinstance(entries, list)
    assert [e["name"] for e in entries] == sorted(BUILTINS)
    for entry in entries:
        check_udf_json(entry["name"], entry)


def test_protocol_version_action(client: flight.FlightClient) -> None:
    assert action_results(client, "protocol_version") == [b"\x02"]


def test_list_actions(client: flight.FlightClient) -> None:
    actions = {a.type: a.description for a in client.list_actions()}
    assert set(actions) == {"protocol_version", "list"}
    for description in actions.values():
        assert description


@pytest.mark.parametrize("action", ["nope", "List", "protocol-version", ""])
def test_unknown_action_is_unimplemented(client: flight.FlightClient, action: str) -> None:
    # UNIMPLEMENTED surfaces in pyarrow as ArrowNotImplementedError.
    with pytest.raises(pa.ArrowNotImplementedError, match="unimplemented") as info:
        action_results(client, action)
    assert f'unknown action "{action}"' in str(info.value)
    assert action_results(client, "protocol_version") == [b"\x02"]


def get_info(client: flight.FlightClient, d: flight.FlightDescriptor) -> object:
    return client.get_flight_info(d)


def get_schema(client: flight.FlightClient, d: flight.FlightDescriptor) -> object:
    return client.get_schema(d)


LOOKUPS: dict[str, Callable[[flight.FlightClient, flight.FlightDescriptor], object]] = {
    "get_flight_info": get_info,
    "get_schema": get_schema,
}


@pytest.mark.parametrize("call", sorted(LOOKUPS))
@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("ad_int64", "add_int64"),
        ("ADD_INT64", "add_int64"),
        ("uper", "upper"),
        ("echo_utf9", "echo_utf8"),
        ("multiply_float", "multiply_float64"),
    ],
)
def test_unknown_function_not_found_with_suggestion(
    client: flight.FlightClient, call: str, name: str, suggestion: str
) -> None:
    # NOT_FOUND surfaces in pyarrow as ArrowKeyError.
    with pytest.raises(pa.ArrowKeyError) as info:
        LOOKUPS[call](client, flight.FlightDescriptor.for_path(name))
    message = str(info.value)
    assert f'function "{name}" not found' in message
    assert "did you mean" in message
    assert f'"{suggestion}"' in message.split("did you mean", 1)[1]


@pytest.mark.parametrize("call", sorted(LOOKUPS))
@pytest.mark.parametrize(
    ("descriptor", "problem"),
    [
        (flight.FlightDescriptor.for_path("add_int64", "extra"), "2 elements"),
        (flight.FlightDescriptor.for_path(), "0 elements"),
        (flight.FlightDescriptor.for_command(b"add_int64"), "CMD"),
    ],
    ids=["path-2", "path-0", "cmd"],
)
def test_bad_descriptor_is_invalid_argument(
    client: flight.FlightClient, call: str, descriptor: flight.FlightDescriptor, problem: str
) -> None:
    with pytest.raises(pa.ArrowInvalid, match="invalid argument") as info:
        LOOKUPS[call](client, descriptor)
    assert problem in str(info.value)
    assert client.get_schema(flight.FlightDescriptor.for_path("pi")).schema.names == ["pi"]


def test_no_builtins(start_server: Callable[..., Any]) -> None:
    srv = start_server("--no-builtins")
    with srv.client() as c:
        assert list(c.list_flights()) == []
        assert json.loads(action_results(c, "list")[0]) == []
        assert action_results(c, "protocol_version") == [b"\x02"]
        with pytest.raises(pa.ArrowKeyError, match='function "add_int64" not found'):
            c.get_flight_info(flight.FlightDescriptor.for_path("add_int64"))
