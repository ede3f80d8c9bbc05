"""Run UDF modules in process, without a server, to unit-test them.

::

    import fletch.testing

    udfs = fletch.testing.load("udfs/pricing.py")
    assert udfs.call("with_tax", [Decimal("10.00")]).to_pylist() == [Decimal("12.00")]

:func:`load` imports a module (or every ``*.py`` in a directory, as ``fletch serve --udf-dir`` does) and
returns a :class:`LocalUdfs`, whose ``list``, ``describe``, ``call`` and ``call_stream`` take and return what
:class:`fletch.Client`'s do and raise the same exceptions (``UdfNotFound``, ``SignatureMismatch``,
``UdfError``). Every kind of UDF is called: scalar UDFs, table functions, aggregates (with the exchange
options ``running`` and ``phase``) and batch transforms. A call goes through the same input conversion as the
client's, the server's handling of the exchange (its options, its rules for matching columns to parameters,
its slicing of large batches, a table function's row indexes and output batches, its checks of what the UDF
returns) and the same evaluation as the server's workers (signature inference, null policy, ``on_error``,
sessions with state), so a test that passes here passes against a server.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import importlib.util
import json
import logging
import os
import sys
import traceback
import types
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from fletch._conform import check_schema, conform_batch, for_exchange, parse_options
from fletch._errors import ServerError, UdfError, UdfNotFound
from fletch._info import UdfInfo, describe_text
from fletch._io import (
    ResultStream,
    check_stream,
    encode_options,
    finish_call,
    output_schema,
    prepare_call,
    rechunk,
)
from fletch._kinds import AggregateSpec, TransformSpec
from fletch._udf import ERROR_COLUMN, UdfSpec, collect

__all__ = ["MAX_BATCH_ROWS", "TABLE_BATCH_ROWS", "LocalUdfs", "load"]

MAX_BATCH_ROWS: Final = 64 * 1024
"""The server's default ``--max-batch-rows``: larger input batches are sliced before the UDF sees them."""
TABLE_BATCH_ROWS: Final = 1024
"""The server's default ``--table-batch-rows``: the most rows in one output batch of a table function."""

_MAX_SUGGESTIONS: Final = 3
_MAX_TABLE_INPUT_ROWS: Final = 2**31  # row indexes are int32
_MISSING: Final = object()
_BAD_OUTPUT: Final = "function returned invalid output"  # udfcatalog.ErrBadOutput

_log = logging.getLogger("fletch.testing")


def load(
    source: str | os.PathLike[str] | types.ModuleType,
    *,
    max_batch_rows: int = MAX_BATCH_ROWS,
    table_batch_rows: int = TABLE_BATCH_ROWS,
) -> LocalUdfs:
    """The UDFs of a module, a ``.py`` file, or every ``*.py`` file of a directory (in name order).

    A file is imported under its file name, as the server's workers do, so exception type names
    (``pricing.PriceError``) match theirs; whatever ``sys.modules`` held under that name before is put back
    afterwards, so the module is not left there. Its directory is on ``sys.path`` while it is imported, so it
    can import its neighbours. A string that names no file or directory is imported as a module name.

    max_batch_rows and table_batch_rows stand for the server's ``--max-batch-rows`` and
    ``--table-batch-rows``.

    Raises:
        ValueError: two modules define a UDF of the same name.
        Whatever importing the module raises.
    """
    if isinstance(source, types.ModuleType):
        modules: list[tuple[types.ModuleType, str | None]] = [(source, None)]
    elif (path := Path(source)).is_dir():
        modules = [(_import_file(file), str(file.resolve().parent)) for file in sorted(path.glob("*.py"))]
    elif path.is_file():
        modules = [(_import_file(path), str(path.resolve().parent))]
    else:
        text = os.fspath(source)
        if text.endswith(".py") or os.sep in text or "/" in text:
            raise FileNotFoundError(f"no UDF module at {text!r}")
        modules = [(importlib.import_module(text), None)]
    specs: list[Any] = []
    homes: dict[str, tuple[types.ModuleType, str | None]] = {}
    for module, directory in modules:
        for spec in collect(module):
            if spec.name in homes:
                owner = homes[spec.name][0].__name__
                raise ValueError(f"UDF {spec.name!r} is already defined by module {owner!r}")
            homes[spec.name] = (module, directory)
            specs.append(spec)
    udfs = LocalUdfs(specs, max_batch_rows=max_batch_rows, table_batch_rows=table_batch_rows)
    udfs._homes = homes
    return udfs


