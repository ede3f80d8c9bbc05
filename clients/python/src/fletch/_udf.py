"""The ``@udf`` decorator, :class:`UdfSpec`, :class:`UdfError` and :func:`collect`."""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar, overload

import pyarrow as pa

from fletch._eval import (
    AsyncRowwiseEvaluator,
    ParamPlan,
    ResultPlan,
    RowwiseEvaluator,
    UdfError,
    VectorizedEvaluator,
)
from fletch._types import (
    AnnotationError,
    TypeInfo,
    array_class_of,
    contains_map,
    describe_annotation,
    infer,
    is_optional,
    override,
    parse_type_text,
    type_text,
)

__all__ = ["OnError", "Param", "UdfError", "UdfSpec", "Volatility", "collect", "udf"]

Volatility = Literal["immutable", "stable", "volatile"]

_VOLATILITIES: Final = ("immutable", "stable", "volatile")
OnError = Literal["raise", "null", "error_column"]
_ON_ERROR: Final = ("raise", "null", "error_column")
DEFAULT_MAX_CONCURRENCY: Final = 100

_log = logging.getLogger("fletch")
_MAX_NAME_LEN: Final = 256  # bytes, as the Go catalog allows
_ATTRIBUTE: Final = "__fletch_udf__"
_MISSING: Final = object()

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Param:
    """A declared parameter (or the result): its name, Arrow type and whether it accepts nulls."""

    name: str
    type: pa.DataType
    nullable: bool

    def describe(self) -> dict[str, Any]:
        """``{"name": ..., "type": <canonical type text>, "nullable": ...}``."""
        return {"name": self.name, "type": type_text(self.type), "nullable": self.nullable}


ERROR_COLUMN: Final = "error"
"""The per-row error column of ``on_error="error_column"`` UDFs (the server's udfcatalog.ErrorColumn)."""


