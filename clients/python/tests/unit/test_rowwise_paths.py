"""The shapes of row-wise evaluation: every path gives the same results, errors and calls.

A batch is evaluated by one of three loops: every row called (no null in a non-Optional parameter), a loop
that skips the rows whose non-Optional parameters are null, or Arrow dropping those rows first (three or more
parameters, or many nulls). The ``strategy`` fixture forces the last two to be chosen for the same batches,
so each case below runs through both; batches without such nulls take the first whatever the strategy.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

import pyarrow as pa
import pytest

import fletch._eval as _eval
from fletch import UdfError, UdfSpec, udf
from fletch._rowloops import skipped_rows

from .test_eval import ROUND_TRIPS, Calls, identity_udf


@pytest.fixture(params=["loop", "filter"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "filter":
        monkeypatch.setattr(_eval, "drops_nulls", lambda arity, nulls, rows: True)
    else:
        monkeypatch.setattr(_eval, "drops_nulls", lambda arity, nulls, rows: arity > 2)
    return str(request.param)


def spec_of(function: Callable[..., Any]) -> UdfSpec:
    spec = getattr(function, "__fletch_udf__", None)
    assert isinstance(spec, UdfSpec)
    return spec


@dataclass(frozen=True)
class Shape:
    """A UDF's parameters and their columns: ``optional[i]`` says whether parameter i is Optional;
    ``nulls[i]`` are the rows where column i is null (column i holds 10*i + row elsewhere)."""

    name: str
    optional: tuple[bool, ...]
    nulls: tuple[frozenset[int], ...]
    rows: int = 12

    def columns(self) -> list[pa.Array]:
        return [
            pa.array([None if r in nulls else 10 * i + r for r in range(self.rows)], pa.int64())
            for i, nulls in enumerate(self.nulls)
        ]

    def called_rows(self) -> list[int]:
        """The rows the null policy calls the function on, in order."""
        return [
            r
            for r in range(self.rows)
            if not any(r in nulls and not opt for nulls, opt in zip(self.nulls, self.optional, strict=True))
        ]

    def arguments(self, row: int) -> tuple[Any, ...]:
        return tuple(None if row in nulls else 10 * i + row for i, nulls in enumerate(self.nulls))


NONE: frozenset[int] = frozenset()
SOME = frozenset({1, 4, 5, 11})
OTHER = frozenset({0, 4, 7})

SHAPES = [
    Shape("no parameters", (), ()),
    Shape("one, no nulls", (False,), (NONE,)),
    Shape("one, nulls", (False,), (SOME,)),
    Shape("one Optional, nulls", (True,), (SOME,)),
    Shape("two, no nulls", (False, False), (NONE, NONE)),
    Shape("two, nulls in the first", (False, False), (SOME, NONE)),
    Shape("two, nulls in the second", (False, False), (NONE, SOME)),
    Shape("two, nulls in both", (False, False), (SOME, OTHER)),
    Shape("two, the second Optional", (False, True), (SOME, OTHER)),
    Shape("two, the first Optional", (True, False), (SOME, OTHER)),
    Shape("two Optional", (True, True), (SOME, OTHER)),
    Shape("three, nulls", (False, True, False), (SOME, OTHER, frozenset({2}))),
    Shape("three, no nulls", (False, False, False), (NONE, NONE, NONE)),
]


def _make(
    shape: Shape,
    behave: Callable[[int], Any],
    *,
    result: object = int,
    on_error: str = "raise",
) -> tuple[UdfSpec, list[tuple[Any, ...]]]:
    """A UDF of shape's parameters whose n-th call (from 0) returns behave(n), and the list of its calls."""
    calls: list[tuple[Any, ...]] = []

    def impl(*args: Any) -> Any:
        calls.append(args)
        return behave(len(calls) - 1)

    names = [f"p{i}" for i in range(len(shape.optional))]
    namespace: dict[str, Any] = {"impl": impl}
    exec(f"def f({', '.join(names)}):\n    return impl({', '.join(names)})\n", namespace)
    f = namespace["f"]
    f.__annotations__ = {
        **{n: Optional[int] if opt else int for n, opt in zip(names, shape.optional, strict=True)},
        "return": result,
    }
    return spec_of(udf(on_error=on_error)(f)), calls


def _batch(shape: Shape) -> pa.RecordBatch:
    if not shape.optional:
        return pa.record_batch([pa.nulls(shape.rows)], names=["_"]).drop_columns(["_"])
    return pa.record_batch(shape.columns(), names=[f"c{i}" for i in range(len(shape.optional))])


def _failure(spec: UdfSpec, shape: Shape) -> UdfError:
    with pytest.raises(UdfError) as caught:
        spec.evaluate(_batch(shape))
    return caught.value