def _import_file(path: Path) -> types.ModuleType:
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Dataclasses and typing look the module up in sys.modules while it runs.
    with _as_in_a_worker(module, str(path.resolve().parent)):
        spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _as_in_a_worker(module: types.ModuleType, directory: str | None) -> Iterator[None]:
    """module in sys.modules and directory on sys.path, as a worker that imported module has them, until the
    block ends; then whatever was there before is put back."""
    name = module.__name__
    previous = sys.modules.get(name, _MISSING)
    added = directory if directory is not None and directory not in sys.path else None
    sys.modules[name] = module
    if added is not None:
        sys.path.insert(0, added)
    try:
        yield
    finally:
        if added is not None and added in sys.path:
            sys.path.remove(added)
        if previous is _MISSING:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous  # type: ignore[assignment]


class LocalUdfs:
    """UDFs running in this process, called like :class:`fletch.Client` calls a server's."""

    def __init__(
        self,
        specs: Iterable[Any],
        *,
        max_batch_rows: int = MAX_BATCH_ROWS,
        table_batch_rows: int = TABLE_BATCH_ROWS,
    ) -> None:
        for flag, value in (("max_batch_rows", max_batch_rows), ("table_batch_rows", table_batch_rows)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{flag} must be a positive int, not {value!r}")
        self._max_batch_rows = max_batch_rows
        self._table_batch_rows = table_batch_rows
        # Specs of every kind collect() finds: UdfSpec, TableSpec, AggregateSpec, TransformSpec.
        self._specs: dict[str, Any] = {}
        # Each UDF's module and directory, as load() imported them: a worker keeps them importable (pickle
        # finds an aggregate state's class there).
        self._homes: dict[str, tuple[types.ModuleType, str | None]] = {}
        self._infos: dict[str, UdfInfo] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"two UDFs are named {spec.name!r}")
            self._specs[spec.name] = spec
            info = UdfInfo.from_json(spec.describe())
            self._infos[spec.name] = info

    def __repr__(self) -> str:
        return f"<fletch.testing.LocalUdfs {', '.join(sorted(self._specs))}>"

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def list(self) -> builtins.list[UdfInfo]:
        """Every UDF, sorted by name (``version`` is empty: only a server computes it)."""
        return [self._infos[name] for name in sorted(self._infos)]

    def describe(self, name: str) -> UdfInfo:
        """The UDF's signature and description, as a server would give it.

        Raises:
            UdfNotFound: there is no UDF of that name.
        """
        info = self._infos.get(name)
        if info is None:
            raise UdfNotFound(_not_found(name, self._infos))
        return info

    def spec(self, name: str) -> Any:
        """The UDF's spec: a :class:`fletch.UdfSpec` for scalar UDFs (function, parameters, evaluation), and a
        :class:`fletch.TableSpec`, :class:`fletch.AggregateSpec` or :class:`fletch.TransformSpec` for the
        other kinds."""
        self.describe(name)
        return self._specs[name]

    def call(
        self,
        name: str,
        *columns: Any,
        rows: int | None = None,
        batch_size: int | None = None,
        timeout: float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Any:
        """Call a UDF as :meth:`fletch.Client.call` does: same inputs, same results, same exceptions.

        options are exchange options (``{"running": True}``, ``{"phase": "partial"}``), checked as the
        server checks them; timeout is accepted for the same signature and ignored.
        """
        info = self.describe(name)
        prepared = prepare_call(info, columns, rows=rows, batch_size=batch_size)
        encoded = encode_options(options)
        outputs = builtins.list(self._exchange(info, encoded, prepared.batches))
        return finish_call(info, prepared, outputs)

    def call_stream(
        self,
        name: str,
        batches: Iterable[pa.RecordBatch],
        *,
        batch_size: int | None = None,
        timeout: float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> ResultStream:
        """Stream batches through a UDF as :meth:`fletch.Client.call_stream` does: lazily, the same output
        batches, and nothing runs before the first ``next()``."""
        info = self.describe(name)
        stream: Iterable[pa.RecordBatch] = check_stream(name, batches)
        if batch_size is not None:
            if not isinstance(batch_size, int) or batch_size < 1:
                raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")
            stream = rechunk(stream, batch_size)
        return ResultStream(info, self._exchange(info, encode_options(options), stream))

    def _exchange(
        self, info: UdfInfo, encoded: str | None, batches: Iterable[pa.RecordBatch]
    ) -> Generator[pa.RecordBatch, None, None]:
        """One exchange: the server's side (flightsrv's exchange) around the worker's calls of the spec."""
        spec = self._specs[info.name]
        home = self._homes.get(info.name)

        def worker(batch: int | None, offset: int, call: Callable[..., Any], *args: Any) -> Any:
            with _as_in_a_worker(*home) if home is not None else contextlib.nullcontext():
                return _worker_call(info.name, batch, offset, call, *args)

        shaped = for_exchange(info, parse_options(encoded))  # the UDF as these options make it
        # The worker is given the options as the client wrote them; aggregates and transforms keep their
        # state in one session for the whole exchange.
        options = json.loads(encoded) if encoded is not None else {}
        session = (
            worker(None, 0, spec.open, options) if isinstance(spec, (AggregateSpec, TransformSpec)) else None
        )
        output = _Output(shaped, self._table_batch_rows)
        for index, batch in enumerate(batches):
            if index == 0:
                check_schema(shaped, batch.schema)
            pieces = _slices(conform_batch(shaped, batch, index), self._max_batch_rows)
            if isinstance(spec, UdfSpec):
                parts = [worker(index, offset, spec.outputs, piece)[0] for offset, piece in pieces]
                yield output.scalar(index, parts)
                continue
            for offset, piece in pieces:
                if session is not None:
                    outs = worker(index, offset, session.process, piece)
                else:
                    outs = worker(index, offset, spec.outputs, piece)
                yield from output.batch(index, piece.num_rows, outs)
        if session is not None:
            yield from output.finish(worker(None, 0, session.finish))


def _worker_call(name: str, batch: int | None, offset: int, call: Callable[..., Any], *args: Any) -> Any:
    """call(*args), or the UdfError a client gets when a worker's call fails the same way.

    batch is the client's batch (None at the start or end of input) and offset the first row of the slice
    the UDF was given within it: the server counts a failing row from the start of the client's batch. The
    worker reports exceptions other than UdfError by their class and message.
    """
    try:
        return call(*args)
    except UdfError as err:
        failed = err
    except Exception as exc:
        failed = UdfError(name, None, type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)))
        failed.__cause__ = exc
    failed.batch = batch
    if failed.row is not None:
        failed.row += offset
    raise failed