class SpecBase:
    """What every kind of UDF spec offers the worker: a name and a JSON description."""

    name: str

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def output_schema(self) -> pa.Schema:
        """The schema of the batches the UDF returns."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class UdfSpec(SpecBase):
    """Everything fletch knows about one decorated function.

    Attributes:
        name: the UDF's name (``name=`` or the function's ``__name__``).
        function: the decorated function, unchanged.
        params: the parameters in order.
        result: the result; its name is the UDF's name. Row-wise results are nullable iff the return
            annotation is Optional; vectorized results are always nullable.
        vectorized: whether the function is called once per batch with pyarrow arrays.
        volatility: ``immutable``, ``stable`` or ``volatile``.
        doc: ``doc=`` or the function's docstring (``inspect.getdoc``), else "".
        module: the function's ``__module__``.
        qualname: the function's ``__qualname__``.
    """

    name: str
    function: Callable[..., Any]
    params: list[Param]
    result: Param
    vectorized: bool
    volatility: Volatility
    doc: str
    module: str
    qualname: str
    _evaluator: RowwiseEvaluator | VectorizedEvaluator = field(repr=False)
    on_error: OnError = "raise"
    is_async: bool = False
    max_concurrency: int | None = None
    timeout: float | None = None

    def describe(self) -> dict[str, Any]:
        """The JSON-able description the Go server parses (it fills in ``version``)."""
        return {
            "name": self.name,
            "kind": "scalar",
            "language": "python",
            "params": [p.describe() for p in self.params],
            "return": self.result.describe(),
            "doc": self.doc,
            "volatility": self.volatility,
            "on_error": self.on_error,
            "version": "",
        }

    def evaluate(self, batch: pa.RecordBatch) -> pa.Array:
        """Run the UDF over a batch whose columns are the parameters in order (names are ignored).

        Returns an array of ``batch.num_rows`` values of the result type. A null in a non-Optional parameter
        gives a null result for that row without calling the function.

        Raises:
            UdfError: the function raised, returned None for a non-Optional result, or returned values that do
                not convert to the result type (or, vectorized, the wrong number of values).
            ValueError: the batch does not have one column per parameter, or a column cannot be cast to its
                parameter's type (a caller bug).
        """
        return self._evaluator(batch)

    def output_schema(self) -> pa.Schema:
        """The result column, nullable even when the function never returns None: a null argument it does
        not take, or a failed row under ``on_error="null"``, makes the row null (docs/types.md)."""
        return self._output_schemas[0]

    @functools.cached_property
    def _output_schemas(self) -> tuple[pa.Schema, pa.Schema]:
        """The output schema, and the same with the error column: made once, since a worker's every call
        would otherwise build them again."""
        plain = pa.schema([pa.field(self.name, self.result.type, nullable=True)])
        return plain, plain.append(pa.field(ERROR_COLUMN, pa.utf8(), nullable=True))

    def outputs(self, batch: pa.RecordBatch) -> list[pa.RecordBatch]:
        """What a worker returns for batch: one batch of the results and, under ``on_error="error_column"``
        when some row failed, its ``error`` column."""
        result, errors = self.evaluate_with_errors(batch)
        if errors is None:
            return [pa.RecordBatch.from_arrays([result], schema=self._output_schemas[0])]
        return [pa.RecordBatch.from_arrays([result, errors], schema=self._output_schemas[1])]

    def evaluate_with_errors(self, batch: pa.RecordBatch) -> tuple[pa.Array, pa.Array | None]:
        """evaluate, applying the UDF's ``on_error`` policy to rows that fail.

        ``raise``: a failing row fails the batch (UdfError). ``null``: failing rows are null and each
        failure is logged. ``error_column``: failing rows are null and the second value is a utf8 column
        with each failing row's message (null elsewhere); it is None when no row failed.
        """
        if self.on_error == "raise":
            return self._evaluator(batch), None
        values, errors = self._evaluator.evaluate(batch)
        if not errors:
            return values, None
        if self.on_error == "null":
            for row in sorted(errors):
                _log.warning("%s: row %d failed and is null (on_error=null): %s", self.name, row, errors[row])
            return values, None
        messages: list[str | None] = [None] * batch.num_rows
        for row, err in errors.items():
            messages[row] = f"{err.exc_type}: {err.message}" if err.message else err.exc_type
        return values, pa.array(messages, pa.utf8())


@overload
def udf(fn: _F, /) -> _F: ...


@overload
def udf(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    input_types: Sequence[str | pa.DataType] | None = None,
    result_type: str | pa.DataType | None = None,
    vectorized: bool | None = None,
    volatility: Volatility = "volatile",
    doc: str | None = None,
    on_error: OnError = "raise",
    max_concurrency: int | None = None,
    timeout: float | None = None,
) -> Callable[[_F], _F]: ...


def udf(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    input_types: Sequence[str | pa.DataType] | None = None,
    result_type: str | pa.DataType | None = None,
    vectorized: bool | None = None,
    volatility: Volatility = "volatile",
    doc: str | None = None,
    on_error: OnError = "raise",
    max_concurrency: int | None = None,
    timeout: float | None = None,
) -> Any:
    """Declare a function as a fletch UDF; use as ``@udf`` or ``@udf(...)``.

    The signature comes from the annotations (see the README's table: ``int`` is ``int64``, ``Decimal`` is
    ``decimal128(38, 9)``, ``Optional[T]`` accepts nulls, ``Annotated[T, pa.int32()]`` picks the Arrow type),
    or from ``input_types`` and ``result_type`` (canonical type text such as ``"int32"`` or pyarrow
    DataTypes), which then override the annotations. A parameter annotated with a pyarrow array class
    (``pa.Int64Array``, ``Annotated[pa.Array, pa.float32()]``) or ``vectorized=True`` makes the UDF
    vectorized: it is called once per batch with pyarrow arrays.

    The spec is built immediately, so a mistake fails at import naming the function. It is stored as the
    function's ``__fletch_udf__`` attribute and the function itself is returned unchanged.

    Args:
        name: the UDF's name; defaults to the function's ``__name__``.
        input_types: one Arrow type per parameter, overriding the annotations.
        result_type: the result's Arrow type, overriding the return annotation.
        vectorized: True to call the function with whole columns, False to forbid it, None to decide from the
            annotations.
        volatility: ``"volatile"`` (the default), ``"stable"`` or ``"immutable"``.
        doc: the description; defaults to the docstring.
        on_error: what a failing row does: ``"raise"`` (the default) fails the batch; ``"null"`` makes the
            row null and logs the failure; ``"error_column"`` makes it null and reports its message in a
            second column, sent only with batches where some row failed (RisingWave's convention).
        max_concurrency: for an ``async def`` UDF, how many calls may be in flight per worker (default 100).
        timeout: for an ``async def`` UDF, the seconds one call may take; a late row fails (see on_error).
    """

    def decorate(function: _F) -> _F:
        spec = _build_spec(
            function,
            name=name,
            input_types=input_types,
            result_type=result_type,
            vectorized=vectorized,
            volatility=volatility,
            doc=doc,
            on_error=on_error,
            max_concurrency=max_concurrency,
            timeout=timeout,
        )
        try:
            setattr(function, _ATTRIBUTE, spec)
        except (AttributeError, TypeError):
            raise TypeError(
                f"udf {spec.qualname}: cannot store the spec on {type(function).__name__} objects; "
                "decorate a plain function"
            ) from None
        return function

    if fn is None:
        return decorate
    if not callable(fn):
        raise TypeError(
            f"udf() takes the function as its only positional argument, not {type(fn).__name__}; "
            "pass options by keyword, as in @udf(name=...)"
        )
    return decorate(fn)


def positional_params(
    label: str, function: Callable[..., Any], *, skip_self: bool = False
) -> list[inspect.Parameter]:
    """function's parameters (without ``self`` if skip_self), each of which must be plainly positional."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError) as err:
        raise TypeError(f"{label}: cannot read the signature: {err}") from None
    if skip_self:
        parameters = parameters[1:]
    for p in parameters:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            star = "*" if p.kind is p.VAR_POSITIONAL else "**"
            raise TypeError(
                f"{label}: parameter {star}{p.name} is variadic; declare each parameter separately"
            )
        if p.kind is p.KEYWORD_ONLY:
            raise TypeError(
                f"{label}: parameter {p.name} is keyword-only; "
                "make it positional (remove the bare * before it)"
            )
    return parameters


def collect(module: types.ModuleType) -> list[SpecBase]:
    """The specs of the decorated functions bound in module's namespace, in definition order.

    A function bound to several names counts once. Decorated functions imported from other modules are
    included too, since they are bound in the namespace.
    """
    specs: list[SpecBase] = []
    seen: set[int] = set()
    for value in list(vars(module).values()):
        try:
            attributes = vars(value)
        except TypeError:  # no __dict__, so not decorated
            continue
        spec = attributes.get(_ATTRIBUTE)
        if isinstance(spec, SpecBase) and id(spec) not in seen:
            seen.add(id(spec))
            specs.append(spec)
    return specs


# ----------------------------------------------------------------------------------------------------------
# Building the spec
# ----------------------------------------------------------------------------------------------------------


def _build_spec(
    function: Callable[..., Any],
    *,
    name: str | None,
    input_types: Sequence[str | pa.DataType] | None,
    result_type: str | pa.DataType | None,
    vectorized: bool | None,
    volatility: str,
    doc: str | None,
    on_error: str = "raise",
    max_concurrency: int | None = None,
    timeout: float | None = None,
) -> UdfSpec:
    qualname = (
        getattr(function, "__qualname__", None) or getattr(function, "__name__", None) or repr(function)
    )
    label = f"udf {qualname}"
    udf_name = _check_name(label, name if name is not None else getattr(function, "__name__", ""))
    if volatility not in _VOLATILITIES:
        raise ValueError(f"{label}: volatility must be one of {', '.join(_VOLATILITIES)}, not {volatility!r}")
    if doc is not None and not isinstance(doc, str):
        raise TypeError(f"{label}: doc must be a str, not {type(doc).__name__}")
    if on_error not in _ON_ERROR:
        raise ValueError(f"{label}: on_error must be one of {', '.join(_ON_ERROR)}, not {on_error!r}")
    is_async = inspect.iscoroutinefunction(function)
    if not is_async and (max_concurrency is not None or timeout is not None):
        raise TypeError(f"{label}: max_concurrency and timeout apply to async def UDFs only")
    if max_concurrency is not None and (not isinstance(max_concurrency, int) or max_concurrency < 1):
        raise ValueError(f"{label}: max_concurrency must be a positive int, not {max_concurrency!r}")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f"{label}: timeout must be a positive number of seconds, not {timeout!r}")

    parameters = positional_params(label, function)
    explicit_inputs = _explicit_input_types(label, parameters, input_types)
    explicit_result = None if result_type is None else _explicit_type(label, "result_type", result_type)
    hints = _type_hints(
        label, function, fully_explicit=explicit_inputs is not None and explicit_result is not None
    )
    globalns: Mapping[str, Any] | None = getattr(function, "__globals__", None)

    array_annotated = [
        (p.name, hints[p.name])
        for p in parameters
        if p.name in hints and array_class_of(hints[p.name]) is not None
    ]
    if "return" in hints and array_class_of(hints["return"]) is not None:
        array_annotated.append(("return", hints["return"]))
    if vectorized is None:
        is_vectorized = bool(array_annotated)
    elif not vectorized and array_annotated:
        what, hint = array_annotated[0]
        where = "the return value" if what == "return" else f"parameter {what}"
        raise TypeError(
            f"{label}: {where} is annotated {describe_annotation(hint)}, which needs vectorized evaluation; "
            "remove vectorized=False or annotate it with a Python type"
        )
    else:
        is_vectorized = bool(vectorized)

    params, plans = infer_params(label, parameters, hints, explicit_inputs, globalns)

    return_hint = hints.get("return", _MISSING)
    if explicit_result is not None:
        annotation = None if return_hint is _MISSING else return_hint
        result_info = override(annotation, explicit_result, globalns=globalns)
        nullable = True if return_hint is _MISSING else is_optional(return_hint)
    elif return_hint is _MISSING:
        raise TypeError(
            f"{label}: the return value has no type annotation; annotate it (-> int) or pass result_type=..."
        )
    else:
        result_info = _infer(label, "return", return_hint, "result_type=...", globalns)
        nullable = result_info.nullable
    if is_vectorized:
        nullable = True
    _check_formattable(label, "the return value", result_info.type)
    shown = type_text(result_info.type) if return_hint is _MISSING else describe_annotation(return_hint)
    result_plan = ResultPlan(result_info.type, nullable, result_info.to_arrow, shown)

    collect_errors = on_error != "raise"
    evaluator: RowwiseEvaluator | VectorizedEvaluator
    if is_vectorized:
        evaluator = VectorizedEvaluator(udf_name, function, plans, result_plan, collect_errors=collect_errors)
    elif is_async:
        evaluator = AsyncRowwiseEvaluator(
            udf_name,
            function,
            plans,
            result_plan,
            collect_errors=collect_errors,
            max_concurrency=max_concurrency or DEFAULT_MAX_CONCURRENCY,
            timeout=None if timeout is None else float(timeout),
        )
    else:
        evaluator = RowwiseEvaluator(udf_name, function, plans, result_plan, collect_errors=collect_errors)
    return UdfSpec(
        name=udf_name,
        function=function,
        params=params,
        result=Param(udf_name, result_info.type, nullable),
        vectorized=is_vectorized,
        volatility=typing.cast(Volatility, volatility),
        doc=doc if doc is not None else (inspect.getdoc(function) or ""),
        module=getattr(function, "__module__", None) or "",
        qualname=qualname,
        _evaluator=evaluator,
        on_error=typing.cast(OnError, on_error),
        is_async=is_async,
        max_concurrency=(max_concurrency or DEFAULT_MAX_CONCURRENCY)
        if is_async and not is_vectorized
        else None,
        timeout=None if timeout is None else float(timeout),
    )


