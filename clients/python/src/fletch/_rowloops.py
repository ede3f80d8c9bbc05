"""How row-wise evaluation goes over a batch's rows: a call loop per common shape, and null policy helpers.

Each loop does no Python work per row beyond the call itself, or the call and a None test for the parameters
whose nulls skip the call. A failing row is located from how far the loop's input iterator got, so no row is
ever called twice: the function may have side effects.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "FILTER_FROM",
    "RowFailure",
    "call_each",
    "call_skipping_none",
    "drops_nulls",
    "expand",
    "same_row",
    "skipped_rows",
]


class RowFailure(Exception):
    """The function failed on row ``row`` (counting the rows the loop called it on).

    ``cause`` is what it raised, or None when it raised StopIteration inside ``map``, which ends the loop
    early instead of propagating.
    """

    def __init__(self, row: int, cause: Exception | None) -> None:
        super().__init__(row, cause)
        self.row = row
        self.cause = cause


def call_each(function: Callable[..., Any], args: Sequence[list[Any]], count: int) -> list[Any]:
    """function(*row) for each of the count rows of args (one list of values per parameter)."""
    if len(args) == 1:
        # A comprehension, not map: CPython 3.11+ runs a Python function called from bytecode in the same
        # interpreter loop, which saves a few ns a call over map's call from C.
        source = iter(args[0])
        try:
            return [function(x) for x in source]
        except StopIteration as err:  # a comprehension does not swallow it; report it as map does
            raise RowFailure(count - operator.length_hint(source) - 1, None) from err
        except Exception as err:
            raise RowFailure(count - operator.length_hint(source) - 1, err) from err
    # For several parameters map beats unpacking zip's tuples in a comprehension. It takes a row's arguments,
    # then calls the function: when that raises, the first iterator has yielded exactly the rows up to and
    # including the failing one.
    source_: Any
    if not args:
        source_ = itertools.repeat((), count)
        calls: Any = itertools.starmap(function, source_)
    else:
        iterators = [iter(a) for a in args]
        source_ = iterators[0]
        calls = map(function, *iterators)
    try:
        values = list(calls)
    except Exception as err:
        raise RowFailure(count - operator.length_hint(source_) - 1, err) from err
    if len(values) != count:  # StopIteration raised by the function ends map early instead of propagating
        raise RowFailure(len(values), None)
    return values


def call_skipping_none(
    function: Callable[..., Any], args: Sequence[list[Any]], held: Sequence[int], count: int
) -> list[Any]:
    """Like call_each for one or two parameters, but a row where a parameter listed in held is None gives None
    without a call (the null policy; to_pylist gives None exactly for nulls in fletch's parameter types)."""
    if len(args) == 1:
        source = iter(args[0])
        try:
            return [None if x is None else function(x) for x in source]
        except StopIteration as err:  # a comprehension does not swallow it; report it as map does
            raise RowFailure(count - operator.length_hint(source) - 1, None) from err
        except Exception as err:
            raise RowFailure(count - operator.length_hint(source) - 1, err) from err
    if len(args) != 2:
        raise ValueError(f"call_skipping_none takes one or two parameters, not {len(args)}")
    source, other = iter(args[0]), iter(args[1])
    # zip takes both arguments of a row before the call, so source's position counts the rows here too.
    try:
        if len(held) == 2:
            return [
                None if x is None or y is None else function(x, y) for x, y in zip(source, other, strict=True)
            ]
        if held[0] == 0:
            return [None if x is None else function(x, y) for x, y in zip(source, other, strict=True)]
        return [None if y is None else function(x, y) for x, y in zip(source, other, strict=True)]
    except StopIteration as err:
        raise RowFailure(count - operator.length_hint(source) - 1, None) from err
    except Exception as err:
        raise RowFailure(count - operator.length_hint(source) - 1, err) from err


def same_row(i: int) -> int:
    return i


# For one and two parameters: from how many nulls, and from which share of the batch (1/4, 1/16), dropping
# the rows with Arrow before converting and calling beats testing each row in the loop. The kernels cost about
# as much as 500 rows' tests; two parameters gain more, since map then takes both columns without zip's tuples
# (timed both ways on benchmarks/python/roweval_bench.py's batches, CPython 3.11 and 3.14).
FILTER_FROM: Final = {1: (512, 4), 2: (256, 16)}


def drops_nulls(arity: int, nulls: int, rows: int) -> bool:
    """Whether rows with nulls (nulls counts them over the non-Optional parameters' columns) are dropped with
    Arrow rather than skipped in the loop."""
    if arity > 2:
        return True
    least, share = FILTER_FROM[arity]
    return nulls >= least and share * nulls >= rows


def skipped_rows(columns: Sequence[pa.Array], held: Sequence[int], rows: int) -> int:
    """How many rows have a null in one of the columns that held lists."""
    if len(held) == 1:
        return int(columns[held[0]].null_count)
    valid = -1  # every bit set
    for i in held:  # AND the validity bitmaps, as Python ints: no kernel call for a count
        column = columns[i]
        bitmap = column.buffers()[0]
        if bitmap is None:  # no bitmap: all valid, or (null type) all null
            valid &= 0 if column.null_count else -1
        else:
            valid &= int.from_bytes(bitmap, "little") >> column.offset
    return rows - (valid & ((1 << rows) - 1)).bit_count()


def expand(result: pa.Array, mask: pa.Array) -> pa.Array:
    """Spread result (one value per True in mask) over len(mask) rows, null where mask is False."""
    try:  # one kernel where the type has one (not nested or view types)
        return pc.replace_with_mask(pa.nulls(len(mask), result.type), mask, result)
    except pa.ArrowNotImplementedError:
        pass
    positions = pc.subtract(pc.cumulative_sum(mask.cast(pa.int64())), 1)
    indices = pc.if_else(mask, positions, pa.scalar(None, pa.int64()))
    try:
        return result.take(indices)
    except pa.ArrowNotImplementedError:  # no take kernel (view types): do it in Python
        values = iter(result.to_pylist())
        return pa.array([next(values) if valid else None for valid in mask.to_pylist()], type=result.type)
