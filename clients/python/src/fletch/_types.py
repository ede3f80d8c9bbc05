"""Arrow types for fletch UDFs: canonical type text and inference from annotations.

Canonical type text is fletch's short spelling of an Arrow type (``int64``, ``list<utf8 not null>``,
``timestamp[us, tz=UTC]``). :func:`type_text` and :func:`parse_type_text` mirror the Go server's
``udfcatalog.FormatType`` and ``udfcatalog.ParseType`` byte for byte, including error messages and their
byte offsets; see ``docs/types.md``.

:func:`infer` maps a Python annotation to an Arrow type, following the table in the package README.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

__all__ = [
    "DEFAULT_DECIMAL",
    "AnnotationError",
    "TypeInfo",
    "TypeTextError",
    "array_class_of",
    "contains_map",
    "describe_annotation",
    "infer",
    "is_optional",
    "override",
    "parse_type_text",
    "type_text",
]

# ----------------------------------------------------------------------------------------------------------
# Canonical type text
# ----------------------------------------------------------------------------------------------------------

_MAX_TEXT_LEN: Final = 64 << 10  # bytes; the Go parser's limit
_MAX_DEPTH: Final = 64  # nested types; the Go parser's limit
_MAX_FIXED_SIZE: Final = (1 << 31) - 1  # Arrow's int32 widths and lengths
_SPACE: Final = b" \t\r\n"
_SPACE_STR: Final = " \t\r\n"
_LIST_ITEM_NAME: Final = "item"
_MAX_WORD_LEN: Final = 40
_MAX_DESCRIPTION_LEN: Final = 200

# Canonical names of the parameterless types pyarrow can build. interval_months and interval_day_time are
# canonical too, but pyarrow has no factory for them: they are formatted by type id and rejected by the
# parser.
_PRIMITIVE_TYPES: Final[dict[str, pa.DataType]] = {
    "null": pa.null(),
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "float16": pa.float16(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "utf8": pa.string(),
    "large_utf8": pa.large_string(),
    "utf8_view": pa.string_view(),
    "binary": pa.binary(),
    "large_binary": pa.large_binary(),
    "binary_view": pa.binary_view(),
    "date32": pa.date32(),
    "date64": pa.date64(),
    "interval_month_day_nano": pa.month_day_nano_interval(),
}
_PRIMITIVE_NAMES: Final[dict[pa.DataType, str]] = {t: name for name, t in _PRIMITIVE_TYPES.items()}

# Canonical types that pyarrow cannot construct, by pyarrow type id where pyarrow defines one.
_UNBUILDABLE_NAMES: Final = ("interval_months", "interval_day_time")
_UNBUILDABLE_IDS: Final[dict[int, str]] = {
    type_id: name
    for name, type_id in (
        ("interval_months", getattr(pa.lib, "Type_INTERVAL_MONTHS", None)),
        ("interval_day_time", getattr(pa.lib, "Type_INTERVAL_DAY_TIME", None)),
    )
    if type_id is not None
}

# pyarrow's spellings, accepted on input and never written.
_PRIMITIVE_ALIASES: Final[dict[str, str]] = {
    "boolean": "bool",
    "string": "utf8",
    "large_string": "large_utf8",
    "string_view": "utf8_view",
    "halffloat": "float16",
    "float": "float32",
    "double": "float64",
    "month_day_nano_interval": "interval_month_day_nano",
}

_PARAMETERIZED_NAMES: Final = frozenset(
    {
        "time32",
        "time64",
        "duration",
        "timestamp",
        "decimal",
        "decimal32",
        "decimal64",
        "decimal128",
        "decimal256",
        "fixed_size_binary",
        "list",
        "large_list",
        "fixed_size_list",
        "map",
        "struct",
    }
)

_DECIMAL_MAX_PRECISION: Final[dict[str, int]] = {
    "decimal32": 9,
    "decimal64": 18,
    "decimal128": 38,
    "decimal": 38,
    "decimal256": 76,
}
_DECIMAL_FACTORIES: Final[dict[str, Callable[[int, int], pa.DataType]]] = {
    "decimal32": pa.decimal32,
    "decimal64": pa.decimal64,
    "decimal128": pa.decimal128,
    "decimal": pa.decimal128,
    "decimal256": pa.decimal256,
}
# (class, canonical name, maximum precision), most specific first.
_DECIMAL_CLASSES: Final[tuple[tuple[type, str, int], ...]] = (
    (pa.Decimal32Type, "decimal32", 9),
    (pa.Decimal64Type, "decimal64", 18),
    (pa.Decimal128Type, "decimal128", 38),
    (pa.Decimal256Type, "decimal256", 76),
)

_TIME_UNITS: Final = ("s", "ms", "us", "ns")


class TypeTextError(ValueError):
    """Type text that :func:`parse_type_text` rejects.

    ``str(err)`` is the Go server's message, e.g.
    ``invalid type text: "list<int32" at offset 10: expected ">" but reached end of text``.
    """

    text: str
    offset: int | None
    reason: str

    def __init__(self, message: str, text: str, offset: int | None, reason: str) -> None:
        super().__init__(message)
        self.text = text
        self.offset = offset
        self.reason = reason


def go_quote(value: str | bytes) -> str:
    """Quote value as Go's ``strconv.Quote`` does.

    Printable runes are kept (including non-ASCII), ``"`` and ``\\`` are escaped, control characters use
    ``\\a \\b \\f \\n \\r \\t \\v`` or ``\\xNN``, other non-printable runes ``\\uNNNN``/``\\UNNNNNNNN``, and
    bytes that are not valid UTF-8 ``\\xNN``. Printability follows this Python's Unicode tables, which match
    Go's for every assigned character of their common Unicode version.
    """
    data = _encode(value) if isinstance(value, str) else value
    out = ['"']
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c < 0x80:
            i += 1
            ch = chr(c)
        else:
            size = _utf8_sequence_length(c)
            try:
                ch = data[i : i + size].decode("utf-8") if size else ""
            except UnicodeDecodeError:
                ch = ""
            if len(ch) != 1:
                out.append(f"\\x{c:02x}")
                i += 1
                continue
            i += size
        out.append(_escape_rune(ch))
    out.append('"')
    return "".join(out)


def _encode(text: str) -> bytes:
    """UTF-8, with surrogateescape'd bytes restored and other lone surrogates encoded as they stand."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