def infer_params(
    label: str,
    parameters: Sequence[inspect.Parameter],
    hints: Mapping[str, Any],
    explicit_inputs: Sequence[pa.DataType] | None,
    globalns: Mapping[str, Any] | None,
) -> tuple[list[Param], list[ParamPlan]]:
    """The declared parameters and how each is passed, from annotations or explicit input types."""
    params: list[Param] = []
    plans: list[ParamPlan] = []
    for i, p in enumerate(parameters):
        hint = hints.get(p.name, _MISSING)
        if explicit_inputs is not None:
            info = override(None if hint is _MISSING else hint, explicit_inputs[i], globalns=globalns)
            if hint is _MISSING:
                info = TypeInfo(info.type, nullable=False)
        elif hint is _MISSING:
            raise TypeError(
                f"{label}: parameter {p.name} has no type annotation; "
                f"annotate it ({p.name}: int) or pass input_types=[...]"
            )
        else:
            info = _infer(label, f"parameter {p.name}: ", hint, "input_types=[...]", globalns)
        _check_formattable(label, f"parameter {p.name}", info.type)
        params.append(Param(p.name, info.type, info.nullable))
        plans.append(ParamPlan(p.name, info.type, info.nullable, info.to_python, contains_map(info.type)))

    return params, plans