def _total(args: tuple[Any, ...]) -> int:
    return sum(a for a in args if a is not None) + 1000 * sum(a is None for a in args)


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_results_and_calls(shape: Shape, strategy: str) -> None:
    called = shape.called_rows()
    spec, calls = _make(shape, lambda n: _total(shape.arguments(called[n])))
    result = spec.evaluate(_batch(shape))
    assert result.type == pa.int64()
    assert result.to_pylist() == [
        _total(shape.arguments(r)) if r in called else None for r in range(shape.rows)
    ]
    # Optional parameters receive None; a null in another one skips the call.
    assert calls == [shape.arguments(r) for r in called]


FAILING_CALLS = {"first": 0, "middle": 3, "last": -1}


def _nth(called: list[int], which: str) -> int:
    return FAILING_CALLS[which] % len(called)


@pytest.mark.parametrize("which", FAILING_CALLS)
@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_exception_names_the_row_and_no_row_is_called_twice(shape: Shape, which: str, strategy: str) -> None:
    called = shape.called_rows()
    n = _nth(called, which)

    def behave(i: int) -> int:
        if i == n:
            raise ZeroDivisionError(f"call {i}")
        return 0

    spec, calls = _make(shape, behave)
    err = _failure(spec, shape)
    assert (err.row, err.exc_type, err.message) == (called[n], "ZeroDivisionError", f"call {n}")
    assert "in impl" in err.traceback
    assert "fletch/" not in err.traceback  # fletch's own frames are left out
    assert len(calls) == n + 1
    assert calls == [shape.arguments(r) for r in called[: n + 1]]


@pytest.mark.parametrize("which", FAILING_CALLS)
@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_stop_iteration_names_the_row(shape: Shape, which: str, strategy: str) -> None:
    called = shape.called_rows()
    n = _nth(called, which)

    def behave(i: int) -> int:
        if i == n:
            raise StopIteration
        return 0

    spec, calls = _make(shape, behave)
    err = _failure(spec, shape)
    row = called[n]
    assert (err.row, err.exc_type, err.message) == (
        row,
        "StopIteration",
        f"f raised StopIteration for row {row}",
    )
    assert len(calls) == n + 1


@pytest.mark.parametrize("which", FAILING_CALLS)
@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_none_for_a_required_result(shape: Shape, which: str, strategy: str) -> None:
    called = shape.called_rows()
    n = _nth(called, which)
    spec, calls = _make(shape, lambda i: None if i == n else i)
    err = _failure(spec, shape)
    row = called[n]
    assert (err.row, err.exc_type, err.traceback) == (row, "TypeError", "")
    assert err.message == f"f returned None for row {row}, but its return type int is not Optional"
    assert len(calls) == len(called)

    optional, _ = _make(shape, lambda i: None if i == n else i, result=Optional[int])
    expected: list[Any] = [None] * shape.rows
    for i, r in enumerate(called):
        expected[r] = None if i == n else i
    assert optional.evaluate(_batch(shape)).to_pylist() == expected


@pytest.mark.parametrize("which", FAILING_CALLS)
@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_unconvertible_result_names_the_row(shape: Shape, which: str, strategy: str) -> None:
    called = shape.called_rows()
    n = _nth(called, which)
    spec, _ = _make(shape, lambda i: "bad" if i == n else i)
    err = _failure(spec, shape)
    assert (err.row, err.exc_type, err.traceback) == (called[n], "pyarrow.lib.ArrowInvalid", "")
    assert err.message.startswith("returned 'bad', which cannot be converted to int64: ")


def test_none_reported_before_a_later_unconvertible_value(strategy: str) -> None:
    shape = SHAPES[7]  # two parameters with nulls in both
    called = shape.called_rows()
    spec, _ = _make(shape, lambda i: {1: None, 2: "two"}.get(i, i))
    err = _failure(spec, shape)
    assert (err.row, err.exc_type) == (called[1], "TypeError")


@pytest.mark.parametrize("on_error", ["null", "error_column"])
@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_collected_errors_call_each_row_once(shape: Shape, on_error: str, strategy: str) -> None:
    called = shape.called_rows()
    failing = {0, len(called) - 1}

    def behave(i: int) -> int:
        if i in failing:
            raise ValueError(f"call {i}")
        return i

    spec, calls = _make(shape, behave, on_error=on_error)
    values, errors = spec.evaluate_with_errors(_batch(shape))
    expected: list[Any] = [None] * shape.rows
    messages: list[Any] = [None] * shape.rows
    for i, r in enumerate(called):
        expected[r] = None if i in failing else i
        messages[r] = f"ValueError: call {i}" if i in failing else None
    assert values.to_pylist() == expected
    assert calls == [shape.arguments(r) for r in called]
    if on_error == "error_column":
        assert errors is not None
        assert errors.to_pylist() == messages
    else:
        assert errors is None


# (id, first column, second column): sliced columns start mid-bitmap, where counting skipped rows must shift.
TWO_COLUMNS: list[tuple[str, pa.Array, pa.Array]] = [
    (
        "sliced",  # the nulls are past the first 20 bits of each bitmap
        pa.array([None if i in (21, 22, 24) else i for i in range(40)], pa.int64()).slice(5, 20),
        pa.array([None if i in (22, 30) else i for i in range(40)], pa.int64()).slice(11, 20),
    ),
    (
        "same rows null",
        pa.array([None, 1, None, 3]),
        pa.array([None, 5, None, 7]),
    ),
    (
        "every row null",
        pa.array([None, 1, None, 3]),
        pa.array([0, None, 2, None]),
    ),
]


