"""Run UDF modules in process, without a server, to unit-test them.

::

    import fletch.testing

    udfs = fletch.testing.load("udfs/pricing.py")
    assert udfs.call("with_tax", [Decimal("10.00")]).to_pylist() == [Decimal("12.00")]

:func:`load` imports a module (or every ``*.py`` in a directory, as ``fletch serve --udf-dir`` does) and
returns a :class:`LocalUdfs`, whose ``list``, ``describe``, ``call`` and ``call_stream`` take and return what
:class:`fletch.Client`'s do and raise the same exceptions (``UdfNotFound``, ``SignatureMismatch``,
``UdfError``). Calls go through the same input conversion as the client, the server's rules for matching
columns to parameters, and the same evaluation (signature inference, null policy, ``on_error``) as the
server's workers, so a test that passes here passes against a server.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from fletch._conform import check_schema
from fletch._errors import SignatureMismatch, UdfError, UdfNotFound
from fletch._info import UdfInfo
from fletch._io import check_stream, finish_call, prepare_call, rechunk
from fletch._udf import UdfSpec, collect

__all__ = ["LocalUdfs", "load"]

_ERROR_COLUMN: Final = "error"  # the per-row error column of on_error="error_column" (udfcatalog.ErrorColumn)
_MAX_SUGGESTIONS: Final = 3
_MISSING: Final = object()


def load(source: str | os.PathLike[str] | types.ModuleType) -> LocalUdfs:
    """The UDFs of a module, a ``.py`` file, or every ``*.py`` file of a directory (in name order).

    A file is imported under its file name, as the server's workers do, so exception type names
    (``pricing.PriceError``) match theirs; whatever ``sys.modules`` held under that name before is put back
    afterwards, so the module is not left there. Its directory is on ``sys.path`` while it is imported, so it
    can import its neighbours. A string that names no file or directory is imported as a module name.

    Raises:
        ValueError: two modules define a UDF of the same name.
        Whatever importing the module raises.
    """
    if isinstance(source, types.ModuleType):
        return LocalUdfs(collect(source))
    path = Path(source)
    if path.is_dir():
        specs: list[Any] = []
        owner: dict[str, str] = {}
        for file in sorted(path.glob("*.py")):
            for spec in collect(_import_file(file)):
                if spec.name in owner:
                    raise ValueError(f"UDF {spec.name!r} is already defined by module {owner[spec.name]!r}")
                owner[spec.name] = file.stem
                specs.append(spec)
        return LocalUdfs(specs)
    if path.is_file():
        return LocalUdfs(collect(_import_file(path)))
    text = os.fspath(source)
    if text.endswith(".py") or os.sep in text or "/" in text:
        raise FileNotFoundError(f"no UDF module at {text!r}")
    return LocalUdfs(collect(importlib.import_module(text)))


def _import_file(path: Path) -> types.ModuleType:
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name, _MISSING)
    directory = str(path.resolve().parent)
    added = directory not in sys.path
    # Dataclasses and typing look the module up in sys.modules while it runs.
    sys.modules[name] = module
    if added:
        sys.path.insert(0, directory)
    try:
        spec.loader.exec_module(module)
    finally:
        if added and directory in sys.path:
            sys.path.remove(directory)
        if previous is _MISSING:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous  # type: ignore[assignment]
    return module


class LocalUdfs:
    """UDFs running in this process, called like :class:`fletch.Client` calls a server's."""

    def __init__(self, specs: Iterable[Any]) -> None:
        # Specs of every kind collect() finds; this module calls scalar ones (UdfSpec).
        self._specs: dict[str, Any] = {}
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
        """The UDF's spec: a :class:`fletch.UdfSpec` for scalar UDFs (function, parameters, evaluation)."""
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

        timeout is accepted for the same signature and ignored; options (exchange options) apply to no scalar
        UDF, so any raise SignatureMismatch, as the server refuses them.
        """
        info = self.describe(name)
        _check_options(info, options)
        prepared = prepare_call(info, columns, rows=rows, batch_size=batch_size)
        outputs = builtins.list(self._evaluate(info, prepared.batches))
        return finish_call(info, prepared, outputs)

    def call_stream(
        self,
        name: str,
        batches: Iterable[pa.RecordBatch],
        *,
        batch_size: int | None = None,
        timeout: float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream batches through a UDF as :meth:`fletch.Client.call_stream` does (lazily, one by one)."""
        info = self.describe(name)
        _check_options(info, options)
        stream: Iterable[pa.RecordBatch] = check_stream(name, batches)
        if batch_size is not None:
            if not isinstance(batch_size, int) or batch_size < 1:
                raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")
            stream = rechunk(stream, batch_size)
        return self._evaluate(info, stream)

    def _evaluate(self, info: UdfInfo, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        spec = self._specs[info.name]
        if not isinstance(spec, UdfSpec):
            raise NotImplementedError(
                f"fletch.testing calls scalar UDFs; {info.name} is a {info.kind} function: call it through a "
                "server, or its Python function directly"
            )
        schema: pa.Schema | None = None
        for index, batch in enumerate(batches):
            if schema is None:
                schema = batch.schema
                check_schema(info, schema)
            yield _evaluate_batch(spec, info, index, batch)


def _evaluate_batch(spec: UdfSpec, info: UdfInfo, index: int, batch: pa.RecordBatch) -> pa.RecordBatch:
    evaluate_with_errors = getattr(spec, "evaluate_with_errors", None)
    try:
        if evaluate_with_errors is not None:
            values, errors = evaluate_with_errors(batch)
        else:
            values, errors = spec.evaluate(batch), None
    except UdfError as err:
        err.batch = index
        raise
    except ValueError as err:  # columns the server would have refused; check_schema should have said so
        raise SignatureMismatch(f"{info.name}: {err}") from err
    result = info.output_schema.field(0)
    if errors is None:
        return pa.RecordBatch.from_arrays([values], schema=pa.schema([result]))
    error_field = pa.field(_ERROR_COLUMN, pa.utf8())
    return pa.RecordBatch.from_arrays([values, errors], schema=pa.schema([result, error_field]))


def _check_options(info: UdfInfo, options: Mapping[str, Any] | None) -> None:
    """Exchange options apply only to aggregates, which fletch.testing does not call: refuse them."""
    if options:
        key = sorted(options)[0]
        raise SignatureMismatch(
            f"invalid exchange options: {key} applies to aggregates; {info.name} is a {info.kind} function"
        )


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
