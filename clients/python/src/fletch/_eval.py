"""Evaluation of fletch UDFs over Arrow record batches: row-wise and vectorized.

This is the hot path. Row-wise evaluation converts each column once with ``to_pylist``, calls the function in
one of the loops of ``_rowloops`` (no Python work per row besides the call, and a None test where a
non-Optional parameter has nulls) and converts the results once with ``pa.array``. When such a parameter has
many nulls, when there are more than two parameters, and when errors are collected (``on_error``), the rows
it is null in are dropped with one Arrow ``filter`` instead and put back as nulls with one kernel. Type
conversions (``to_python``, ``to_arrow``) run only for the types that need them. A failing row is located
after the fact, from how far the loop got: the loops do no bookkeeping per row, and no row is called twice.
Vectorized evaluation calls the function once and only does Arrow array operations.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import itertools
import operator
import os
import traceback as _traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from fletch._errors import UdfError
from fletch._rowloops import (
    RowFailure,
    call_each,
    call_skipping_none,
    drops_nulls,
    expand,
    same_row,
    skipped_rows,
)
from fletch._types import Converter, type_text

__all__ = [
    "AsyncRowwiseEvaluator",
    "ParamPlan",
    "ResultPlan",
    "RowwiseEvaluator",
    "UdfError",
    "VectorizedEvaluator",
    "exception_type_name",
]

_TRACEBACK_LIMIT: Final = 10
_PACKAGE_DIR: Final = os.path.dirname(os.path.abspath(__file__)) + os.sep
_REPR_LIMIT: Final = 80


def exception_type_name(cls: type) -> str:
    """``ZeroDivisionError`` for builtins, ``module.QualName`` for everything else."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a broken __str__ must not hide the original failure
        return repr(exc)


def user_traceback(exc: BaseException) -> str:
    """exc formatted with its traceback, fletch's leading frames skipped and at most the last 10 kept."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    try:
        return "".join(_traceback.format_exception(type(exc), exc, tb, limit=-_TRACEBACK_LIMIT))
    except Exception:  # formatting runs user __str__ and reads source files; never fail because of it
        return f"{exception_type_name(type(exc))}: {_message(exc)}\n"


def _short_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _text(t: pa.DataType) -> str:
    try:
        return type_text(t)
    except TypeError:
        return str(t)


@dataclass(frozen=True)
class ParamPlan:
    """How one parameter is passed: its declared type, whether it receives nulls, and its conversion."""

    name: str
    type: pa.DataType
    nullable: bool
    to_python: Converter | None = None
    maps_as_dicts: bool = False


@dataclass(frozen=True)
class ResultPlan:
    """The declared result: type, whether None is allowed, its conversion, and its annotation for messages."""

    type: pa.DataType
    nullable: bool
    to_arrow: Converter | None = None
    annotation: str = ""


def _none_safe(convert: Converter) -> Converter:
    def safe(value: Any) -> Any:
        return None if value is None else convert(value)

    return safe


class _Evaluator:
    """What row-wise and vectorized evaluation share: column checks and the null policy's mask."""

    def __init__(
        self,
        name: str,
        function: Callable[..., Any],
        params: Sequence[ParamPlan],
        result: ResultPlan,
        *,
        collect_errors: bool = False,
    ):
        self._name = name
        self._function = function
        self._params = tuple(params)
        self._types = tuple(p.type for p in self._params)
        self._strict = tuple(not p.nullable for p in self._params)
        self._result = result
        # Under an on_error policy other than "raise", failing rows become
        # nulls with an error each instead of failing the batch.
        self._collect = collect_errors
        self._schema_seen: pa.Schema | None = None

    def __call__(self, batch: pa.RecordBatch) -> pa.Array:
        values, errors = self.evaluate(batch)
        if errors:
            raise errors[min(errors)]
        return values

    def evaluate(self, batch: pa.RecordBatch) -> tuple[pa.Array, dict[int, UdfError]]:
        """The batch's results, and the failing rows' errors (empty unless errors are collected)."""
        raise NotImplementedError

    def _columns(self, batch: pa.RecordBatch) -> list[pa.Array]:
        """The batch's columns as the declared types.

        A column of another type is a lossless representation of the declared one (see docs/protocol.md):
        nested fields differing only in names or child nullability are relabelled without copying (or, when
        a non-nullable child holds nulls, passed as they are); anything else is cast safely.
        """
        schema = batch.schema
        columns: list[pa.Array] = batch.columns
        if self._schema_seen is not None and schema.equals(self._schema_seen):
            return columns  # the common case: the types of the last batch, which needed nothing
        if batch.num_columns != len(self._params):
            names = ", ".join(p.name for p in self._params)
            raise ValueError(
                f"{self._name}: expected {len(self._params)} columns ({names}), got {batch.num_columns}"
            )
        as_declared = True
        for i, (column, declared) in enumerate(zip(columns, self._types, strict=True)):
            if column.type == declared:
                continue
            as_declared = False
            if _same_layout(column.type, declared):
                # The view fails when a child declared non-nullable holds nulls; positions still match.
                with contextlib.suppress(pa.ArrowException):
                    columns[i] = column.view(declared)
            else:
                try:
                    columns[i] = column.cast(declared, safe=True)
                except (pa.ArrowException, ValueError, TypeError) as err:
                    raise ValueError(
                        f"{self._name}: parameter {self._params[i].name}: column of type {column.type} "
                        f"cannot be cast to {_text(declared)}: {err}"
                    ) from err
        if as_declared:
            self._schema_seen = schema
        return columns

    def _valid_mask(self, columns: Sequence[pa.Array]) -> pa.Array | None:
        """Rows where every non-Optional parameter is valid, or None when no such parameter has a null."""
        mask = None
        for column, strict in zip(columns, self._strict, strict=True):
            if strict and column.null_count:
                valid = column.is_valid()
                mask = valid if mask is None else pc.and_(mask, valid)
        return mask

    def _error(self, row: int | None, exc_type: str, message: str) -> UdfError:
        return UdfError(self._name, row, exc_type, message)

    def _conversion_failure(
        self, values: Sequence[Any], err: Exception, row_of: Callable[[int], int] | None
    ) -> UdfError:
        """The UdfError for values that pa.array rejected, naming the first offending row if it can."""
        rt = self._result.type
        located = _first_unconvertible(values, rt)
        if located is None or row_of is None:
            return UdfError.from_exception(self._name, None, err, user=False)
        index, value, cause = located
        if not self._result.nullable:
            none_at = _index_of_none(values, index)
            if none_at is not None:
                return self._none_error(row_of(none_at))
        return UdfError(
            self._name,
            row_of(index),
            exception_type_name(type(cause)),
            f"returned {_short_repr(value)}, which cannot be converted to {_text(rt)}: {_message(cause)}",
        )

    def _none_error(self, row: int) -> UdfError:
        return self._error(
            row,
            "TypeError",
            f"{self._name} returned None for row {row}, but its return type {self._result.annotation} "
            "is not Optional",
        )


