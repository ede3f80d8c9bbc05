"""The server's rules for an exchange's input, for fletch.testing: its options (udfcatalog/options.go) and its
columns (udfcatalog/conform.go).

Columns match parameters by position. Each must have the declared type or a lossless representation of it:
the string, binary and list families for one another, a narrower integer for a wider one, the null type for
anything, and nested fields that differ only in child names (not struct field names) or child nullability.
Messages are the server's.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any, Final

import pyarrow as pa

from fletch._errors import SignatureMismatch
from fletch._info import ParamInfo, UdfInfo, describe_text

__all__ = [
    "MISMATCH_PREFIX",
    "ExchangeOptions",
    "check_schema",
    "conform_batch",
    "for_exchange",
    "parse_options",
]

MISMATCH_PREFIX: Final = "input schema does not match the function's parameters: "

_STRINGS: Final = frozenset({pa.utf8().id, pa.large_utf8().id, pa.string_view().id})
_BINARIES: Final = frozenset({pa.binary().id, pa.large_binary().id, pa.binary_view().id})
_SIGNED: Final = {pa.int8().id: 8, pa.int16().id: 16, pa.int32().id: 32, pa.int64().id: 64}
_UNSIGNED: Final = {pa.uint8().id: 8, pa.uint16().id: 16, pa.uint32().id: 32, pa.uint64().id: 64}
_LISTS: Final = frozenset({pa.list_(pa.int8()).id, pa.large_list(pa.int8()).id})
_NULL: Final = pa.null().id

# -- exchange options ---------------------------------------------------------------------------------------

_INVALID_OPTIONS: Final = "invalid exchange options: "
_PHASES: Final = ("", "partial", "combine", "merge")
# The binary column of serialised states that partial, combine and merge phases take or give
# (udfcatalog.StateColumn; a Go field, so not nullable).
_STATE: Final = ParamInfo("state", pa.binary(), "binary", False)
# Go's names for the kinds of JSON value, in its "cannot unmarshal" errors.
_JSON_KINDS: Final = ((bool, "bool"), (str, "string"), (int, "number"), (float, "number"), (list, "array"))
# Go's JSON syntax errors for the non-finite numbers Python's json writes.
_NON_FINITE: Final = {
    "NaN": "invalid character 'N' looking for beginning of value",
    "Infinity": "invalid character 'I' looking for beginning of value",
    "-Infinity": "invalid character 'I' in numeric literal",
}


@dataclasses.dataclass(frozen=True)
class ExchangeOptions:
    """What the server read from an exchange's ``fletch-options`` header (udfcatalog.ExchangeOptions)."""

    running: bool = False
    phase: str = ""


class _Object(list[tuple[str, Any]]):
    """A JSON object's members in document order (json.loads' object_pairs_hook)."""


class _OptionsError(Exception):
    pass


def _refuse_constant(name: str) -> Any:
    raise _OptionsError(_NON_FINITE[name])


def _json_kind(value: object) -> str:
    return next((kind for t, kind in _JSON_KINDS if type(value) is t), "object")


def parse_options(raw: str | None) -> ExchangeOptions:
    """The options in raw, the header's JSON, read as the server reads them (udfcatalog.ParseExchangeOptions).

    As Go's encoding/json does, keys match case-insensitively, the last of several wins, null leaves the
    default, and the first error in the document is the one reported.

    Raises:
        SignatureMismatch: the server's INVALID_ARGUMENT message.
    """
    if raw is None:
        return ExchangeOptions()
    values: dict[str, Any] = {"running": False, "phase": ""}
    go_types = {"running": (bool, "bool"), "phase": (str, "udfcatalog.Phase")}
    error: str | None = None
    try:
        members: _Object = json.loads(raw, object_pairs_hook=_Object, parse_constant=_refuse_constant)
    except _OptionsError as err:  # Go reads the whole value before decoding it, so this comes first
        error, members = str(err), _Object()
    for key, value in members:
        name = key if key in values else next((n for n in values if key.casefold() == n), None)
        if name is None:
            error = error or f"json: unknown field {_go_quote(key)}"
        elif value is not None and type(value) is go_types[name][0]:
            values[name] = value
        elif value is not None:
            error = error or (
                f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                f"ExchangeOptions.{name} of type {go_types[name][1]}"
            )
    if error is not None:
        raise SignatureMismatch(
            f"{_INVALID_OPTIONS}want a JSON object with keys running and phase, got {_go_quote(raw)}: {error}"
        )
    options = ExchangeOptions(running=values["running"], phase=values["phase"])
    if options.phase not in _PHASES:
        raise SignatureMismatch(
            f"{_INVALID_OPTIONS}phase {_go_quote(options.phase)} is not partial, combine or merge"
        )
    return options


def for_exchange(info: UdfInfo, options: ExchangeOptions) -> UdfInfo:
    """info as an exchange with options sees it (udfcatalog.UDF.ForExchange): an aggregate's partial, combine
    and merge phases take or give states instead of its parameters or result.

    Raises:
        SignatureMismatch: the options do not apply to info (the server's INVALID_ARGUMENT message).
    """
    if info.kind != "aggregate":
        for name, value in (("running", options.running), ("phase", options.phase)):
            if value:
                raise SignatureMismatch(
                    f"{_INVALID_OPTIONS}{name} applies to aggregates; {info.name} is a {info.kind} function"
                )
        return info
    phase = options.phase
    if not phase:
        return info
    if phase != "partial" and not info.metadata.get("mergeable"):
        raise SignatureMismatch(
            f"{_INVALID_OPTIONS}phase {phase} needs an aggregate with a merge method; {info.name} has none"
        )
    return dataclasses.replace(
        info,
        params=(_STATE,) if phase in ("combine", "merge") else info.params,
        returns=_STATE if phase in ("partial", "combine") else info.returns,
    )


