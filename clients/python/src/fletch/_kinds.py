"""Table functions (``@udtf``), aggregates (``@udaf``) and batch transforms (``@transform``).

Each decorator builds a spec at import time, stores it on the function or class as ``__fletch_udf__`` (so
:func:`fletch.collect` finds it) and returns the function or class unchanged.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import hashlib
import hmac
import inspect
import os
import pickle
import secrets
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

import pyarrow as pa

from fletch._errors import UdfError
from fletch._eval import ResultPlan, RowwiseEvaluator, TableEvaluator, exception_type_name
from fletch._types import TypeInfo, array_class_of, describe_annotation, type_text
from fletch._udf import (
    _ATTRIBUTE,
    _VOLATILITIES,
    Param,
    SpecBase,
    Volatility,
    _check_formattable,
    _check_name,
    _explicit_input_types,
    _explicit_type,
    _infer,
    _type_hints,
    infer_params,
    positional_params,
)

__all__ = ["AggregateSpec", "TableSpec", "TransformSpec", "transform", "udaf", "udtf"]

_T = TypeVar("_T")

_ITERABLE_ORIGINS: Final = (
    collections.abc.Iterator,
    collections.abc.Iterable,
    collections.abc.Generator,
    collections.abc.Sequence,
    list,
)


def _describe(
    name: str, kind: str, params: Sequence[Param], result: Param, doc: str, volatility: str
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "language": "python",
        "params": [p.describe() for p in params],
        "return": result.describe(),
        "doc": doc,
        "volatility": volatility,
        "on_error": "raise",
        "version": "",
    }


STATE_KEY_ENV: Final = "FLETCH_STATE_KEY"
"""The environment variable (hex) holding the key that signs aggregate states; the server sets it."""

_STATE_MAC: Final = hashlib.sha256
_STATE_MAC_SIZE: Final = _STATE_MAC().digest_size
# Without a key from the server (fletch.testing, say), states round-trip within this process only.
_PROCESS_STATE_KEY: Final = secrets.token_bytes(32)


def state_key() -> bytes:
    """The key that signs aggregate states: the server's, or one made for this process."""
    text = os.environ.get(STATE_KEY_ENV, "")
    return bytes.fromhex(text) if text else _PROCESS_STATE_KEY


def _store(label: str, target: Any, spec: SpecBase) -> None:
    try:
        setattr(target, _ATTRIBUTE, spec)
    except (AttributeError, TypeError):
        raise TypeError(f"{label}: cannot store the spec on {type(target).__name__} objects") from None


def _check_volatility(label: str, volatility: str) -> None:
    if volatility not in _VOLATILITIES:
        raise ValueError(f"{label}: volatility must be one of {', '.join(_VOLATILITIES)}, not {volatility!r}")