def _same_layout(actual: pa.DataType, declared: pa.DataType) -> bool:
    """Whether two types differ at most in nested field names and nullability."""
    if isinstance(declared, pa.StructType):
        return (
            isinstance(actual, pa.StructType)
            and actual.num_fields == declared.num_fields
            and all(
                _same_layout(actual.field(i).type, declared.field(i).type) for i in range(declared.num_fields)
            )
        )
    if isinstance(declared, pa.MapType):
        return (
            isinstance(actual, pa.MapType)
            and actual.key_type == declared.key_type
            and _same_layout(actual.item_type, declared.item_type)
        )
    for list_class in (pa.ListType, pa.LargeListType):
        if isinstance(declared, list_class):
            return isinstance(actual, list_class) and _same_layout(actual.value_type, declared.value_type)
    if isinstance(declared, pa.FixedSizeListType):
        return (
            isinstance(actual, pa.FixedSizeListType)
            and actual.list_size == declared.list_size
            and _same_layout(actual.value_type, declared.value_type)
        )
    return bool(actual == declared)


def _index_of_none(values: Sequence[Any], stop: int) -> int | None:
    try:
        return values.index(None, 0, stop)
    except ValueError:
        return None


def _convert(values: Any, rt: pa.DataType) -> pa.Array:
    arr = pa.array(values, type=rt)
    if isinstance(arr, pa.ChunkedArray):  # pa.array splits binary data over 2 GiB
        arr = arr.combine_chunks()
    return arr


def _first_unconvertible(values: Sequence[Any], rt: pa.DataType) -> tuple[int, Any, Exception] | None:
    """Bisect for the first value pa.array rejects: (index, value, error), or None if no single value fails.

    Converting a slice fails exactly when one of its values does, so halving the failing range finds the
    first bad value with about 2n element conversions, all in C.
    """
    lo, hi = 0, len(values)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pa.array(values[lo:mid], type=rt)
        except Exception:
            hi = mid
        else:
            lo = mid
    if hi - lo != 1:
        return None
    try:
        pa.array(values[lo:hi], type=rt)
    except Exception as err:
        return lo, values[lo], err
    return None