def _check_name(label: str, name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{label}: name must be a str, not {type(name).__name__}")
    size = len(name.encode("utf-8", "surrogatepass"))
    if not 1 <= size <= _MAX_NAME_LEN or not _is_valid_utf8(name):
        raise ValueError(f"{label}: name {name!r} must be 1..{_MAX_NAME_LEN} bytes of UTF-8")
    if "/" in name or "\x00" in name:
        raise ValueError(f"{label}: name {name!r} must not contain '/' or NUL")
    return name


def _is_valid_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _explicit_type(label: str, what: str, value: object) -> pa.DataType:
    if isinstance(value, pa.DataType):
        return value
    if isinstance(value, str):
        try:
            return parse_type_text(value)
        except ValueError as err:
            raise ValueError(f"{label}: {what}: {err}") from None
    raise TypeError(f"{label}: {what} must be type text such as 'int64' or a pyarrow DataType, not {value!r}")


def _explicit_input_types(
    label: str, parameters: list[inspect.Parameter], input_types: Sequence[str | pa.DataType] | None
) -> list[pa.DataType] | None:
    if input_types is None:
        return None
    if isinstance(input_types, (str, pa.DataType)):
        raise TypeError(
            f"{label}: input_types must be a list with one type per parameter, as in input_types=[...]"
        )
    types_ = list(input_types)
    if len(types_) != len(parameters):
        names = ", ".join(p.name for p in parameters) or "none"
        raise TypeError(
            f"{label}: input_types has {len(types_)} types but the function has {len(parameters)} "
            f"parameters ({names})"
        )
    return [
        _explicit_type(label, f"input_types[{i}] (parameter {p.name})", t)
        for i, (p, t) in enumerate(zip(parameters, types_, strict=True))
    ]


def _type_hints(label: str, function: Callable[..., Any], *, fully_explicit: bool) -> dict[str, Any]:
    target: Any = function
    if sys.version_info < (3, 11) and isinstance(function, types.FunctionType) and function.__defaults__:
        # Python 3.10 turns `x: int = None` into Optional[int]; later versions (and so the server's
        # interpreter) do not. Resolving the annotations of a copy without defaults keeps them alike.
        target = types.FunctionType(
            function.__code__, function.__globals__, function.__name__, None, function.__closure__
        )
        target.__annotations__ = function.__annotations__
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception as err:
        if fully_explicit:
            return {}  # input_types and result_type say everything; annotations only add nullability
        raise TypeError(
            f"{label}: cannot resolve the type annotations: {err}; define or import the names they use "
            "before the function, or pass input_types=[...] and result_type=..."
        ) from None


def _infer(label: str, where: str, hint: object, fix: str, globalns: Mapping[str, Any] | None) -> TypeInfo:
    try:
        return infer(hint, fix=fix, globalns=globalns)
    except AnnotationError as err:
        message = str(err)
        if where == "return":  # "return type complex is not supported", else "return value: ..."
            where = "return " if message.startswith("type ") else "return value: "
        raise TypeError(f"{label}: {where}{message}") from None
    except NameError as err:
        raise TypeError(f"{label}: {where.strip()} cannot resolve the annotation: {err}") from None


def _check_formattable(label: str, where: str, t: pa.DataType) -> None:
    try:
        type_text(t)
    except TypeError as err:
        raise TypeError(f"{label}: {where}: {err}; fletch types need canonical type text") from None