_SIMPLE_ESCAPES: Final[dict[str, str]] = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _escape_rune(ch: str) -> str:
    if ch in ('"', "\\"):
        return "\\" + ch
    if ch.isprintable():
        return ch
    escaped = _SIMPLE_ESCAPES.get(ch)
    if escaped is not None:
        return escaped
    r = ord(ch)
    if r < 0x20 or r == 0x7F:
        return f"\\x{r:02x}"
    if r < 0x10000:
        return f"\\u{r:04x}"
    return f"\\U{r:08x}"


def _utf8_sequence_length(lead: int) -> int:
    """Length of the UTF-8 sequence a lead byte starts, or 0 when it cannot start one."""
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0


def _is_ident_start(c: int) -> bool:
    return 0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A or c == 0x5F


def _is_digit(c: int) -> bool:
    return 0x30 <= c <= 0x39


def _is_word_byte(c: int) -> bool:
    return _is_ident_start(c) or _is_digit(c)


def _is_identifier(name: str) -> bool:
    data = _encode(name)
    return bool(data) and _is_ident_start(data[0]) and all(_is_word_byte(c) for c in data[1:])


def _format_field_name(name: str) -> str:
    return name if _is_identifier(name) else go_quote(name)


def _is_type_name(name: str) -> bool:
    return (
        name in _PARAMETERIZED_NAMES
        or name in _PRIMITIVE_TYPES
        or name in _UNBUILDABLE_NAMES
        or name in _PRIMITIVE_ALIASES
    )