def _mask_nulls(result: pa.Array, mask: pa.Array) -> pa.Array:
    """result with nulls where mask is False."""
    try:
        return pc.if_else(mask, result, pa.scalar(None, result.type))
    except pa.ArrowNotImplementedError:  # no if_else kernel (view types): do it in Python
        values = result.to_pylist()
        keep = mask.to_pylist()
        return pa.array([v if k else None for v, k in zip(values, keep, strict=True)], type=result.type)


class RowwiseEvaluator(_Evaluator):
    """Calls the function once per row with Python values."""

    def __init__(
        self,
        name: str,
        function: Callable[..., Any],
        params: Sequence[ParamPlan],
        result: ResultPlan,
        *,
        collect_errors: bool = False,
    ):
        super().__init__(name, function, params, result, collect_errors=collect_errors)
        self._to_python = tuple(
            None if p.to_python is None else _none_safe(p.to_python) for p in self._params
        )
        self._to_arrow = None if result.to_arrow is None else _none_safe(result.to_arrow)
        self._strict_at = tuple(i for i, strict in enumerate(self._strict) if strict)

    def __call__(self, batch: pa.RecordBatch) -> pa.Array:
        """The batch's results, or the UdfError of its first failing row (on_error="raise")."""
        if self._collect:
            return super().__call__(batch)
        columns = self._columns(batch)
        count = batch.num_rows
        held = [i for i in self._strict_at if columns[i].null_count]
        if held and drops_nulls(len(columns), sum(columns[i].null_count for i in held), count):
            args, called, row_of, mask = self._prepare_columns(columns, count)
            result = self._arrow_values(self._call(args, called, row_of), row_of, {})
            return result if mask is None else expand(result, mask)
        # Every row is called, or a None test in the loop skips the null ones: row i is the batch's row i.
        args = [self._python_values(column, i, same_row, None) for i, column in enumerate(columns)]
        try:
            values = (
                call_skipping_none(self._function, args, held, count)
                if held
                else call_each(self._function, args, count)
            )
        except RowFailure as failure:
            raise self._failure_error(failure, same_row) from failure.cause
        if not held:
            return self._arrow_values(values, same_row, {})
        return self._arrow_values_with_skipped(values, columns, held)

    def evaluate(self, batch: pa.RecordBatch) -> tuple[pa.Array, dict[int, UdfError]]:
        args, count, row_of, mask = self._prepare(batch)
        errors: dict[int, UdfError] = {}
        if self._collect:
            values = self._call_collecting(args, count, row_of, errors)
        else:
            values = self._call(args, count, row_of)
        result = self._arrow_values(values, row_of, errors)
        return (result if mask is None else expand(result, mask)), errors

    def _prepare(
        self, batch: pa.RecordBatch
    ) -> tuple[list[list[Any]], int, Callable[[int], int], pa.Array | None]:
        """Each parameter's Python values for the rows the null policy calls, their count, a map from
        those rows to the batch's, and the mask of called rows (None when all are)."""
        return self._prepare_columns(self._columns(batch), batch.num_rows)

    def _prepare_columns(
        self, columns: list[pa.Array], rows: int
    ) -> tuple[list[list[Any]], int, Callable[[int], int], pa.Array | None]:
        mask = self._valid_mask(columns)
        keep: list[list[bool] | None] = [None] * len(columns)  # Python masks for columns Arrow cannot filter
        row_of: Callable[[int], int]
        if mask is not None:
            count = mask.true_count
            for i, column in enumerate(columns):
                try:
                    columns[i] = column.filter(mask)
                except pa.ArrowNotImplementedError:  # no filter kernel (view types): filter in Python
                    keep[i] = mask.to_pylist()
            positions: list[int] | None = None

            def row_of(i: int) -> int:
                nonlocal positions
                if positions is None:
                    positions = pc.indices_nonzero(mask).to_pylist()
                return positions[i]

        else:
            count = rows
            row_of = same_row

        args = [self._python_values(column, i, row_of, keep[i]) for i, column in enumerate(columns)]
        return args, count, row_of, mask

    def _failure_error(self, failure: RowFailure, row_of: Callable[[int], int]) -> UdfError:
        row = row_of(failure.row)
        if failure.cause is None:
            return UdfError(
                self._name, row, "StopIteration", f"{self._name} raised StopIteration for row {row}"
            )
        return UdfError.from_exception(self._name, row, failure.cause)

    def _arrow_values_with_skipped(
        self, values: list[Any], columns: list[pa.Array], held: list[int]
    ) -> pa.Array:
        """values, None in the rows a null skipped, as Arrow; a failure is reported as if those rows had been
        filtered out first (the first failing called row, with its batch row)."""
        to_arrow = self._to_arrow
        try:
            result = _convert(values if to_arrow is None else list(map(to_arrow, values)), self._result.type)
        except Exception:
            pass
        else:
            # Skipped rows are null; any other null is a None the function returned.
            if self._result.nullable or result.null_count == skipped_rows(columns, held, len(values)):
                return result
        mask = self._valid_mask(columns)
        assert mask is not None  # held columns have nulls
        called: list[int] = pc.indices_nonzero(mask).to_pylist()
        kept = self._arrow_values([values[i] for i in called], called.__getitem__, {})
        return expand(kept, mask)  # not reached: the called rows alone fail the same way

    def _call_collecting(
        self, args: list[list[Any]], count: int, row_of: Callable[[int], int], errors: dict[int, UdfError]
    ) -> list[Any]:
        """One call per row, each in its own try: a failing row gives None and an error."""
        function = self._function
        values: list[Any] = []
        append = values.append
        if len(args) == 1:  # the common shapes, without zip's tuples and a call with *
            for value in args[0]:
                try:
                    append(function(value))
                except Exception as err:
                    row = row_of(len(values))
                    errors[row] = UdfError.from_exception(self._name, row, err)
                    append(None)
            return values
        if len(args) == 2:
            for x, y in zip(args[0], args[1], strict=True):
                try:
                    append(function(x, y))
                except Exception as err:
                    row = row_of(len(values))
                    errors[row] = UdfError.from_exception(self._name, row, err)
                    append(None)
            return values
        rows: Any = zip(*args, strict=True) if args else itertools.repeat((), count)
        for row_args in rows:
            try:
                append(function(*row_args))
            except Exception as err:
                row = row_of(len(values))
                errors[row] = UdfError.from_exception(self._name, row, err)
                append(None)
        return values

    def _python_values(
        self, column: pa.Array, index: int, row_of: Callable[[int], int], keep: list[bool] | None
    ) -> list[Any]:
        param = self._params[index]
        try:
            values: list[Any] = (
                column.to_pylist(maps_as_pydicts="strict") if param.maps_as_dicts else column.to_pylist()
            )
        except Exception as err:  # e.g. a map with a duplicate key
            raise UdfError(
                self._name,
                None,
                exception_type_name(type(err)),
                f"cannot convert parameter {param.name} to Python: {_message(err)}",
            ) from err
        if keep is not None:
            values = list(itertools.compress(values, keep))
        convert = self._to_python[index]
        if convert is None:
            return values
        source = iter(values)
        try:
            return list(map(convert, source))
        except Exception as err:  # e.g. a dataclass __post_init__ rejecting the value
            row = len(values) - operator.length_hint(source) - 1
            raise UdfError.from_exception(self._name, row_of(row), err) from err

    def _call(self, args: list[list[Any]], count: int, row_of: Callable[[int], int]) -> list[Any]:
        try:
            return call_each(self._function, args, count)
        except RowFailure as failure:
            raise self._failure_error(failure, row_of) from failure.cause

    def _arrow_values(
        self, values: list[Any], row_of: Callable[[int], int], errors: dict[int, UdfError]
    ) -> pa.Array:
        to_arrow = self._to_arrow
        result: pa.Array | None = None
        if self._collect:
            values, result = self._converted_collecting(values, row_of, errors)
        elif to_arrow is not None:
            source = iter(values)
            try:
                values = list(map(to_arrow, source))
            except Exception as err:
                row = len(values) - operator.length_hint(source) - 1
                raise UdfError.from_exception(self._name, row_of(row), err, user=False) from err
        if result is None:
            try:
                result = _convert(values, self._result.type)
            except Exception as err:
                raise self._conversion_failure(values, err, row_of) from err
        if result.null_count and not self._result.nullable:
            if self._collect:
                for i, value in enumerate(values):
                    if value is None and row_of(i) not in errors:
                        errors[row_of(i)] = self._none_error(row_of(i))
                return result
            try:
                index = values.index(None)
            except ValueError:
                index = pc.index(result.is_null(), True).as_py()
            raise self._none_error(row_of(index))
        return result

    def _converted_collecting(
        self, values: list[Any], row_of: Callable[[int], int], errors: dict[int, UdfError]
    ) -> tuple[list[Any], pa.Array | None]:
        """values converted to Arrow-ready Python, with unconvertible ones replaced by None and an error, and
        as Arrow where that was done already."""
        rt = self._result.type
        to_arrow = self._to_arrow
        try:  # the common case, where nothing fails: no Python work per value (to_arrow has no side effects)
            ready = values if to_arrow is None else list(map(to_arrow, values))
            return ready, _convert(ready, rt)
        except Exception:
            pass
        out = values if to_arrow is None else [None] * len(values)
        for i, value in enumerate(values):
            if value is None:
                continue
            try:
                converted = value if to_arrow is None else to_arrow(value)
                if to_arrow is not None:
                    out[i] = converted
            except Exception as err:
                out[i] = None
                errors[row_of(i)] = UdfError.from_exception(self._name, row_of(i), err, user=False)
        try:
            return out, _convert(out, rt)
        except Exception:
            pass
        for i, value in enumerate(out):  # the slow path: find every value pa.array rejects
            if value is None:
                continue
            try:
                pa.array([value], type=rt)
            except Exception as err:
                out[i] = None
                errors[row_of(i)] = UdfError(
                    self._name,
                    row_of(i),
                    exception_type_name(type(err)),
                    f"returned {_short_repr(value)}, which cannot be converted to {_text(rt)}: "
                    f"{_message(err)}",
                )
        return out, None


