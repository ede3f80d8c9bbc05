"""UdfInfo and ParamInfo: what a server (or fletch.testing) says about a UDF."""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from fletch._errors import ServerError
from fletch._types import parse_type_text, type_text

__all__ = ["ParamInfo", "UdfInfo", "describe_text"]


def describe_text(t: pa.DataType) -> str:
    """t's canonical type text, or pyarrow's spelling for types fletch does not write."""
    try:
        return type_text(t)
    except (TypeError, ValueError):
        return str(t)


@dataclass(frozen=True)
class ParamInfo:
    """One parameter (or the result) of a UDF.

    Attributes:
        name: the parameter's name (the result is named after the UDF).
        type: its Arrow type.
        type_text: the canonical type text the server reported (``"int64"``, ``"list<utf8 not null>"``).
        nullable: for a parameter, whether the UDF receives nulls (a null in a non-nullable parameter gives a
            null result without calling the UDF); for the result, whether it may be null.
    """

    name: str
    type: pa.DataType
    type_text: str
    nullable: bool

    @classmethod
    def from_json(cls, udf: str, obj: Mapping[str, Any]) -> ParamInfo:
        text = str(obj.get("type", ""))
        try:
            t = parse_type_text(text)
        except ValueError as err:
            raise ServerError(f"{udf}: the server described a type this client cannot read: {err}") from err
        return cls(str(obj.get("name", "")), t, text, bool(obj.get("nullable", True)))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type_text, "nullable": self.nullable}


@dataclass(frozen=True)
class UdfInfo:
    """A UDF's signature and description, from ``Client.describe``/``list`` or ``fletch.testing``.

    Attributes:
        name: the UDF's name.
        kind: ``"scalar"`` (one output row per input row); other kinds are reserved.
        language: ``"go"`` or ``"python"``.
        params: the parameters, in order.
        returns: the result (named after the UDF).
        doc: the description.
        volatility: ``"immutable"``, ``"stable"`` or ``"volatile"``.
        version: a digest of the signature and source; it changes whenever behaviour may (empty in
            ``fletch.testing``, which has no server to compute it).
        metadata: the whole JSON description, including fields this client does not know.
    """

    name: str
    kind: str
    language: str
    params: tuple[ParamInfo, ...]
    returns: ParamInfo
    doc: str
    volatility: str
    version: str
    metadata: Mapping[str, Any] = field(
        default_factory=lambda: types.MappingProxyType({}), compare=False, repr=False
    )

    @property
    def input_schema(self) -> pa.Schema:
        """One nullable field per parameter, named after it: the schema of input batches."""
        return pa.schema([pa.field(p.name, p.type, nullable=True) for p in self.params])

    @property
    def output_schema(self) -> pa.Schema:
        """The single result field, named after the UDF: the schema of output batches.

        It is nullable whatever ``returns.nullable`` says: that flag tells whether the function itself may
        return null, but a null argument it does not take, or a failed row under ``on_error="null"``, still
        makes a row null (docs/types.md)."""
        r = self.returns
        return pa.schema([pa.field(r.name, r.type, nullable=True)])

    @property
    def signature(self) -> str:
        """``name(a int64, b int64 null) -> int64``, as the server logs it."""
        params = ", ".join(f"{p.name} {p.type_text}{' null' if p.nullable else ''}" for p in self.params)
        return f"{self.name}({params}) -> {self.returns.type_text}"

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> UdfInfo:
        """Parse one element of the ``list`` action, or a FlightInfo's ``app_metadata``."""
        if not isinstance(obj, Mapping) or not isinstance(obj.get("name"), str):
            raise ServerError(f"the server described a UDF as {obj!r}, which is not a UDF description")
        name = obj["name"]
        returns = obj.get("return") or {"name": name, "type": "null", "nullable": True}
        return cls(
            name=name,
            kind=str(obj.get("kind", "scalar")),
            language=str(obj.get("language", "")),
            params=tuple(ParamInfo.from_json(name, p) for p in obj.get("params") or ()),
            returns=ParamInfo.from_json(name, returns),
            doc=str(obj.get("doc") or ""),
            volatility=str(obj.get("volatility", "")),
            version=str(obj.get("version", "")),
            metadata=types.MappingProxyType(dict(obj)),
        )

    @classmethod
    def from_app_metadata(cls, data: bytes) -> UdfInfo:
        try:
            obj = json.loads(data)
        except ValueError as err:
            raise ServerError(f"the server's UDF description is not JSON: {err}") from err
        return cls.from_json(obj)

    @classmethod
    def from_signature_schema(cls, name: str, schema: pa.Schema, inputs: int) -> UdfInfo:
        """From a signature schema alone (parameters, then the result), for servers without app_metadata."""
        if not 0 <= inputs < len(schema):
            inputs = len(schema) - 1
        if len(schema) == 0:
            raise ServerError(f"{name}: the server's signature schema has no result field")
        params = tuple(ParamInfo(f.name, f.type, describe_text(f.type), True) for f in list(schema)[:inputs])
        r = schema.field(inputs)
        return cls(
            name=name,
            kind="scalar",
            language="",
            params=params,
            returns=ParamInfo(r.name, r.type, describe_text(r.type), r.nullable),
            doc="",
            volatility="",
            version="",
        )