def _go_quote(text: str) -> str:
    """text as Go's %q writes it (strconv.Quote)."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES: Final = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}

# -- columns ------------------------------------------------------------------------------------------------


class _Mismatch(Exception):
    def __init__(self, path: str, message: str, specific: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.specific = specific

    def detail(self) -> str:
        if self.path:
            return f" ({self.path}: {self.message})"
        return f" ({self.message})" if self.specific else ""


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def check_schema(info: UdfInfo, schema: pa.Schema) -> None:
    """Raise SignatureMismatch, worded as the server does, unless schema's columns fit info's parameters."""
    if len(schema) != len(info.params):
        params = ", ".join(f"{p.name} {p.type_text}".strip() for p in info.params)
        fields = ", ".join(describe_text(f.type) for f in schema)
        raise SignatureMismatch(
            f"{MISMATCH_PREFIX}{info.name} takes {len(info.params)} column(s) ({params}), "
            f"got {len(schema)} ({fields})"
        )
    for i, param in enumerate(info.params):
        got = schema.field(i).type
        try:
            _conform("", got, param.type)
        except _Mismatch as err:
            raise SignatureMismatch(
                f"{MISMATCH_PREFIX}{info.name}: input column {i} ({_quote(param.name)}): expected "
                f"{param.type_text}, got {describe_text(got)}{err.detail()}"
            ) from None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _conform(path: str, got: pa.DataType, want: pa.DataType) -> None:
    if got.equals(want):
        return
    if got.id == want.id:
        _conform_same_id(path, got, want)
        return
    if got.id == _NULL or _lossless(got, want):
        return
    if got.id in _LISTS and want.id in _LISTS:
        _conform(_join(path, "item"), got.value_type, want.value_type)
        return
    raise _Mismatch(path, f"expected {describe_text(want)}, got {describe_text(got)}")


def _conform_same_id(path: str, got: pa.DataType, want: pa.DataType) -> None:
    if want.id in _LISTS:
        _conform_children(path, [got.value_field], [want.value_field], positional=True)
    elif isinstance(want, pa.FixedSizeListType):
        if got.list_size != want.list_size:
            raise _Mismatch(path, f"expected {want.list_size} items per list, got {got.list_size}", True)
        _conform_children(path, [got.value_field], [want.value_field], positional=True)
    elif isinstance(want, pa.MapType):
        _conform_children(
            path, [got.key_field, got.item_field], [want.key_field, want.item_field], positional=True
        )
    elif isinstance(want, pa.StructType):
        _conform_children(path, list(got), list(want), positional=False)
    else:
        raise _Mismatch(path, f"expected {describe_text(want)}, got {describe_text(got)}")


def _conform_children(
    path: str, got: Sequence[pa.Field], want: Sequence[pa.Field], *, positional: bool
) -> None:
    if len(got) != len(want):
        raise _Mismatch(path, f"expected {len(want)} fields, got {len(got)}", True)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if not positional and g.name != w.name:
            raise _Mismatch(path, f"field {i}: expected name {_quote(w.name)}, got {_quote(g.name)}", True)
        _conform(_join(path, w.name), g.type, w.type)


def _lossless(got: pa.DataType, want: pa.DataType) -> bool:
    g, w = got.id, want.id
    if (g in _STRINGS and w in _STRINGS) or (g in _BINARIES and w in _BINARIES):
        return True
    if g in _SIGNED and w in _SIGNED:
        return _SIGNED[g] < _SIGNED[w]
    if g in _UNSIGNED and w in _UNSIGNED:
        return _UNSIGNED[g] < _UNSIGNED[w]
    if g in _UNSIGNED and w in _SIGNED:
        return _UNSIGNED[g] < _SIGNED[w]
    return False


def conform_batch(info: UdfInfo, batch: pa.RecordBatch, index: int) -> pa.RecordBatch:
    """batch as the server hands it to the UDF (udfcatalog.InputPlan.Apply): each column converted to its
    parameter's type, the columns named after the parameters. check_schema has accepted batch's schema, and
    index is the batch's place in the exchange.

    Raises:
        SignatureMismatch: a column did not convert (the server's message).
    """
    schema = info.input_schema
    if batch.schema.equals(schema):
        return batch
    columns: list[pa.Array] = []
    fields: list[pa.Field] = []
    for i, (column, field) in enumerate(zip(batch.columns, schema, strict=True)):
        want = field.type
        if column.type.equals(want):
            converted = column
        elif column.type.id == want.id:
            # Nested types differing in child names or nullability: the same data, relabelled. A view fails
            # when a child declared non-nullable holds nulls; the server passes those as they are too.
            try:
                converted = column.view(want)
            except pa.ArrowException:
                converted = column
        elif column.type.id == _NULL:
            converted = pa.nulls(len(column), want)
        else:
            try:
                converted = column.cast(want, safe=True)
            except (pa.ArrowException, ValueError, TypeError) as err:
                raise SignatureMismatch(
                    f"batch {index}: {MISMATCH_PREFIX}{info.name}: input column {i}: convert "
                    f"{describe_text(column.type)} to {describe_text(want)}: {err}"
                ) from err
        columns.append(converted)
        fields.append(field.with_type(converted.type))
    return pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields))