class TableEvaluator(RowwiseEvaluator):
    """Calls a table function once per row; each yields any number of values (rows of output)."""

    def table(self, batch: pa.RecordBatch) -> tuple[pa.Array, pa.Array]:
        """The output: the index of the input row each value came from (int32), and the values."""
        args, count, row_of, _ = self._prepare(batch)
        rows: list[int] = []
        values: list[Any] = []
        function = self._function
        calls: Any = zip(*args, strict=True) if args else itertools.repeat((), count)
        for i, row_args in enumerate(calls):
            try:
                produced = function(*row_args)
                if produced is None:
                    raise TypeError(
                        f"{self._name} returned None; a table function yields or returns an iterable"
                    )
                for value in produced:
                    rows.append(row_of(i))
                    values.append(value)
            except Exception as err:
                raise UdfError.from_exception(self._name, row_of(i), err) from err
        result = self._arrow_values(values, rows.__getitem__, {})
        return pa.array(rows, pa.int32()), result


class AsyncRowwiseEvaluator(RowwiseEvaluator):
    """Runs an ``async def`` UDF's calls for a batch concurrently on the worker's event loop.

    At most ``max_concurrency`` calls are in flight; each may take ``timeout`` seconds. Results come back in
    input order.
    """

    def __init__(
        self,
        name: str,
        function: Callable[..., Any],
        params: Sequence[ParamPlan],
        result: ResultPlan,
        *,
        collect_errors: bool = False,
        max_concurrency: int,
        timeout: float | None,
    ):
        super().__init__(name, function, params, result, collect_errors=collect_errors)
        self._max_concurrency = max_concurrency
        self._timeout = timeout

    # The fast loops are for plain functions; this one's calls run on the event loop.
    __call__ = _Evaluator.__call__

    def _call(self, args: list[list[Any]], count: int, row_of: Callable[[int], int]) -> list[Any]:
        errors: dict[int, UdfError] = {}
        values = self._call_collecting(args, count, row_of, errors)
        if errors:
            raise errors[min(errors)]
        return values

    def _call_collecting(
        self, args: list[list[Any]], count: int, row_of: Callable[[int], int], errors: dict[int, UdfError]
    ) -> list[Any]:
        rows: list[tuple[Any, ...]] = list(zip(*args, strict=True)) if args else [()] * count
        values: list[Any] = [None] * count
        failures: dict[int, BaseException] = {}
        event_loop().run_until_complete(
            _run_concurrently(self._function, rows, values, failures, self._max_concurrency, self._timeout)
        )
        for i, err in failures.items():
            if isinstance(err, TimeoutError):
                errors[row_of(i)] = UdfError(
                    self._name,
                    row_of(i),
                    "TimeoutError",
                    f"the call took longer than {self._timeout} s (timeout)",
                )
            else:
                errors[row_of(i)] = UdfError.from_exception(self._name, row_of(i), err)
        return values