class _Parser:
    """Recursive-descent parser over UTF-8 bytes, a port of the Go parser (offsets are byte offsets)."""

    def __init__(self, text: str, data: bytes) -> None:
        self.text = text
        self.data = data
        self.pos = 0
        self.depth = 0
        # The first thing pyarrow cannot hold (offset, reason): reported only if the text is otherwise
        # valid, so that every syntax error reads exactly as the Go server's.
        self.deferred: tuple[int, str] | None = None

    def defer(self, offset: int, reason: str) -> None:
        if self.deferred is None:
            self.deferred = (offset, reason)

    # -- errors ---------------------------------------------------------------------------------------------

    def error_at(self, offset: int, reason: str) -> TypeTextError:
        message = f"invalid type text: {go_quote(self.data)} at offset {offset}: {reason}"
        return TypeTextError(message, self.text, offset, reason)

    def unexpected(self, expected: str) -> TypeTextError:
        return self.error_at(self.pos, f"expected {expected} but {self.describe_next()}")

    def describe_next(self) -> str:
        data, pos = self.data, self.pos
        if pos >= len(data):
            return "reached end of text"
        end = pos
        while end < len(data) and _is_word_byte(data[end]):
            end += 1
        if end == pos:
            end = pos + max(1, _utf8_sequence_length(data[pos]) if data[pos] >= 0x80 else 1)
        if end - pos > _MAX_WORD_LEN:
            return f"found {go_quote(data[pos : pos + _MAX_WORD_LEN])}..."
        return f"found {go_quote(data[pos:end])}"

    # -- tokens ---------------------------------------------------------------------------------------------

    def skip_space(self) -> None:
        data = self.data
        while self.pos < len(data) and data[self.pos] in _SPACE:
            self.pos += 1

    def consume(self, char: str) -> bool:
        self.skip_space()
        if self.pos < len(self.data) and self.data[self.pos] == ord(char):
            self.pos += 1
            return True
        return False

    def expect(self, char: str) -> None:
        if not self.consume(char):
            raise self.unexpected(go_quote(char))

    def identifier(self) -> str:
        data, start = self.data, self.pos
        if start >= len(data) or not _is_ident_start(data[start]):
            return ""
        while self.pos < len(data) and _is_word_byte(data[self.pos]):
            self.pos += 1
        return data[start : self.pos].decode("ascii")

    def expect_word(self, want: str) -> None:
        self.skip_space()
        start = self.pos
        if self.identifier() != want:
            self.pos = start
            raise self.unexpected(go_quote(want))

    def parse_end(self) -> None:
        self.skip_space()
        if self.pos == len(self.data):
            return
        start = self.pos
        if self.identifier() == "not":
            raise self.error_at(
                start, 'a top-level type has no nullability; "not null" only applies to fields'
            )
        self.pos = start
        raise self.unexpected("end of text")

    # -- types ----------------------------------------------------------------------------------------------

    def parse_type(self) -> pa.DataType:
        self.skip_space()
        start = self.pos
        name = self.identifier()
        if not name:
            raise self.unexpected("a type name")
        if name in ("date32", "date64"):
            return self.parse_date(name)
        if name in ("time32", "time64", "duration"):
            return self.parse_time_unit_type(name)
        if name == "timestamp":
            return self.parse_timestamp()
        if name in _DECIMAL_MAX_PRECISION:
            return self.parse_decimal(name)
        if name == "fixed_size_binary":
            return self.parse_fixed_size_binary()
        if name in ("list", "large_list", "fixed_size_list", "map", "struct"):
            return self.parse_nested(name, start)
        canonical = _PRIMITIVE_ALIASES.get(name, name)
        t = _PRIMITIVE_TYPES.get(canonical)
        if t is not None:
            return t
        if canonical in _UNBUILDABLE_NAMES:
            self.defer(start, f"type {canonical} is valid but has no pyarrow equivalent")
            return pa.null()  # a placeholder; parse_type_text reports it once the whole text has parsed
        message = f"unknown type {go_quote(name)}"
        lower = name.lower()
        if lower != name and _is_type_name(lower):
            message += f" (type names are lowercase: {go_quote(lower)})"
        raise self.error_at(start, message)

    def parse_date(self, name: str) -> pa.DataType:
        t, unit = (pa.date32(), "day") if name == "date32" else (pa.date64(), "ms")
        if not self.consume("["):
            return t
        self.expect_word(unit)
        self.expect("]")
        return t

    def parse_time_unit(self) -> str:
        self.skip_space()
        start = self.pos
        unit = self.identifier()
        if unit in _TIME_UNITS:
            return unit
        self.pos = start
        raise self.unexpected("a time unit (s, ms, us or ns)")

    def parse_time_unit_type(self, name: str) -> pa.DataType:
        self.expect("[")
        self.skip_space()
        unit_start = self.pos
        unit = self.parse_time_unit()
        t: pa.DataType
        if name == "time32":
            if unit not in ("s", "ms"):
                raise self.error_at(unit_start, f"time32 unit must be s or ms, not {unit}")
            t = pa.time32(unit)
        elif name == "time64":
            if unit not in ("us", "ns"):
                raise self.error_at(unit_start, f"time64 unit must be us or ns, not {unit}")
            t = pa.time64(unit)
        else:
            t = pa.duration(unit)
        self.expect("]")
        return t

    def parse_timestamp(self) -> pa.DataType:
        self.expect("[")
        unit = self.parse_time_unit()
        zone: str | None = None
        if self.consume(","):
            self.expect_word("tz")
            self.expect("=")
            zone = self.parse_time_zone()
        self.expect("]")
        return pa.timestamp(unit, tz=zone)

    def parse_time_zone(self) -> str:
        self.skip_space()
        data, start = self.data, self.pos
        while self.pos < len(data) and data[self.pos] not in b"],":
            self.pos += 1
        zone = data[start : self.pos].rstrip(_SPACE)
        if not zone:
            self.pos = start
            raise self.unexpected("a time zone")
        return zone.decode("utf-8")

    def parse_decimal(self, name: str) -> pa.DataType:
        self.expect("(")
        precision = self.parse_bounded_int("precision", 1, _DECIMAL_MAX_PRECISION[name], f" for {name}")
        self.expect(",")
        scale = self.parse_bounded_int("scale", 0, precision, f" for {name} with precision {precision}")
        self.expect(")")
        return _DECIMAL_FACTORIES[name](precision, scale)

    def parse_fixed_size_binary(self) -> pa.DataType:
        # pyarrow prints fixed_size_binary[16], so show the spelling wanted here.
        if not self.consume("("):
            raise self.unexpected('"(" (as in fixed_size_binary(16))')
        width = self.parse_bounded_int("byte width", 1, _MAX_FIXED_SIZE, " for fixed_size_binary")
        self.expect(")")
        return pa.binary(width)

    def parse_bounded_int(self, what: str, lo: int, hi: int, context: str) -> int:
        self.skip_space()
        data, start = self.data, self.pos
        negative = self.pos < len(data) and data[self.pos] == ord("-")
        if negative:
            self.pos += 1
        digits_start = self.pos
        n = 0
        while self.pos < len(data) and _is_digit(data[self.pos]):
            if n <= _MAX_FIXED_SIZE:  # saturate instead of growing without bound
                n = n * 10 + data[self.pos] - 0x30
            self.pos += 1
        if self.pos == digits_start:
            self.pos = start
            raise self.unexpected(f"{what} (an integer)")
        if negative or n < lo or n > hi:
            literal = data[start : self.pos].decode("ascii")
            raise self.error_at(start, f"{what} {literal} out of range {lo}..{hi}{context}")
        return n

    def parse_nested(self, name: str, start: int) -> pa.DataType:
        self.depth += 1
        try:
            if self.depth > _MAX_DEPTH:
                raise self.error_at(start, f"nesting deeper than {_MAX_DEPTH} levels")
            self.expect("<")
            if name in ("list", "large_list"):
                item = self.parse_field(_LIST_ITEM_NAME)
                self.expect(">")
                return pa.list_(item) if name == "list" else pa.large_list(item)
            if name == "fixed_size_list":
                item = self.parse_field(_LIST_ITEM_NAME)
                # pyarrow prints fixed_size_list<item: int32>[3], so show the spelling wanted here.
                if not self.consume(","):
                    raise self.unexpected('"," and a size (as in fixed_size_list<int32, 3>)')
                size = self.parse_bounded_int("list size", 1, _MAX_FIXED_SIZE, " for fixed_size_list")
                self.expect(">")
                return pa.list_(item, size)
            if name == "map":
                return self.parse_map_body()
            return self.parse_struct_body()
        finally:
            self.depth -= 1

    def parse_field(self, default_name: str) -> pa.Field:
        name = self.parse_optional_field_name()
        t = self.parse_type()
        nullable = self.parse_nullability()
        return self.field(default_name if name is None else name, t, nullable)

    def field(self, name: str, t: pa.DataType, nullable: bool) -> pa.Field:
        """pa.field, deferring what pyarrow cannot build (the field ends at the current position)."""
        if not nullable and t == pa.null():
            self.defer(self.pos, "pyarrow cannot make a field of type null non-nullable")
            nullable = True
        return pa.field(_field_name(name), t, nullable=nullable)

    def parse_optional_field_name(self) -> str | None:
        """Consume ``NAME ":"`` if present; a bare identifier is a name only when a colon follows."""
        self.skip_space()
        start = self.pos
        if self.pos < len(self.data) and self.data[self.pos] == ord('"'):
            name = self.parse_quoted_name()
            if not self.consume(":"):
                raise self.unexpected(f'":" after field name {go_quote(name)}')
            return name
        name = self.identifier()
        if name and self.consume(":"):
            return name
        self.pos = start
        return None

    def parse_field_name(self) -> str:
        self.skip_space()
        if self.pos < len(self.data) and self.data[self.pos] == ord('"'):
            return self.parse_quoted_name()
        name = self.identifier()
        if name:
            return name
        raise self.unexpected("a field name")

    def parse_quoted_name(self) -> str:
        data, start = self.data, self.pos
        name = bytearray()
        at = start + 1
        while True:
            if at >= len(data):
                raise self.error_at(start, "unterminated quoted field name")
            c = data[at]
            if c == ord('"'):
                self.pos = at + 1
                break
            if c < 0x20 or c == 0x7F:
                raise self.error_at(
                    at,
                    f"control character {go_quote(data[at : at + 1])} in quoted field name must be escaped",
                )
            decoded = _unquote_char(data, at)
            if decoded is None:
                raise self.error_at(
                    at, f"invalid escape sequence {go_quote(data[at : at + 2])} in quoted field name"
                )
            name += decoded[0]
            at = decoded[1]
        try:
            return name.decode("utf-8")
        except UnicodeDecodeError:
            self.defer(
                start, f"field name {go_quote(bytes(name))} is not valid UTF-8, which pyarrow cannot hold"
            )
            # Raw bytes survive as surrogates, so duplicate checks and messages still see the exact name.
            return name.decode("utf-8", "surrogateescape")

    def parse_nullability(self) -> bool:
        """Consume an optional ``not null``; report whether the field stays nullable."""
        self.skip_space()
        start = self.pos
        if self.identifier() != "not":
            self.pos = start
            return True
        self.expect_word("null")
        return False

    def parse_map_body(self) -> pa.DataType:
        key = self.parse_unnamed_map_field("key")
        if key == pa.null():  # map keys are non-nullable fields
            self.defer(self.pos, "pyarrow cannot make a map key of type null (keys are non-nullable fields)")
            key = pa.int8()
        self.parse_nullability()  # map keys are never null, so an explicit "not null" changes nothing
        self.expect(",")
        value = self.parse_unnamed_map_field("value")
        value_nullable = self.parse_nullability()
        keys_sorted = False
        if self.consume(","):
            self.expect_word("keys_sorted")
            keys_sorted = True
        if not self.consume(">"):
            raise self.unexpected('">"' if keys_sorted else '"," or ">"')
        return pa.map_(key, self.field("value", value, value_nullable), keys_sorted=keys_sorted)

    def parse_unnamed_map_field(self, role: str) -> pa.DataType:
        self.skip_space()
        start = self.pos
        if self.parse_optional_field_name() is not None:
            raise self.error_at(start, f"map {role} cannot be named (Arrow always calls it {go_quote(role)})")
        return self.parse_type()

    def parse_struct_body(self) -> pa.DataType:
        if self.consume(">"):
            return pa.struct([])
        fields: list[pa.Field] = []
        seen: set[str] = set()
        while True:
            self.skip_space()
            name_start = self.pos
            name = self.parse_field_name()
            if name in seen:
                raise self.error_at(name_start, f"duplicate struct field name {go_quote(name)}")
            seen.add(name)
            if not self.consume(":"):
                raise self.unexpected(f'":" after field name {go_quote(name)}')
            t = self.parse_type()
            nullable = self.parse_nullability()
            fields.append(self.field(name, t, nullable))
            if self.consume(">"):
                return pa.struct(fields)
            if not self.consume(","):
                raise self.unexpected('"," or ">"')