# ----------------------------------------------------------------------------------------------------------
# Table functions
# ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class TableSpec(SpecBase):
    """A table function: each input row yields zero or more output rows."""

    name: str
    function: Callable[..., Any]
    params: list[Param]
    result: Param
    volatility: Volatility
    doc: str
    _evaluator: TableEvaluator = dataclasses.field(repr=False)

    def describe(self) -> dict[str, Any]:
        """The JSON description; the server puts ``row`` (int32) before the result's columns."""
        return _describe(self.name, "table", self.params, self.result, self.doc, self.volatility)

    def output_schema(self) -> pa.Schema:
        """``row`` (int32), then the result, or its fields when it is a struct (a tuple or dataclass).

        Result columns are nullable, as the server declares every result column (docs/types.md)."""
        fields = [pa.field("row", pa.int32(), nullable=False)]
        rt = self.result.type
        if isinstance(rt, pa.StructType):
            fields.extend(rt.field(i).with_nullable(True) for i in range(rt.num_fields))
        else:
            fields.append(pa.field(self.name, rt))
        return pa.schema(fields)

    def outputs(self, batch: pa.RecordBatch) -> list[pa.RecordBatch]:
        """What a worker returns for batch: its rows, with ``row`` counted within the batch."""
        return [self.table(batch)]

    def table(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The rows yielded for batch: ``row`` is each value's input row within the batch."""
        rows, values = self._evaluator.table(batch)
        schema = self.output_schema()
        columns = [rows, *values.flatten()] if isinstance(values.type, pa.StructType) else [rows, values]
        return pa.RecordBatch.from_arrays(columns, schema=schema)


def _element_info(label: str, hint: object, globalns: Mapping[str, Any] | None) -> TypeInfo:
    """The Arrow type of what a table function yields, from ``Iterator[T]`` (or Iterable, Generator, list)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin not in _ITERABLE_ORIGINS or not args:
        raise TypeError(
            f"{label}: the return annotation must be Iterator[T] (or Iterable, Generator or list of T), "
            f"not {describe_annotation(hint)}; it says what each output row is"
        )
    element = args[0]
    if typing.get_origin(element) is tuple or _is_namedtuple(element):
        return _tuple_info(label, element, globalns)
    return _infer(label, "return", element, "result_type=...", globalns)


def _is_namedtuple(tp: object) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def _tuple_info(label: str, element: Any, globalns: Mapping[str, Any] | None) -> TypeInfo:
    """A tuple element gives one output column per item: named after a NamedTuple's fields, else c0, c1..."""
    if _is_namedtuple(element):
        hints = typing.get_type_hints(element, include_extras=True)
        names = list(element._fields)
        items = [hints[n] for n in names]
    else:
        items = list(typing.get_args(element))
        if len(items) == 2 and items[1] is Ellipsis:
            raise TypeError(f"{label}: tuple[T, ...] has no fixed columns; give each column a type")
        names = [f"c{i}" for i in range(len(items))]
    fields = []
    for name, item in zip(names, items, strict=True):
        info = _infer(label, f"column {name}: ", item, "result_type=...", globalns)
        fields.append(pa.field(name, info.type, nullable=info.nullable))
    return TypeInfo(
        pa.struct(fields), nullable=False, to_arrow=lambda value: dict(zip(names, value, strict=True))
    )


@typing.overload
def udtf(fn: _T, /) -> _T: ...


@typing.overload
def udtf(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    input_types: Sequence[str | pa.DataType] | None = None,
    result_type: str | pa.DataType | None = None,
    volatility: Volatility = "volatile",
    doc: str | None = None,
) -> Callable[[_T], _T]: ...


def udtf(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    input_types: Sequence[str | pa.DataType] | None = None,
    result_type: str | pa.DataType | None = None,
    volatility: Volatility = "volatile",
    doc: str | None = None,
) -> Any:
    """Declare a table function: a generator (or a function returning an iterable) called once per input row.

    Each value it yields is an output row. The output is a ``row`` column (int32: the index of the input
    row it came from, counted across the exchange) followed by the value; a tuple, NamedTuple or dataclass
    value gives one column per item. Annotate the return as ``Iterator[T]``; ``result_type`` overrides
    ``T``. Parameters follow ``@udf``'s rules, including the null policy: an input row with a null in a
    non-Optional parameter yields nothing.
    """

    def decorate(function: Any) -> Any:
        label = f"udtf {getattr(function, '__qualname__', function)!s}"
        udtf_name = _check_name(label, name if name is not None else getattr(function, "__name__", ""))
        _check_volatility(label, volatility)
        parameters = positional_params(label, function)
        explicit_inputs = _explicit_input_types(label, parameters, input_types)
        hints = _type_hints(
            label, function, fully_explicit=explicit_inputs is not None and result_type is not None
        )
        globalns = getattr(function, "__globals__", None)
        params, plans = infer_params(label, parameters, hints, explicit_inputs, globalns)
        if result_type is not None:
            info = TypeInfo(_explicit_type(label, "result_type", result_type), nullable=True)
        elif "return" not in hints:
            raise TypeError(
                f"{label}: the return value has no type annotation; annotate it (-> Iterator[int])"
            )
        else:
            info = _element_info(label, hints["return"], globalns)
        _check_formattable(label, "the yielded value", info.type)
        plan = ResultPlan(info.type, info.nullable, info.to_arrow, type_text(info.type))
        spec = TableSpec(
            name=udtf_name,
            function=function,
            params=params,
            result=Param(udtf_name, info.type, True),
            volatility=volatility,
            doc=doc if doc is not None else (inspect.getdoc(function) or ""),
            _evaluator=TableEvaluator(udtf_name, function, plans, plan),
        )
        _store(label, function, spec)
        return function

    return decorate if fn is None else decorate(fn)


# ----------------------------------------------------------------------------------------------------------
# Aggregates
# ----------------------------------------------------------------------------------------------------------


class _Accumulator(RowwiseEvaluator):
    """Feeds a batch's rows (those the null policy lets through) to one aggregate state."""

    def accumulate(self, state: Any, batch: pa.RecordBatch) -> None:
        args, count, row_of, _ = self._prepare(batch)
        rows: Any = zip(*args, strict=True) if args else ((),) * count
        for i, row in enumerate(rows):
            try:
                state.accumulate(*row)
            except Exception as err:
                raise UdfError.from_exception(self._name, row_of(i), err) from err


_PHASES: Final = ("", "partial", "combine", "merge")


@dataclasses.dataclass(frozen=True, eq=False)
class AggregateSpec(SpecBase):
    """An aggregate: a class whose instances accumulate rows and finish with one value."""

    name: str
    cls: type
    params: list[Param]
    result: Param
    volatility: Volatility
    doc: str
    vectorized: bool
    _accumulator: _Accumulator = dataclasses.field(repr=False)
    _result_plan: ResultPlan = dataclasses.field(repr=False)

    @property
    def mergeable(self) -> bool:
        """Whether the class has a merge method, so partial states can be combined."""
        return callable(getattr(self.cls, "merge", None))

    def describe(self) -> dict[str, Any]:
        described = _describe(self.name, "aggregate", self.params, self.result, self.doc, self.volatility)
        if self.mergeable:
            described["mergeable"] = True
        return described

    def output_schema(self) -> pa.Schema:
        return pa.schema([pa.field(self.name, self.result.type)])

    def open(self, options: Mapping[str, Any], *, key: bytes | None = None) -> _AggregateSession:
        """A fresh state for one exchange.

        Options: ``running`` also emits the result after every batch; ``phase`` is ``partial`` (rows in, a
        state out), ``combine`` (states in, a state out) or ``merge`` (states in, the result out). States
        are pickles signed with key (default :func:`state_key`), so only states this server (or one
        sharing its key) made are ever unpickled.
        """
        phase = options.get("phase") or ""
        if phase not in _PHASES:
            raise ValueError(f"{self.name}: phase {phase!r} is not partial, combine or merge")
        if phase in ("combine", "merge") and not self.mergeable:
            raise ValueError(
                f"{self.name}: phase {phase} needs a merge method, and {self.cls.__name__} has none"
            )
        try:
            state = self.cls()
        except Exception as err:
            raise UdfError.from_exception(self.name, None, err) from err
        return _AggregateSession(
            self, state, running=bool(options.get("running")), phase=phase, key=key or state_key()
        )

    def accumulate(self, state: Any, batch: pa.RecordBatch) -> None:
        """Feed batch to state: row by row, or as whole columns for a vectorized accumulate."""
        if not self.vectorized:
            self._accumulator.accumulate(state, batch)
            return
        columns = self._accumulator._columns(batch)
        mask = self._accumulator._valid_mask(columns)
        if mask is not None:
            columns = [c.filter(mask) for c in columns]
        try:
            state.accumulate(*columns)
        except Exception as err:
            raise UdfError.from_exception(self.name, None, err) from err

    def value(self, state: Any) -> pa.Array:
        """state's result, as a one-value array."""
        try:
            value = state.finish()
        except Exception as err:
            raise UdfError.from_exception(self.name, None, err) from err
        plan = self._result_plan
        if value is None and not plan.nullable:
            raise UdfError(
                self.name,
                None,
                "TypeError",
                f"{self.name}.finish returned None, but its return type is not Optional",
            )
        if value is not None and plan.to_arrow is not None:
            value = plan.to_arrow(value)
        try:
            return pa.array([value], type=plan.type)
        except Exception as err:
            raise UdfError(
                self.name, None, exception_type_name(type(err)), f"finish returned {value!r}: {err}"
            ) from err

    def merge(self, state: Any, other: Any) -> None:
        """Fold other's partial state into state, with the class's merge method."""
        merge = getattr(state, "merge", None)
        if merge is None:
            raise TypeError(f"udaf {self.name}: the class has no merge method")
        try:
            merge(other)
        except Exception as err:
            raise UdfError.from_exception(self.name, None, err) from err

    def dump_state(self, state: Any, key: bytes) -> bytes:
        """state serialised: an HMAC-SHA256 of the pickle under key, then the pickle."""
        try:
            payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:
            raise UdfError.from_exception(self.name, None, err) from err
        return hmac.digest(key, payload, _STATE_MAC) + payload

    def load_state(self, blob: bytes, key: bytes, row: int) -> Any:
        """A state dump_state made with the same key; anything else is refused before unpickling."""
        mac, payload = blob[:_STATE_MAC_SIZE], blob[_STATE_MAC_SIZE:]
        if len(mac) < _STATE_MAC_SIZE or not hmac.compare_digest(mac, hmac.digest(key, payload, _STATE_MAC)):
            raise UdfError(
                self.name,
                row,
                "ValueError",
                f"state in row {row} is not one this server made: its signature does not match "
                "(servers that exchange states need the same --state-key-file)",
            )
        state = pickle.loads(payload)  # authenticated above, so this server (or a peer) made it
        if not isinstance(state, self.cls):
            raise UdfError(
                self.name,
                row,
                "TypeError",
                f"state in row {row} is a {type(state).__name__}, not {self.cls.__name__}",
            )
        return state


class _AggregateSession:
    def __init__(self, spec: AggregateSpec, state: Any, *, running: bool, phase: str, key: bytes) -> None:
        self._spec = spec
        self._state = state
        self._running = running
        self._states_in = phase in ("combine", "merge")
        self._states_out = phase in ("partial", "combine")
        self._key = key

    def process(self, batch: pa.RecordBatch) -> list[pa.RecordBatch]:
        if self._states_in:
            for row, blob in enumerate(batch.column(0).to_pylist()):
                if blob is not None:
                    self._spec.merge(self._state, self._spec.load_state(blob, self._key, row))
        else:
            self._spec.accumulate(self._state, batch)
        return [self._result()] if self._running else []

    def finish(self) -> list[pa.RecordBatch]:
        return [self._result()]

    def _result(self) -> pa.RecordBatch:
        if self._states_out:
            blob = self._spec.dump_state(self._state, self._key)
            return pa.record_batch([pa.array([blob], pa.binary())], names=["state"])
        return pa.RecordBatch.from_arrays([self._spec.value(self._state)], schema=self._spec.output_schema())


def udaf(
    cls: Any = None,
    /,
    *,
    name: str | None = None,
    volatility: Volatility = "volatile",
    doc: str | None = None,
) -> Any:
    """Declare an aggregate: a class with ``accumulate(self, ...)``, ``finish(self) -> T`` and, optionally,
    ``merge(self, other)``.

    Each exchange gets a fresh instance (made with no arguments) in one worker. ``accumulate``'s
    annotations give the parameters (pyarrow array annotations make it vectorized: called once per batch
    with whole columns); rows with a null in a non-Optional parameter are skipped, as SQL aggregates skip
    nulls. ``finish``'s return annotation gives the result type. The output is one row at the end of
    input; with the exchange option ``{"running": true}`` also one row after every batch. ``merge``
    combines partial states: aggregating parts separately and merging must equal one pass.
    """

    def decorate(target: Any) -> Any:
        label = f"udaf {getattr(target, '__qualname__', target)!s}"
        if not isinstance(target, type):
            raise TypeError(f"{label}: decorate a class with accumulate and finish methods")
        for method in ("accumulate", "finish"):
            if not callable(getattr(target, method, None)):
                raise TypeError(f"{label}: the class has no {method} method")
        udaf_name = _check_name(label, name if name is not None else target.__name__)
        _check_volatility(label, volatility)
        accumulate = target.accumulate  # type: ignore[attr-defined]
        parameters = positional_params(label, accumulate, skip_self=True)
        hints = _type_hints(label, accumulate, fully_explicit=False)
        globalns = getattr(accumulate, "__globals__", None)
        vectorized = any(p.name in hints and array_class_of(hints[p.name]) is not None for p in parameters)
        params, plans = infer_params(label, parameters, hints, None, globalns)
        finish_hints = _type_hints(label, target.finish, fully_explicit=False)  # type: ignore[attr-defined]
        if "return" not in finish_hints:
            raise TypeError(f"{label}: finish has no return annotation; annotate it (-> float)")
        info = _infer(label, "return", finish_hints["return"], "result_type=...", globalns)
        _check_formattable(label, "finish's result", info.type)
        plan = ResultPlan(
            info.type, info.nullable, info.to_arrow, describe_annotation(finish_hints["return"])
        )
        spec = AggregateSpec(
            name=udaf_name,
            cls=target,
            params=params,
            result=Param(udaf_name, info.type, True),
            volatility=volatility,
            doc=doc if doc is not None else (inspect.getdoc(target) or ""),
            vectorized=vectorized,
            _accumulator=_Accumulator(udaf_name, accumulate, plans, plan),
            _result_plan=plan,
        )
        _store(label, target, spec)
        return target

    return decorate if cls is None else decorate(cls)


# ----------------------------------------------------------------------------------------------------------
# Batch transforms
# ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class TransformSpec(SpecBase):
    """A batch transform: whole batches in, any number of batches of any length out."""

    name: str
    target: Any
    params: list[Param]
    result: Param
    volatility: Volatility
    doc: str
    input_schema: pa.Schema
    _output_schema: pa.Schema = dataclasses.field(repr=False)

    def describe(self) -> dict[str, Any]:
        """The JSON description: the input schema's fields as parameters, the output's as a struct result."""
        return _describe(self.name, "transform", self.params, self.result, self.doc, self.volatility)

    def output_schema(self) -> pa.Schema:
        """The declared output columns, each nullable, as the server declares every result column."""
        return pa.schema([f.with_nullable(True) for f in self._output_schema])

    def open(self, options: Mapping[str, Any]) -> _TransformSession:
        """The callable for one exchange: a fresh instance of a class, or the function itself."""
        if isinstance(self.target, type):
            try:
                return _TransformSession(self, self.target())
            except Exception as err:
                raise UdfError.from_exception(self.name, None, err) from err
        return _TransformSession(self, self.target)


class _TransformSession:
    def __init__(self, spec: TransformSpec, call: Any) -> None:
        self._spec = spec
        self._call = call

    def process(self, batch: pa.RecordBatch) -> list[pa.RecordBatch]:
        return self._normalize(self._invoke(self._call, batch))

    def finish(self) -> list[pa.RecordBatch]:
        finish = getattr(self._call, "finish", None)
        return [] if finish is None else self._normalize(self._invoke(finish))

    def _invoke(self, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except Exception as err:
            raise UdfError.from_exception(self._spec.name, None, err) from err

    def _normalize(self, produced: Any) -> list[pa.RecordBatch]:
        if produced is None:
            return []
        if isinstance(produced, (pa.RecordBatch, pa.Table)):
            produced = [produced]
        schema = self._spec.output_schema()
        out: list[pa.RecordBatch] = []
        for item in produced:
            batches = item.to_batches() if isinstance(item, pa.Table) else [item]
            for batch in batches:
                if not isinstance(batch, pa.RecordBatch):
                    raise UdfError(
                        self._spec.name,
                        None,
                        "TypeError",
                        f"{self._spec.name} produced {type(batch).__name__}; "
                        "a transform returns record batches",
                    )
                if batch.schema.types != schema.types:
                    raise UdfError(
                        self._spec.name,
                        None,
                        "TypeError",
                        f"{self._spec.name} produced columns {batch.schema.types}, but its output schema is "
                        f"{schema.types}",
                    )
                out.append(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
        return out


def _schema_of(label: str, value: object) -> pa.Schema:
    """A schema from a pa.Schema, a struct type (or its text), or a mapping of names to types (or text)."""
    if isinstance(value, pa.Schema):
        return value
    if isinstance(value, str):
        value = _explicit_type(label, "schema", value)
    if isinstance(value, pa.StructType):
        return pa.schema([value.field(i) for i in range(value.num_fields)])
    if isinstance(value, Mapping):
        return pa.schema([pa.field(k, _explicit_type(label, f"column {k}", v)) for k, v in value.items()])
    raise TypeError(
        f"{label}: a schema is a pa.Schema, a struct type text or a dict of column types, not {value!r}"
    )


def transform(
    fn: Any = None,
    /,
    *,
    input_schema: object,
    output_schema: object = None,
    name: str | None = None,
    volatility: Volatility = "volatile",
    doc: str | None = None,
) -> Any:
    """Declare a batch transform: ``f(batch: pa.RecordBatch) -> pa.RecordBatch | Iterable[pa.RecordBatch]``.

    Whole batches go in; any number of batches, of any length, come out. A class (with ``__call__`` and an
    optional ``finish()`` that returns the last batches) gets a fresh instance per exchange, so its state
    lives across the exchange's batches in one worker. ``input_schema`` is required (a pa.Schema, a struct
    type text or a dict of column types); ``output_schema`` likewise, or it is inferred by calling the
    transform on an empty input batch.
    """

    def decorate(target: Any) -> Any:
        label = f"transform {getattr(target, '__qualname__', target)!s}"
        tf_name = _check_name(label, name if name is not None else getattr(target, "__name__", ""))
        _check_volatility(label, volatility)
        schema_in = _schema_of(label, input_schema)
        if output_schema is not None:
            schema_out = _schema_of(label, output_schema)
        else:
            schema_out = _infer_output(label, target, schema_in)
        for f in [*schema_in, *schema_out]:
            _check_formattable(label, f"column {f.name}", f.type)
        params = [Param(f.name, f.type, f.nullable) for f in schema_in]
        struct = pa.struct(list(schema_out))
        spec = TransformSpec(
            name=tf_name,
            target=target,
            params=params,
            result=Param(tf_name, struct, True),
            volatility=volatility,
            doc=doc if doc is not None else (inspect.getdoc(target) or ""),
            input_schema=schema_in,
            _output_schema=schema_out,
        )
        _store(label, target, spec)
        return target

    return decorate if fn is None else decorate(fn)


def _infer_output(label: str, target: Any, schema_in: pa.Schema) -> pa.Schema:
    """The output schema, from calling the transform on an empty batch."""
    call = target() if isinstance(target, type) else target
    empty = pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema_in], schema=schema_in)
    produced = call(empty)
    if isinstance(produced, (pa.RecordBatch, pa.Table)):
        return produced.schema
    for item in produced if isinstance(produced, Iterable) else []:
        if isinstance(item, (pa.RecordBatch, pa.Table)):
            return item.schema
    raise TypeError(
        f"{label}: called on an empty batch it produced no batch to learn the output schema from; "
        "pass output_schema="
    )