def event_loop() -> asyncio.AbstractEventLoop:
    """The process's event loop for async UDFs, made on first use and kept: clients bound to it live on."""
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        _LOOP = _new_event_loop()
    return _LOOP


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where it is installed (the embedded Python bundles it), else asyncio's: a timer and a
    wake-up cost uvloop about 60% of asyncio's CPU, which is what bounds many short I/O calls."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


_LOOP: asyncio.AbstractEventLoop | None = None


async def _run_concurrently(
    function: Callable[..., Any],
    rows: list[tuple[Any, ...]],
    values: list[Any],
    failures: dict[int, BaseException],
    limit: int,
    timeout: float | None,
) -> None:
    """Calls function on every row with at most limit calls awaiting at once, results by row index.

    limit consumers share one iterator of row indexes, so no task is made per row.
    """
    indexes = iter(range(len(rows)))

    async def consume() -> None:
        for i in indexes:
            try:
                if timeout is None:
                    values[i] = await function(*rows[i])
                else:
                    values[i] = await asyncio.wait_for(function(*rows[i]), timeout)
            except Exception as err:
                failures[i] = err

    await asyncio.gather(*(consume() for _ in range(min(limit, len(rows)))))


class VectorizedEvaluator(_Evaluator):
    """Calls the function once per batch with whole columns as pyarrow arrays.

    The function may return a ``pa.Array``, a ``pa.ChunkedArray``, a numpy array, a list or a tuple, with one
    value per row; values of another type are cast safely to the declared result type. A function with no
    parameters may instead return a single value (a ``pa.Scalar`` or a Python value), repeated for every row.
    Rows where a non-Optional parameter is null are null in the result whatever the function returned.
    """

    def evaluate(self, batch: pa.RecordBatch) -> tuple[pa.Array, dict[int, UdfError]]:
        columns = self._columns(batch)
        count = batch.num_rows
        try:
            returned = self._function(*columns)
            if not isinstance(returned, pa.Array) and inspect.isawaitable(returned):
                returned = event_loop().run_until_complete(returned)
            result = self._normalize(returned, count)
        except Exception as err:
            failure = err if isinstance(err, UdfError) else UdfError.from_exception(self._name, None, err)
            if not self._collect:
                raise failure from err
            # The whole batch failed: every row carries the error.
            return pa.nulls(count, self._result.type), dict.fromkeys(range(count), failure)
        mask = self._valid_mask(columns)
        return (result if mask is None else _mask_nulls(result, mask)), {}

    def _normalize(self, returned: Any, count: int) -> pa.Array:
        rt = self._result.type
        if isinstance(returned, pa.ChunkedArray):
            result = returned.combine_chunks() if returned.num_chunks != 1 else returned.chunk(0)
        elif isinstance(returned, pa.Array):
            result = returned
        elif isinstance(returned, (list, tuple)) or hasattr(returned, "__array__"):
            try:
                result = _convert(returned, rt)
            except Exception as err:
                raise self._conversion_failure(returned, err, lambda i: i) from err
        elif hasattr(returned, "__arrow_c_array__"):
            try:
                result = _convert(returned, rt)
            except Exception as err:
                raise UdfError.from_exception(self._name, None, err, user=False) from err
        elif not self._params:
            result = self._broadcast(returned, count)
        else:
            raise self._error(
                None,
                "TypeError",
                f"{self._name} returned {_short_repr(returned)} ({type(returned).__qualname__}); "
                "a vectorized UDF with parameters must return one value per row "
                "(a pyarrow array, numpy array or list)",
            )
        if len(result) != count:
            raise self._error(
                None, "ValueError", f"{self._name} returned {len(result)} values for {count} rows"
            )
        if result.type != rt:
            try:
                result = result.cast(rt, safe=True)
            except (pa.ArrowException, ValueError, TypeError) as err:
                raise UdfError(
                    self._name,
                    None,
                    exception_type_name(type(err)),
                    f"{self._name} returned {_text(result.type)} values, which do not cast safely to "
                    f"{_text(rt)}: {_message(err)}",
                ) from err
        return result

    def _broadcast(self, returned: Any, count: int) -> pa.Array:
        rt = self._result.type
        try:
            scalar = returned.cast(rt) if isinstance(returned, pa.Scalar) else pa.scalar(returned, type=rt)
        except Exception as err:
            raise UdfError(
                self._name,
                None,
                exception_type_name(type(err)),
                f"{self._name} returned {_short_repr(returned)}, which cannot be converted to {_text(rt)}: "
                f"{_message(err)}",
            ) from err
        return pa.repeat(scalar, count)