_ESCAPE_BYTES: Final[dict[int, int]] = {
    ord("a"): 0x07,
    ord("b"): 0x08,
    ord("f"): 0x0C,
    ord("n"): 0x0A,
    ord("r"): 0x0D,
    ord("t"): 0x09,
    ord("v"): 0x0B,
    ord("\\"): 0x5C,
    ord('"'): 0x22,
}
_HEX_DIGITS: Final = frozenset(b"0123456789abcdefABCDEF")


def _field_name(name: str) -> str:
    """name, or a stand-in when it holds raw bytes (already reported through _Parser.defer)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "?"
    return name


def _unquote_char(data: bytes, at: int) -> tuple[bytes, int] | None:
    """Decode one character of a Go double-quoted string at ``at``: (its bytes, the next offset).

    As Go's ``strconv.UnquoteChar``: ``\\x`` and octal escapes are raw bytes, ``\\u`` and ``\\U`` are runes.
    Returns None for an invalid escape.
    """
    c = data[at]
    if c >= 0x80:
        size = _utf8_sequence_length(c)  # the text was validated as UTF-8
        return data[at : at + size], at + size
    if c != ord("\\"):
        return bytes((c,)), at + 1
    if at + 1 >= len(data):
        return None
    c = data[at + 1]
    rest = at + 2
    simple = _ESCAPE_BYTES.get(c)
    if simple is not None:
        return bytes((simple,)), rest
    if c in b"xuU":
        width = {ord("x"): 2, ord("u"): 4, ord("U"): 8}[c]
        digits = data[rest : rest + width]
        if len(digits) < width or not all(d in _HEX_DIGITS for d in digits):
            return None
        value = int(digits, 16)
        if c == ord("x"):
            return bytes((value,)), rest + width
        if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
            return None
        return chr(value).encode("utf-8"), rest + width
    if 0x30 <= c <= 0x37:
        digits = data[at + 1 : at + 4]
        if len(digits) < 3 or not all(0x30 <= d <= 0x37 for d in digits):
            return None
        value = int(digits, 8)
        if value > 255:
            return None
        return bytes((value,)), at + 4
    return None


def parse_type_text(text: str) -> pa.DataType:
    """Parse canonical type text (or one of pyarrow's accepted spellings) into a pyarrow DataType.

    Accepts the grammar of ``docs/types.md``: canonical names, pyarrow aliases (``string``, ``double``,
    ``decimal(12, 2)``, ``list<item: int64>``, ...) and optional whitespace around punctuation.

    Raises:
        TypeTextError: a ValueError whose message gives the text, the byte offset and what was expected,
            worded exactly as the Go server's. ``interval_months`` and ``interval_day_time`` are valid
            canonical text but are rejected here because pyarrow cannot build them.
    """
    if not isinstance(text, str):
        raise TypeError(f"type text must be a str, not {type(text).__name__}")
    data = _encode(text)
    if len(data) > _MAX_TEXT_LEN:
        message = (
            f"invalid type text: {go_quote(data[:32])}... is {len(data)} bytes, "
            f"over the {_MAX_TEXT_LEN}-byte limit"
        )
        raise TypeTextError(message, text, None, message)
    parser = _Parser(text, data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise parser.error_at(err.start, "invalid UTF-8") from None
    try:
        t = parser.parse_type()
    except (pa.ArrowException, ValueError, TypeError) as err:
        if isinstance(err, TypeTextError):
            raise
        raise parser.error_at(parser.pos, f"pyarrow cannot build the type: {err}") from err
    parser.parse_end()
    if parser.deferred is not None:
        raise parser.error_at(*parser.deferred)
    try:
        canonical = _format(t)
    except TypeError:
        canonical = ""
    if len(canonical.encode("utf-8")) > _MAX_TEXT_LEN:
        raise parser.error_at(
            0,
            f"canonical form is {len(canonical.encode('utf-8'))} bytes, over the {_MAX_TEXT_LEN}-byte limit",
        )
    return t


def type_text(t: pa.DataType) -> str:
    """The canonical type text of a pyarrow DataType, as the Go server writes it.

    Raises:
        TypeError: naming the type, when it has no canonical text (dictionary, union, run-end encoded,
            list views, extension types, fields with metadata, ...).
    """
    text = _format(t)
    size = len(text.encode("utf-8"))
    if size > _MAX_TEXT_LEN:
        raise _unsupported(t, f"canonical text is {size} bytes, over the {_MAX_TEXT_LEN}-byte limit")
    return text


def _format(t: pa.DataType) -> str:
    out: list[str] = []
    _write_type(out, t, 0)
    return "".join(out)


def _unsupported(t: object, reason: str) -> TypeError:
    name = "<nil>" if t is None else str(t)
    if len(name) > _MAX_DESCRIPTION_LEN:
        name = name[:_MAX_DESCRIPTION_LEN] + "..."
    return TypeError(f"unsupported arrow type: {name}: {reason}")


def _write_type(out: list[str], t: pa.DataType, depth: int) -> None:
    if not isinstance(t, pa.DataType):
        raise _unsupported(t, f"not a pyarrow DataType but {type(t).__name__}")
    if isinstance(t, pa.BaseExtensionType):
        raise _unsupported(t, "no canonical text")
    name = _PRIMITIVE_NAMES.get(t)
    if name is not None:
        out.append(name)
        return
    name = _UNBUILDABLE_IDS.get(t.id)
    if name is not None:
        out.append(name)
        return
    if isinstance(t, pa.Time32Type):
        if t.unit not in ("s", "ms"):
            raise _unsupported(t, "time32 unit must be s or ms")
        out.append(f"time32[{t.unit}]")
    elif isinstance(t, pa.Time64Type):
        if t.unit not in ("us", "ns"):
            raise _unsupported(t, "time64 unit must be us or ns")
        out.append(f"time64[{t.unit}]")
    elif isinstance(t, pa.DurationType):
        out.append(f"duration[{t.unit}]")
    elif isinstance(t, pa.TimestampType):
        _write_timestamp(out, t)
    elif isinstance(t, pa.FixedSizeBinaryType):  # decimals are FixedSizeBinaryType subclasses
        for cls, decimal_name, max_precision in _DECIMAL_CLASSES:
            if isinstance(t, cls):
                _write_decimal(out, t, decimal_name, max_precision)
                return
        if not 1 <= t.byte_width <= _MAX_FIXED_SIZE:
            raise _unsupported(t, f"byte width must be in 1..{_MAX_FIXED_SIZE}")
        out.append(f"fixed_size_binary({t.byte_width})")
    elif isinstance(t, (pa.ListType, pa.LargeListType, pa.FixedSizeListType, pa.MapType, pa.StructType)):
        if depth + 1 > _MAX_DEPTH:
            raise _unsupported(t, f"nesting deeper than {_MAX_DEPTH} levels")
        _write_nested(out, t, depth + 1)
    else:
        raise _unsupported(t, "no canonical text")


def _write_timestamp(out: list[str], t: pa.TimestampType) -> None:
    zone = t.tz
    if not zone:
        out.append(f"timestamp[{t.unit}]")
        return
    # The parser ends a zone at "]" or "," and trims spaces, so such zones cannot round-trip.
    if "]" in zone or "," in zone or zone.strip(_SPACE_STR) != zone:
        raise _unsupported(
            t, f'time zone {go_quote(zone)} cannot contain "]" or ",", surrounding spaces or invalid UTF-8'
        )
    out.append(f"timestamp[{t.unit}, tz={zone}]")


def _write_decimal(out: list[str], t: Any, name: str, max_precision: int) -> None:
    precision, scale = t.precision, t.scale
    if not 1 <= precision <= max_precision:
        raise _unsupported(t, f"precision {precision} out of range 1..{max_precision}")
    if not 0 <= scale <= precision:
        raise _unsupported(t, f"scale {scale} out of range 0..{precision}")
    out.append(f"{name}({precision}, {scale})")


def _write_nested(out: list[str], t: pa.DataType, depth: int) -> None:
    if isinstance(t, pa.MapType):
        _write_map_body(out, t, depth)
    elif isinstance(t, pa.StructType):
        _write_struct_body(out, t, depth)
    elif isinstance(t, pa.FixedSizeListType):
        if t.list_size < 1:
            raise _unsupported(t, "list size must be at least 1")
        out.append("fixed_size_list<")
        _write_list_item(out, t, t.value_field, depth)
        out.append(f", {t.list_size}")
    else:
        out.append("list<" if isinstance(t, pa.ListType) else "large_list<")
        _write_list_item(out, t, t.value_field, depth)
    out.append(">")


def _write_list_item(out: list[str], parent: pa.DataType, item: pa.Field, depth: int) -> None:
    _check_no_metadata(parent, item)
    if item.name != _LIST_ITEM_NAME:
        out.append(_format_field_name(item.name) + ": ")
    _write_field_type(out, item, depth)


def _write_map_body(out: list[str], t: pa.MapType, depth: int) -> None:
    key, value = t.key_field, t.item_field
    if key.nullable:
        raise _unsupported(t, "map keys must be non-nullable")
    if key.name != "key" or value.name != "value":
        raise _unsupported(
            t,
            'map fields must be named "key" and "value", '
            f"not {go_quote(key.name)} and {go_quote(value.name)}",
        )
    _check_no_metadata(t, key)
    _check_no_metadata(t, value)
    out.append("map<")
    _write_type(out, key.type, depth)
    out.append(", ")
    _write_field_type(out, value, depth)
    if t.keys_sorted:
        out.append(", keys_sorted")


def _write_struct_body(out: list[str], t: pa.StructType, depth: int) -> None:
    out.append("struct<")
    seen: set[str] = set()
    for i in range(t.num_fields):
        field = t.field(i)
        if field.name in seen:
            raise _unsupported(t, f"duplicate struct field name {go_quote(field.name)}")
        seen.add(field.name)
        _check_no_metadata(t, field)
        if i > 0:
            out.append(", ")
        out.append(_format_field_name(field.name) + ": ")
        _write_field_type(out, field, depth)


def _write_field_type(out: list[str], field: pa.Field, depth: int) -> None:
    _write_type(out, field.type, depth)
    if not field.nullable:
        out.append(" not null")


def _check_no_metadata(parent: pa.DataType, field: pa.Field) -> None:
    # Metadata can carry meaning (e.g. an unregistered extension type) that the text cannot express.
    if field.metadata:
        raise _unsupported(
            parent, f"field {go_quote(field.name)} has metadata, which type text cannot express"
        )


def contains_map(t: pa.DataType) -> bool:
    """Whether t is or contains a map type (so ``to_pylist`` needs ``maps_as_pydicts``)."""
    if isinstance(t, pa.MapType):
        return True
    if isinstance(t, pa.StructType):
        return any(contains_map(t.field(i).type) for i in range(t.num_fields))
    if isinstance(t, (pa.ListType, pa.LargeListType, pa.FixedSizeListType)):
        return contains_map(t.value_type)
    return False


# ----------------------------------------------------------------------------------------------------------
# Inference from annotations
# ----------------------------------------------------------------------------------------------------------

DEFAULT_DECIMAL: Final = pa.decimal128(38, 9)
"""The Arrow type of a plain ``decimal.Decimal`` annotation: 38 digits, 9 after the point."""

_SCALAR_TYPES: Final[dict[type, pa.DataType]] = {
    int: pa.int64(),
    float: pa.float64(),
    str: pa.string(),
    bytes: pa.binary(),
    bool: pa.bool_(),  # looked up by exact class, so bool is never mistaken for int
    decimal.Decimal: DEFAULT_DECIMAL,
    datetime.date: pa.date32(),
    datetime.datetime: pa.timestamp("us"),
    datetime.time: pa.time64("us"),
    datetime.timedelta: pa.duration("us"),
}

# Array classes that fix their Arrow type; the others need Annotated[..., pa.<type>()].
_ARRAY_TYPES: Final[dict[type, pa.DataType]] = {
    pa.NullArray: pa.null(),
    pa.BooleanArray: pa.bool_(),
    pa.Int8Array: pa.int8(),
    pa.Int16Array: pa.int16(),
    pa.Int32Array: pa.int32(),
    pa.Int64Array: pa.int64(),
    pa.UInt8Array: pa.uint8(),
    pa.UInt16Array: pa.uint16(),
    pa.UInt32Array: pa.uint32(),
    pa.UInt64Array: pa.uint64(),
    pa.HalfFloatArray: pa.float16(),
    pa.FloatArray: pa.float32(),
    pa.DoubleArray: pa.float64(),
    pa.StringArray: pa.string(),
    pa.LargeStringArray: pa.large_string(),
    pa.StringViewArray: pa.string_view(),
    pa.BinaryArray: pa.binary(),
    pa.LargeBinaryArray: pa.large_binary(),
    pa.BinaryViewArray: pa.binary_view(),
    pa.Date32Array: pa.date32(),
    pa.Date64Array: pa.date64(),
    pa.MonthDayNanoIntervalArray: pa.month_day_nano_interval(),
}

_SUPPORTED: Final = (
    "use int, float, str, bytes, bool, Decimal, date, datetime, time, timedelta, list[T], dict[K, V], "
    "a dataclass or TypedDict, Optional[T], or Annotated[T, pa.<type>()]"
)

_NONE_TYPE: Final = type(None)
_UNION_ORIGINS: Final[tuple[object, ...]] = (typing.Union, types.UnionType)

Converter = Callable[[Any], Any]


class AnnotationError(TypeError):
    """An annotation fletch cannot map to an Arrow type; the message is a fragment the decorator prefixes."""


@dataclass(frozen=True)
class TypeInfo:
    """What an annotation means to fletch.

    Attributes:
        type: the Arrow type.
        nullable: whether the annotation is Optional (the value may be None / null).
        to_python: converts a non-None value from ``Array.to_pylist()`` to what the function expects
            (dataclass instances for struct values); None when the values need no conversion.
        to_arrow: converts a non-None returned value to what ``pa.array`` accepts (``dataclasses.asdict``
            for dataclasses); None when no conversion is needed.
        array_class: the pyarrow array class of a vectorized annotation, else None.
    """

    type: pa.DataType
    nullable: bool
    to_python: Converter | None = None
    to_arrow: Converter | None = None
    array_class: type | None = None


def describe_annotation(tp: object) -> str:
    """A short spelling of an annotation for messages: ``list[int]``, ``Optional[Point]``, ``pa.Array``."""
    if tp is _NONE_TYPE or tp is None:
        return "None"
    if tp is typing.Any:
        return "Any"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return f"Annotated[{', '.join([describe_annotation(args[0]), *map(repr, args[1:])])}]"
    if origin in _UNION_ORIGINS:
        arm = _optional_arm(tp)
        if arm is not None:
            return f"Optional[{describe_annotation(arm)}]"
        return f"Union[{', '.join(map(describe_annotation, args))}]"
    if origin is not None and args:
        name = getattr(origin, "__qualname__", None) or repr(origin).replace("typing.", "")
        return f"{name}[{', '.join(map(describe_annotation, args))}]"
    if _is_class(tp):
        assert isinstance(tp, type)
        if tp.__module__.startswith("pyarrow"):
            return f"pa.{tp.__qualname__}"
        return tp.__qualname__
    name = getattr(tp, "__name__", None)  # typing.NewType and friends
    if isinstance(name, str):
        return name
    return repr(tp).replace("typing.", "")


def _is_class(tp: object) -> bool:
    """Whether tp is a real class (``list[int]`` passes isinstance(..., type) on Python 3.10)."""
    return isinstance(tp, type) and not isinstance(tp, types.GenericAlias)


def _strip_annotated(tp: object) -> tuple[object, tuple[object, ...]]:
    if typing.get_origin(tp) is typing.Annotated:
        args = typing.get_args(tp)
        return args[0], tuple(args[1:])
    return tp, ()


def _optional_arm(tp: object) -> object | None:
    """T for Optional[T] / T | None / Union[T, None]; None when tp is not such a union."""
    if typing.get_origin(tp) not in _UNION_ORIGINS:
        return None
    args = typing.get_args(tp)
    arms: list[object] = [a for a in args if a is not _NONE_TYPE]
    if len(arms) == 1 and len(args) == 2:
        return arms[0]
    return None


def is_optional(tp: object) -> bool:
    """Whether an annotation admits None at the top level (through Annotated and NewType)."""
    while True:
        base, _ = _strip_annotated(tp)
        if base is not tp:
            tp = base
            continue
        supertype = getattr(tp, "__supertype__", None)
        if supertype is not None and not isinstance(tp, type):
            tp = supertype
            continue
        return _optional_arm(tp) is not None


def array_class_of(tp: object) -> type | None:
    """The pyarrow array class an annotation names (through Optional and Annotated), else None."""
    while True:
        base, _ = _strip_annotated(tp)
        arm = _optional_arm(base)
        inner = base if arm is None else arm
        if inner is tp:
            break
        tp = inner
    if _is_class(tp) and issubclass(tp, pa.Array):  # type: ignore[arg-type]
        return tp  # type: ignore[return-value]
    return None


_RequiredWrappers = tuple(
    obj
    for module in (typing, sys.modules.get("typing_extensions"))
    if module is not None
    for obj in (getattr(module, "Required", None), getattr(module, "NotRequired", None))
    if obj is not None
)


def _strip_required(tp: object) -> object:
    while typing.get_origin(tp) in _RequiredWrappers or getattr(typing.get_origin(tp), "_name", None) in (
        "Required",
        "NotRequired",
        "ReadOnly",
    ):
        tp = typing.get_args(tp)[0]
    return tp


def _is_typeddict(tp: object) -> bool:
    if typing.is_typeddict(tp):
        return True
    return (
        isinstance(tp, type)
        and issubclass(tp, dict)
        and hasattr(tp, "__total__")
        and hasattr(tp, "__required_keys__")
    )


class _Inferrer:
    """One inference: the fix to suggest, where names resolve, and the classes being expanded."""

    def __init__(self, fix: str, globalns: Mapping[str, Any] | None) -> None:
        self.fix = fix
        self.globalns = globalns
        self.expanding: list[type] = []

    def unsupported(self, tp: object, within: str | None) -> AnnotationError:
        where = f" ({within})" if within else ""
        return AnnotationError(f"type {describe_annotation(tp)}{where} is not supported; {_SUPPORTED}")

    def infer(self, tp: object, *, top: bool, within: str | None) -> TypeInfo:
        base, metadata = _strip_annotated(tp)
        if base is not tp:
            return self.infer_annotated(tp, base, metadata, top=top, within=within)
        arm = _optional_arm(tp)
        if arm is not None:
            inner = self.infer(arm, top=top, within=within)
            return dataclasses.replace(inner, nullable=True)
        if typing.get_origin(tp) in _UNION_ORIGINS:
            raise AnnotationError(
                f"type {describe_annotation(tp)}{f' ({within})' if within else ''} is not supported: "
                f"a union other than Optional[T] has no single Arrow type; {_SUPPORTED}"
            )
        supertype = getattr(tp, "__supertype__", None)
        if supertype is not None and not isinstance(tp, type):  # typing.NewType
            return self.infer(supertype, top=top, within=within)
        if _is_class(tp) and tp in _SCALAR_TYPES:
            return TypeInfo(_SCALAR_TYPES[tp], nullable=False)
        origin = typing.get_origin(tp)
        if tp is list or origin is list:
            return self.infer_list(tp, within)
        if tp is dict or origin is dict:
            return self.infer_dict(tp, within)
        if _is_class(tp) and issubclass(tp, pa.Array):  # type: ignore[arg-type]
            return self.infer_array_class(tp, top=top, within=within)  # type: ignore[arg-type]
        if _is_class(tp) and dataclasses.is_dataclass(tp):
            return self.infer_dataclass(tp)  # type: ignore[arg-type]
        if _is_class(tp) and _is_typeddict(tp):
            assert isinstance(tp, type)
            return self.infer_typeddict(tp)
        raise self.unsupported(tp, within)

    def infer_annotated(
        self, tp: object, base: object, metadata: tuple[object, ...], *, top: bool, within: str | None
    ) -> TypeInfo:
        arrow_types = [m for m in metadata if isinstance(m, pa.DataType)]
        if not arrow_types:
            return self.infer(base, top=top, within=within)
        if len(arrow_types) > 1:
            raise AnnotationError(
                f"type {describe_annotation(tp)} names {len(arrow_types)} Arrow types; keep one"
            )
        return self.with_type(base, arrow_types[0], top=top)

    def with_type(self, base: object, arrow_type: pa.DataType, *, top: bool) -> TypeInfo:
        """An explicit Arrow type for an annotation: nullability and converters still come from it."""
        nullable = is_optional(base)
        array_class = array_class_of(base) if top else None
        try:
            inferred: TypeInfo | None = self.infer(base, top=top, within=None)
        except (AnnotationError, NameError):
            inferred = None
        if inferred is None or _shape(inferred.type) != _shape(arrow_type):
            return TypeInfo(arrow_type, nullable, array_class=array_class)
        return TypeInfo(arrow_type, nullable, inferred.to_python, inferred.to_arrow, array_class)

    def infer_array_class(self, tp: type, *, top: bool, within: str | None) -> TypeInfo:
        if not top:
            raise AnnotationError(
                f"type {describe_annotation(tp)}{f' ({within})' if within else ''} is not supported: "
                "pyarrow arrays can only annotate a whole parameter or return value of a vectorized UDF"
            )
        arrow_type = _ARRAY_TYPES.get(tp)
        if arrow_type is None:
            example = "pa.timestamp('us')" if issubclass(tp, pa.TimestampArray) else "pa.int64()"
            what = (
                "does not say which Arrow type it holds" if tp is pa.Array else "does not fix its Arrow type"
            )
            raise AnnotationError(
                f"{describe_annotation(tp)} {what}; use Annotated[{describe_annotation(tp)}, {example}] "
                f"or pass {self.fix}"
            )
        return TypeInfo(arrow_type, nullable=False, array_class=tp)

    def infer_list(self, tp: object, within: str | None) -> TypeInfo:
        args = typing.get_args(tp)
        if len(args) != 1:
            raise AnnotationError(
                f"type {describe_annotation(tp)}{f' ({within})' if within else ''} needs an item type, "
                "as in list[int]"
            )
        item = self.infer(args[0], top=False, within=f"in {describe_annotation(tp)}")
        arrow_type = pa.list_(pa.field("item", item.type, nullable=item.nullable))
        to_python = _list_converter(item.to_python)
        to_arrow = _list_converter(item.to_arrow)
        return TypeInfo(arrow_type, nullable=False, to_python=to_python, to_arrow=to_arrow)

    def infer_dict(self, tp: object, within: str | None) -> TypeInfo:
        args = typing.get_args(tp)
        if len(args) != 2:
            raise AnnotationError(
                f"type {describe_annotation(tp)}{f' ({within})' if within else ''} needs key and value "
                "types, as in dict[str, int]"
            )
        inside = f"in {describe_annotation(tp)}"
        key = self.infer(args[0], top=False, within=inside)
        if key.nullable:
            raise AnnotationError(
                f"map keys cannot be Optional ({inside}); Arrow map keys are never null, so use "
                f"dict[{describe_annotation(_optional_arm(_strip_annotated(args[0])[0]) or args[0])}, ...]"
            )
        if key.to_python is not None or _shape(key.type) != _LEAF:
            raise AnnotationError(
                f"map keys must be scalars such as str or int, not {describe_annotation(args[0])} ({inside})"
            )
        value = self.infer(args[1], top=False, within=inside)
        arrow_type = pa.map_(key.type, pa.field("value", value.type, nullable=value.nullable))
        to_python = _dict_converter(value.to_python)
        to_arrow = _dict_converter(value.to_arrow)
        return TypeInfo(arrow_type, nullable=False, to_python=to_python, to_arrow=to_arrow)

    def class_hints(self, cls: type) -> dict[str, Any]:
        try:
            return typing.get_type_hints(cls, include_extras=True)
        except NameError:
            if self.globalns is None:
                raise
            # The class's module may not be in sys.modules (loaded by path): use the function's globals.
            return typing.get_type_hints(cls, localns=dict(self.globalns), include_extras=True)

    def enter(self, cls: type) -> None:
        if cls in self.expanding:
            chain = " -> ".join(c.__qualname__ for c in [*self.expanding, cls])
            raise AnnotationError(f"type {cls.__qualname__} is recursive ({chain}); Arrow types cannot be")
        self.expanding.append(cls)

    def infer_dataclass(self, cls: type) -> TypeInfo:
        self.enter(cls)
        try:
            hints = self.class_hints(cls)
            fields: list[pa.Field] = []
            names: list[str] = []
            to_python: list[Converter | None] = []
            for f in dataclasses.fields(cls):
                if not f.init:
                    raise AnnotationError(
                        f"dataclass {cls.__qualname__} field {f.name} has init=False, so fletch cannot "
                        "build the dataclass from a struct value"
                    )
                child = self.infer(hints[f.name], top=False, within=f"field {f.name} of {cls.__qualname__}")
                fields.append(pa.field(f.name, child.type, nullable=child.nullable))
                names.append(f.name)
                to_python.append(child.to_python)
        finally:
            self.expanding.pop()
        return TypeInfo(
            pa.struct(fields),
            nullable=False,
            to_python=_dataclass_builder(cls, names, to_python),
            to_arrow=_dataclass_to_dict,
        )

    def infer_typeddict(self, cls: type) -> TypeInfo:
        self.enter(cls)
        try:
            hints = self.class_hints(cls)
            optional_keys: frozenset[str] = getattr(cls, "__optional_keys__", frozenset())
            fields: list[pa.Field] = []
            names: list[str] = []
            to_python: list[Converter | None] = []
            to_arrow: list[Converter | None] = []
            for name, hint in hints.items():
                child = self.infer(
                    _strip_required(hint), top=False, within=f"field {name} of {cls.__qualname__}"
                )
                nullable = child.nullable or name in optional_keys
                fields.append(pa.field(name, child.type, nullable=nullable))
                names.append(name)
                to_python.append(child.to_python)
                to_arrow.append(child.to_arrow)
        finally:
            self.expanding.pop()
        return TypeInfo(
            pa.struct(fields),
            nullable=False,
            to_python=_typeddict_converter(names, to_python),
            to_arrow=_typeddict_converter(names, to_arrow),
        )


_LEAF: Final = ("leaf",)


def _shape(t: pa.DataType) -> tuple[object, ...]:
    """The nesting structure of a type, which decides whether converters from an annotation still apply."""
    if isinstance(t, pa.StructType):
        return ("struct", tuple(_shape(t.field(i).type) for i in range(t.num_fields)))
    if isinstance(t, pa.MapType):
        return ("map", _shape(t.item_type))
    if isinstance(t, (pa.ListType, pa.LargeListType, pa.FixedSizeListType)):
        return ("list", _shape(t.value_type))
    return _LEAF


def _list_converter(item: Converter | None) -> Converter | None:
    if item is None:
        return None

    def convert(values: Any) -> Any:
        return [None if v is None else item(v) for v in values]

    return convert


def _dict_converter(value: Converter | None) -> Converter | None:
    if value is None:
        return None

    def convert(mapping: Any) -> Any:
        if not isinstance(mapping, Mapping):
            return mapping
        return {k: None if v is None else value(v) for k, v in mapping.items()}

    return convert


def _dataclass_builder(cls: type, names: list[str], converters: list[Converter | None]) -> Converter:
    pairs = tuple(zip(names, converters, strict=True))

    def build(struct: Any) -> Any:
        # Fields are matched by position, so struct field names need not match the dataclass's.
        kwargs = {
            name: value if conv is None or value is None else conv(value)
            for (name, conv), value in zip(pairs, struct.values(), strict=True)
        }
        return cls(**kwargs)

    return build


def _dataclass_to_dict(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _typeddict_converter(names: list[str], converters: list[Converter | None]) -> Converter | None:
    if all(conv is None for conv in converters):
        return None
    pairs = dict(zip(names, converters, strict=True))

    def convert(struct: Any) -> Any:
        if not isinstance(struct, Mapping):
            return struct
        out = {}
        for key, value in struct.items():
            conv = pairs.get(key)
            out[key] = value if conv is None or value is None else conv(value)
        return out

    return convert


def infer(
    tp: object, *, fix: str = "input_types=[...]", globalns: Mapping[str, Any] | None = None
) -> TypeInfo:
    """Map a resolved annotation (from ``typing.get_type_hints(..., include_extras=True)``) to Arrow.

    ``decimal.Decimal`` maps to ``decimal128(38, 9)`` (:data:`DEFAULT_DECIMAL`); use
    ``Annotated[Decimal, pa.decimal128(P, S)]`` for another precision or scale. Nested children are
    non-nullable unless Optional; map keys are never nullable. A pyarrow array class is accepted at the
    top level (for vectorized UDFs) and sets :attr:`TypeInfo.array_class`.

    Args:
        tp: the annotation.
        fix: how to bypass inference, suggested in errors (``input_types=[...]`` or ``result_type=...``).
        globalns: where names in dataclass and TypedDict annotations resolve when their module is not
            importable (usually the UDF's ``__globals__``).

    Raises:
        AnnotationError: a TypeError whose message says what is unsupported and how to fix it.
    """
    return _Inferrer(fix, globalns).infer(tp, top=True, within=None)


def override(tp: object, arrow_type: pa.DataType, *, globalns: Mapping[str, Any] | None = None) -> TypeInfo:
    """An explicit Arrow type for a value annotated tp (which may be unsupported or absent, as ``None``).

    Nullability comes from tp being Optional; the converters of tp are kept when tp is supported and has
    the same nesting structure as arrow_type (so a dataclass annotation still receives dataclasses).
    """
    return _Inferrer("input_types=[...]", globalns).with_type(tp, arrow_type, top=True)