@pytest.mark.parametrize(("name", "a", "b"), TWO_COLUMNS, ids=[c[0] for c in TWO_COLUMNS])
@pytest.mark.parametrize("none_from_call", [None, 0, -1])
def test_two_columns_with_nulls(
    name: str, a: pa.Array, b: pa.Array, none_from_call: int | None, strategy: str
) -> None:
    pairs = list(zip(a.to_pylist(), b.to_pylist(), strict=True))
    called = [r for r, (x, y) in enumerate(pairs) if x is not None and y is not None]
    count = 0

    @udf
    def add(x: int, y: int) -> int:
        nonlocal count
        count += 1
        if none_from_call is not None and called and count - 1 == none_from_call % len(called):
            return None  # type: ignore[return-value]
        return x + y

    batch = pa.record_batch([a, b], names=["x", "y"])
    spec = spec_of(add)
    if none_from_call is None or not called:
        assert spec.evaluate(batch).to_pylist() == [
            x + y if x is not None and y is not None else None for x, y in pairs
        ]
    else:
        with pytest.raises(UdfError) as caught:
            spec.evaluate(batch)
        assert caught.value.row == called[none_from_call % len(called)]
    assert count == len(called)


@pytest.mark.parametrize(
    ("rows", "every"),
    [(4096, 2), (4096, 10), (100, 2)],
    ids=["many nulls", "few nulls", "small batch"],
)
def test_the_chosen_path_agrees_with_plain_python(rows: int, every: int) -> None:
    """Without forcing a strategy: whichever loop the batch size and null count pick gives the same answer."""
    column = pa.array([None if i % every == 0 else i for i in range(rows)], pa.int64())

    @udf
    def fail_late(x: int) -> int:
        if x == rows - 1:
            raise ValueError("last")
        return x * 3

    @udf
    def triple(x: int) -> int:
        return x * 3

    batch = pa.record_batch([column], names=["x"])
    assert spec_of(triple).evaluate(batch).to_pylist() == [
        None if v is None else v * 3 for v in column.to_pylist()
    ]
    with pytest.raises(UdfError) as caught:
        spec_of(fail_late).evaluate(batch)
    assert caught.value.row == rows - 1


def test_a_new_column_type_after_a_batch_that_needed_nothing() -> None:
    @udf
    def twice(x: int) -> int:
        return x * 2

    spec = spec_of(twice)
    assert spec.evaluate(pa.record_batch([pa.array([1, 2])], names=["x"])).to_pylist() == [2, 4]
    assert spec.evaluate(pa.record_batch([pa.array([3], pa.int32())], names=["x"])).to_pylist() == [6]
    assert spec.evaluate(pa.record_batch([pa.array([4, 5])], names=["x"])).to_pylist() == [8, 10]
    with pytest.raises(ValueError, match=r"twice: expected 1 columns \(x\), got 2"):
        spec.evaluate(pa.record_batch([pa.array([1]), pa.array([2])], names=["x", "y"]))
    with pytest.raises(ValueError, match="column of type string cannot be cast to int64"):
        spec.evaluate(pa.record_batch([pa.array(["a"])], names=["x"]))


@pytest.mark.parametrize(("name", "a", "b"), TWO_COLUMNS, ids=[c[0] for c in TWO_COLUMNS])
def test_skipped_rows_counts_rows_with_a_null(name: str, a: pa.Array, b: pa.Array) -> None:
    pairs = zip(a.to_pylist(), b.to_pylist(), strict=True)
    expected = sum(x is None or y is None for x, y in pairs)
    assert skipped_rows([a, b], [0, 1], len(a)) == expected
    assert skipped_rows([a, b], [1], len(a)) == b.null_count


@pytest.mark.parametrize(
    ("name", "annotation", "arrow_type", "values", "arrow_values"),
    ROUND_TRIPS,
    ids=[r[0] for r in ROUND_TRIPS],
)
def test_round_trip_of_every_type_skipping_nulls(
    name: str,
    annotation: object,
    arrow_type: pa.DataType,
    values: list[Any],
    arrow_values: list[Any],
    strategy: str,
) -> None:
    """Nulls in a non-Optional parameter of each type: skipped in the loop, or dropped and put back by Arrow
    (with a kernel, or by take or in Python where the type has none)."""
    calls = Calls()
    spec = spec_of(identity_udf(annotation, calls, optional=False))
    column = pa.array(arrow_values, type=arrow_type)
    result = spec.evaluate(pa.record_batch([column], names=["x"]))
    assert result.type == arrow_type
    assert result.to_pylist(maps_as_pydicts="strict") == column.to_pylist(maps_as_pydicts="strict")
    assert calls.seen == [v for v in values if v is not None]
