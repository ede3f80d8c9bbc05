"""The server's rules for matching input columns to parameters (udfcatalog/conform.go), for fletch.testing.

Columns match parameters by position. Each must have the declared type or a lossless representation of it:
the string, binary and list families for one another, a narrower integer for a wider one, the null type for
anything, and nested fields that differ only in child names (not struct field names) or child nullability.
Messages are the server's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

import pyarrow as pa

from fletch._errors import SignatureMismatch
from fletch._info import UdfInfo, describe_text

__all__ = ["MISMATCH_PREFIX", "check_schema"]

MISMATCH_PREFIX: Final = "input schema does not match the function's parameters: "

_STRINGS: Final = frozenset({pa.utf8().id, pa.large_utf8().id, pa.string_view().id})
_BINARIES: Final = frozenset({pa.binary().id, pa.large_binary().id, pa.binary_view().id})
_SIGNED: Final = {pa.int8().id: 8, pa.int16().id: 16, pa.int32().id: 32, pa.int64().id: 64}
_UNSIGNED: Final = {pa.uint8().id: 8, pa.uint16().id: 16, pa.uint32().id: 32, pa.uint64().id: 64}
_LISTS: Final = frozenset({pa.list_(pa.int8()).id, pa.large_list(pa.int8()).id})
_NULL: Final = pa.null().id


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
