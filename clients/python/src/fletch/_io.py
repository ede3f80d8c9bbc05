"""Turning what callers pass into record batches, and output batches into what they get back.

``Client.call`` and ``fletch.testing``'s ``call`` both use :func:`prepare_call` and :func:`finish_call`, so a
UDF called in process and through a server sees the same batches and returns the same kind of value.

Inputs, matched to parameters by position:

- columns: pyarrow Arrays and ChunkedArrays (sent as they are: the server converts lossless representations),
  Python lists, tuples and numpy arrays (converted to the parameter's declared type), pandas Series (likewise)
  and polars Series (Arrow data, sent as it is);
- one table: a ``pa.Table``, ``pa.RecordBatch``, ``pa.RecordBatchReader``, an iterator (or list) of record
  batches, a pandas DataFrame or a polars DataFrame;
- nothing, with ``rows=N``, for a UDF without parameters.

The result follows the input: columns give a ``pa.Array`` (a pandas or polars Series when the first column is
one), tables give a ``pa.Table`` (a pandas or polars DataFrame for those).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import pyarrow as pa

from fletch._errors import ServerError, SignatureMismatch
from fletch._info import UdfInfo, describe_text

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "CallInput",
    "Form",
    "check_stream",
    "encode_options",
    "finish_call",
    "output_schema",
    "prepare_call",
    "rechunk",
]

# Rows per batch when the caller's input has no batching of its own (columns, lists, DataFrames, rows=N).
DEFAULT_BATCH_ROWS: Final = 64 * 1024
# A table function's first output column (udfcatalog.RowColumn).
ROW_COLUMN: Final = "row"

Form = Literal["array", "table", "pandas.Series", "pandas.DataFrame", "polars.Series", "polars.DataFrame"]


@dataclass
class CallInput:
    """The batches to send and what to make of the output batches.

    batches is lazy for readers and iterators: it is consumed while the call runs.
    """

    batches: Iterable[pa.RecordBatch]
    form: Form
    index: Any = None  # the pandas index to give the result


def _loaded(module: str, attribute: str) -> Any:
    """module.attribute if module is already imported (so its objects can exist), else None."""
    mod = sys.modules.get(module)
    return None if mod is None else getattr(mod, attribute, None)


def _isinstance(value: object, module: str, attribute: str) -> bool:
    cls = _loaded(module, attribute)
    return cls is not None and isinstance(value, cls)


def _is_batch_iterable(value: object) -> bool:
    if isinstance(value, (pa.RecordBatchReader, Iterator)):
        return True
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, (pa.RecordBatch, pa.Table)) for v in value)
    )


def prepare_call(
    info: UdfInfo, columns: Sequence[Any], *, rows: int | None = None, batch_size: int | None = None
) -> CallInput:
    """The batches for a call of info with these inputs (see the module's docstring)."""
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")
    if rows is not None:
        if columns:
            raise ValueError(
                f"{info.name}: rows= is for calls without columns (zero-argument UDFs); "
                "the row count comes from the columns"
            )
        if not isinstance(rows, int) or rows < 0:
            raise ValueError(f"rows must be a non-negative int, not {rows!r}")
        return CallInput(_empty_batches(rows, batch_size or DEFAULT_BATCH_ROWS), "array")
    if not columns:
        if info.params:
            raise TypeError(
                f"{info.name} takes {len(info.params)} column(s) ({_param_list(info)}); pass them as "
                "positional arguments or as one table"
            )
        raise TypeError(f"{info.name} takes no columns: pass rows=N for the number of rows to produce")
    if len(columns) == 1:
        single = _table_input(info, columns[0], batch_size)
        if single is not None:
            return single
    return _column_input(info, columns, batch_size)


def _table_input(info: UdfInfo, value: Any, batch_size: int | None) -> CallInput | None:
    if isinstance(value, pa.Table):
        return CallInput(_batches_of_table(value, batch_size), "table")
    if isinstance(value, pa.RecordBatch):
        return CallInput([value] if batch_size is None else rechunk([value], batch_size), "table")
    if _isinstance(value, "pandas", "DataFrame"):
        arrays = [_from_pandas(info, i, value.iloc[:, i]) for i in range(value.shape[1])]
        table = _table(info, arrays, value.shape[0])
        return CallInput(table.to_batches(batch_size or DEFAULT_BATCH_ROWS), "pandas.DataFrame", value.index)
    if _isinstance(value, "polars", "DataFrame"):
        arrow = value.to_arrow()
        table = _table(info, list(arrow.columns), arrow.num_rows)
        return CallInput(table.to_batches(batch_size or DEFAULT_BATCH_ROWS), "polars.DataFrame")
    if _is_batch_iterable(value):
        batches = check_stream(info.name, value)
        return CallInput(batches if batch_size is None else rechunk(batches, batch_size), "table")
    return None


def _batches_of_table(table: pa.Table, batch_size: int | None) -> Iterable[pa.RecordBatch]:
    if batch_size is None:
        batches: list[pa.RecordBatch] = table.to_batches()
        return batches
    return rechunk(table.to_batches(), batch_size)


def _column_input(info: UdfInfo, columns: Sequence[Any], batch_size: int | None) -> CallInput:
    first = columns[0]
    form: Form = "array"
    index = None
    if _isinstance(first, "pandas", "Series"):
        form, index = "pandas.Series", first.index
    elif _isinstance(first, "polars", "Series"):
        form = "polars.Series"
    arrays = [_column(info, i, c) for i, c in enumerate(columns)]
    lengths = {len(a) for a in arrays}
    if len(lengths) > 1:
        shown = ", ".join(str(len(a)) for a in arrays)
        raise ValueError(f"{info.name}: the columns must have the same length, got {shown}")
    table = _table(info, arrays, len(arrays[0]))
    return CallInput(table.to_batches(batch_size or DEFAULT_BATCH_ROWS), form, index)


def _table(info: UdfInfo, arrays: list[Any], num_rows: int) -> pa.Table:
    names = [info.params[i].name if i < len(info.params) else f"c{i}" for i in range(len(arrays))]
    if not arrays:
        return pa.Table.from_batches(list(_empty_batches(num_rows, max(num_rows, 1))), schema=pa.schema([]))
    return pa.Table.from_arrays(arrays, names=names)


def _declared(info: UdfInfo, index: int) -> pa.DataType | None:
    return info.params[index].type if index < len(info.params) else None


def _where(info: UdfInfo, index: int) -> str:
    if index < len(info.params):
        return f"{info.name}: input column {index} ({info.params[index].name!r})"
    return f"{info.name}: input column {index}"


def _conversion_error(info: UdfInfo, index: int, what: str, err: Exception) -> SignatureMismatch:
    t = _declared(info, index)
    target = "Arrow" if t is None else describe_text(t)
    mismatch = SignatureMismatch(f"{_where(info, index)}: cannot convert {what} to {target}: {err}")
    mismatch.__cause__ = err
    return mismatch


_CONVERSION_ERRORS: Final = (pa.ArrowException, TypeError, ValueError, OverflowError)


def _column(info: UdfInfo, index: int, value: Any) -> pa.Array | pa.ChunkedArray:
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        return value
    if _isinstance(value, "pandas", "Series"):
        return _from_pandas(info, index, value)
    if _isinstance(value, "polars", "Series"):
        return value.to_arrow()
    if _isinstance(value, "pandas", "DataFrame") or _isinstance(value, "polars", "DataFrame"):
        raise TypeError(f"{_where(info, index)}: a DataFrame is a whole input; pass it as the only argument")
    if isinstance(value, (pa.Table, pa.RecordBatch, pa.RecordBatchReader, str, bytes, Iterator)):
        raise TypeError(
            f"{_where(info, index)}: cannot use a {type(value).__name__} as a column; tables and streams of "
            "record batches are passed as the only argument"
        )
    ndarray = _loaded("numpy", "ndarray")
    if not isinstance(value, (list, tuple, range)) and not (
        ndarray is not None and isinstance(value, ndarray)
    ):
        raise TypeError(
            f"{_where(info, index)}: cannot use a {type(value).__name__} as a column; pass a list, a numpy "
            "array, a pyarrow Array or a pandas or polars Series"
        )
    try:
        return pa.array(value, type=_declared(info, index))
    except _CONVERSION_ERRORS as err:
        raise _conversion_error(info, index, f"the {type(value).__name__}'s values", err) from err


def _from_pandas(info: UdfInfo, index: int, series: Any) -> pa.Array | pa.ChunkedArray:
    try:
        return pa.Array.from_pandas(series, type=_declared(info, index))
    except _CONVERSION_ERRORS as err:
        raise _conversion_error(info, index, f"the pandas column of dtype {series.dtype}", err) from err


def _empty_batches(rows: int, size: int) -> Iterator[pa.RecordBatch]:
    """Batches of zero columns and rows rows in all, for UDFs without parameters."""
    for start in range(0, rows, size):
        yield pa.RecordBatch.from_struct_array(pa.nulls(min(size, rows - start), pa.struct([])))


def check_stream(name: str, batches: Iterable[Any]) -> Iterator[pa.RecordBatch]:
    """batches, checked: record batches (tables split into theirs), all with the first one's schema."""
    schema: pa.Schema | None = None
    for i, item in enumerate(batches):
        if isinstance(item, pa.Table):
            parts = item.to_batches()
        elif isinstance(item, pa.RecordBatch):
            parts = [item]
        else:
            raise TypeError(f"{name}: input batch {i} is a {type(item).__name__}, not a pyarrow RecordBatch")
        for batch in parts:
            if schema is None:
                schema = batch.schema
            elif not batch.schema.equals(schema, check_metadata=False):
                raise SignatureMismatch(
                    f"{name}: input batch {i} has columns ({_types(batch.schema)}) but the first batch had "
                    f"({_types(schema)}); every batch of one call must have the same schema"
                )
            elif batch.schema != schema:  # differs only in metadata (pandas adds its own)
                batch = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
            yield batch


def _types(schema: pa.Schema) -> str:
    return ", ".join(describe_text(f.type) for f in schema)


def _param_list(info: UdfInfo) -> str:
    return ", ".join(f"{p.name} {p.type_text}" for p in info.params)


def rechunk(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """batches re-cut into batches of size rows (the last may be shorter); zero-row batches are dropped."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            take = min(size - count, batch.num_rows - offset)
            pending.append(batch.slice(offset, take))
            count += take
            offset += take
            if count == size:
                yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)
                pending, count = [], 0
    if pending:
        yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)


def check_output(name: str, index: int, rows: int, output: pa.RecordBatch) -> None:
    """The exchange contract: one output batch per input batch, with as many rows."""
    if output.num_rows != rows:
        raise ServerError(
            f"{name}: batch {index}: the server returned {output.num_rows} rows for {rows} input rows"
        )
    if output.num_columns < 1:
        raise ServerError(f"{name}: batch {index}: the server returned a batch without columns")


def output_table(info: UdfInfo, outputs: Sequence[pa.RecordBatch]) -> pa.Table:
    """The output batches as one table: the result column, plus any extra columns some batches carry (the
    per-row ``error`` column of UDFs with ``on_error="error_column"``), null where a batch lacks them."""
    if not outputs:
        return info.output_schema.empty_table()
    fields: dict[str, pa.Field] = {}
    result = outputs[0].schema.field(0)
    for batch in outputs:
        for f in list(batch.schema)[1:]:
            fields.setdefault(f.name, f.with_nullable(True))
    schema = pa.schema([result, *fields.values()])
    if not fields:
        return pa.Table.from_batches(outputs, schema=schema)
    aligned = []
    for batch in outputs:
        present = {batch.schema.field(i).name: batch.column(i) for i in range(1, batch.num_columns)}
        arrays = [batch.column(0)] + [
            present.get(name, pa.nulls(batch.num_rows, f.type)) for name, f in fields.items()
        ]
        aligned.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
    return pa.Table.from_batches(aligned, schema=schema)


def output_array(info: UdfInfo, outputs: Sequence[pa.RecordBatch]) -> pa.Array:
    """The result column of the output batches as one array."""
    if not outputs:
        return pa.array([], type=info.returns.type)
    chunks = [b.column(0) for b in outputs]
    if len(chunks) == 1:
        return chunks[0]
    return pa.chunked_array(chunks, type=chunks[0].type).combine_chunks()


def encode_options(options: Mapping[str, Any] | None) -> str | None:
    """Exchange options as the ``fletch-options`` header carries them (JSON), or None to send none."""
    return json.dumps(dict(options)) if options else None


def output_schema(info: UdfInfo) -> pa.Schema:
    """The schema of info's output batches, as the server declares it (udfcatalog.UDF.OutputSchema).

    The result (scalar functions, aggregates); ``row`` (int32) then the result, split into its fields when
    it is a struct (table functions); the result's fields (transforms).
    """
    result = info.output_schema.field(0)
    struct = isinstance(result.type, pa.StructType)
    columns = [f.with_nullable(True) for f in result.type] if struct else [result]
    if info.kind == "table":
        return pa.schema([pa.field(ROW_COLUMN, pa.int32(), nullable=False), *columns])
    if info.kind == "transform":
        return pa.schema(columns)
    return info.output_schema


def finish_call(info: UdfInfo, call: CallInput, outputs: Sequence[pa.RecordBatch]) -> Any:
    """The value a call returns: the outputs in the form of its input.

    Only scalar UDFs have one output row per input row; other kinds (table functions, aggregates) always give
    a table (a pandas or polars DataFrame for pandas or polars input).
    """
    if info.kind != "scalar":
        if outputs:
            table = pa.concat_tables([pa.Table.from_batches([b]) for b in outputs], promote_options="default")
        else:
            table = output_schema(info).empty_table()
        if call.form.startswith("pandas."):
            return table.to_pandas()
        if call.form.startswith("polars."):
            import polars

            return polars.from_arrow(table)
        return table
    if call.form in ("array", "pandas.Series", "polars.Series"):
        array = output_array(info, outputs)
        if call.form == "pandas.Series":
            series = array.to_pandas()
            series.name = info.name
            if call.index is not None:
                series.index = call.index
            return series
        if call.form == "polars.Series":
            import polars

            series = polars.from_arrow(array)
            return series.rename(info.name) if isinstance(series, polars.Series) else series
        return array
    table = output_table(info, outputs)
    if call.form == "pandas.DataFrame":
        frame = table.to_pandas()
        if call.index is not None:
            frame.index = call.index
        return frame
    if call.form == "polars.DataFrame":
        import polars

        return polars.from_arrow(table)
    return table


class ResultStream(Iterator[pa.RecordBatch]):
    """The output batches of one exchange, as they arrive (from ``Client.call_stream`` or, in-process,
    ``fletch.testing.LocalUdfs.call_stream``).

    The client's background thread writes the input batches, at most ``max_in_flight`` ahead of the outputs
    consumed. Iterating to the end, ``close()``, leaving a ``with`` block, or dropping the last reference ends
    the call (and joins that thread).
    """

    def __init__(self, info: UdfInfo, outputs: Generator[pa.RecordBatch, None, None]) -> None:
        self._info = info
        self._outputs = outputs

    @property
    def info(self) -> UdfInfo:
        """The UDF being called."""
        return self._info

    def __iter__(self) -> ResultStream:
        return self

    def __next__(self) -> pa.RecordBatch:
        return next(self._outputs)

    def close(self) -> None:
        """End the call if it is still running, dropping its state."""
        self._outputs.close()

    def __enter__(self) -> ResultStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