def _slices(batch: pa.RecordBatch, max_rows: int) -> builtins.list[tuple[int, pa.RecordBatch]]:
    """batch cut to at most max_rows rows a piece, as the server cuts input, with each piece's first row."""
    if batch.num_rows <= max_rows:
        return [(0, batch)]
    return [(start, batch.slice(start, max_rows)) for start in range(0, batch.num_rows, max_rows)]


class _Output:
    """The server's handling of what the worker returns for one exchange (flightsrv's writeOutput): each
    batch is checked against and given the declared schema; a scalar UDF's slices are joined again; a table
    function's row indexes are made to count across the exchange and its batches cut to size."""

    def __init__(self, info: UdfInfo, table_batch_rows: int) -> None:
        self._info = info
        self._schema = output_schema(info)
        self._error_schema: pa.Schema | None = None
        if info.metadata.get("on_error") == "error_column":
            self._error_schema = pa.schema([*self._schema, pa.field(ERROR_COLUMN, pa.utf8())])
        self._table_batch_rows = table_batch_rows
        self._rows = 0  # input rows before the current slice (table functions)
        self._sent: pa.Schema | None = None  # the stream's schema, once a scalar batch decided it

    def scalar(self, index: int, parts: builtins.list[pa.RecordBatch]) -> pa.RecordBatch:
        parts = [self._relabel(f"batch {index}", part) for part in parts]
        joined = parts[0] if len(parts) == 1 else self._join(parts)
        if self._sent is None:
            # The first batch decides whether the stream has an error column (the server sends the schema
            # after it).
            self._sent = joined.schema
        elif joined.num_columns > len(self._sent):
            errors = joined.column(1)
            for row in pc.indices_nonzero(errors.is_valid()).to_pylist():
                _log.warning(
                    "%s: batch %d: row %d failed; its error cannot join a stream that began without an error "
                    "column: %s",
                    self._info.name,
                    index,
                    row,
                    errors[row].as_py(),
                )
            joined = pa.RecordBatch.from_arrays([joined.column(0)], schema=self._sent)
        elif joined.num_columns < len(self._sent):
            errors = pa.nulls(joined.num_rows, pa.utf8())
            joined = pa.RecordBatch.from_arrays([joined.column(0), errors], schema=self._sent)
        return joined

    def batch(self, index: int, rows: int, outs: builtins.list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The batches sent for what the UDF returned for a slice of rows rows of the client's batch index."""
        for out in outs:
            out = self._relabel(f"batch {index}", out)
            if self._info.kind != "table":
                yield out
                continue
            if self._rows + rows > _MAX_TABLE_INPUT_ROWS:
                raise ServerError(
                    f"{_BAD_OUTPUT}: batch {index}: a table function's exchange may have at most 2^31 input "
                    "rows"
                )
            rebased = pc.add(out.column(0), pa.scalar(self._rows, pa.int32()))
            out = pa.RecordBatch.from_arrays([rebased, *out.columns[1:]], schema=self._schema)
            size = self._table_batch_rows
            if out.num_rows <= size:
                yield out
            else:
                yield from (out.slice(start, size) for start in range(0, out.num_rows, size))
        self._rows += rows

    def finish(self, outs: builtins.list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for out in outs:
            yield self._relabel("end of input", out)

    def _relabel(self, where: str, out: pa.RecordBatch) -> pa.RecordBatch:
        """out with the declared schema (exec.pythonSession.relabel), or the server's INTERNAL error."""
        schema = self._schema
        if self._error_schema is not None and out.num_columns == len(schema) + 1:
            schema = self._error_schema
        name = self._info.name
        if out.num_columns != len(schema):
            raise ServerError(
                f"{where}: {_BAD_OUTPUT}: {name} returned {out.num_columns} columns, want {len(schema)}"
            )
        for i, field in enumerate(schema):
            got = out.column(i).type
            if not got.equals(field.type):
                raise ServerError(
                    f"{where}: {_BAD_OUTPUT}: {name} returned column {i} as {describe_text(got)}, want "
                    f"{describe_text(field.type)}"
                )
        return pa.RecordBatch.from_arrays(out.columns, schema=schema)

    def _join(self, parts: builtins.list[pa.RecordBatch]) -> pa.RecordBatch:
        """The outputs of one batch's slices as one batch; if some carry an error column, all do."""
        schema = max((part.schema for part in parts), key=len)
        columns = []
        for i, field in enumerate(schema):
            chunks = [
                part.column(i) if i < part.num_columns else pa.nulls(part.num_rows, field.type)
                for part in parts
            ]
            columns.append(pa.concat_arrays(chunks))
        return pa.RecordBatch.from_arrays(columns, schema=schema)


def _not_found(name: str, names: Iterable[str]) -> str:
    """The server's message: ``function "x" not found; did you mean "y"?`` (udfcatalog.Registry.suggest)."""
    message = f'function "{name}" not found'
    scored = []
    for other in names:
        distance = _edit_distance(name.lower(), other.lower())
        if distance <= max(2, len(other) // 3) or (len(name) >= 3 and other.startswith(name)):
            scored.append((distance, other))
    suggestions = [f'"{other}"' for _, other in sorted(scored)[:_MAX_SUGGESTIONS]]
    if suggestions:
        message += "; did you mean " + " or ".join(suggestions) + "?"
    return message


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
