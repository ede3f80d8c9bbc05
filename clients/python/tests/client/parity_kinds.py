"""UDFs of every kind but scalar, for test_parity.py: each is called in process and through a server.

Values of 13 fail, so that failures are compared too; a server loads this file alone from a directory of
its own, as ``parity_kinds``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Optional

import pyarrow as pa
import pyarrow.compute as pc

from fletch import transform, udaf, udf, udtf

UNLUCKY = 13


class UnluckyError(Exception):
    pass


@udtf
def explode(n: int) -> Iterator[int]:
    """0, 1, ..., n-1: a null n yields nothing, a large one fills several output batches."""
    if n == UNLUCKY:
        raise UnluckyError(f"{n} rows")
    yield from range(n)


class Piece(NamedTuple):
    piece: Optional[str]
    index: int


@udtf
def pieces(text: Optional[str], size: int) -> Iterator[Piece]:
    """text cut into pieces of size characters; a null text is one null piece."""
    if text is None:
        yield Piece(None, 0)
        return
    for index, start in enumerate(range(0, len(text), max(size, 1))):
        yield Piece(text[start : start + max(size, 1)], index)


@udaf
class weighted_mean:
    """The mean of x weighted by w (1 when null); rows with a null x are skipped."""

    def __init__(self) -> None:
        self.total = 0.0
        self.weight = 0.0

    def accumulate(self, x: float, w: Optional[float]) -> None:
        if x == UNLUCKY:
            raise UnluckyError("x is 13")
        weight = 1.0 if w is None else abs(w)
        self.total += x * weight
        self.weight += weight

    def merge(self, other: weighted_mean) -> None:
        self.total += other.total
        self.weight += other.weight

    def finish(self) -> Optional[float]:
        return self.total / self.weight if self.weight else None


@udaf
class vec_sum:
    """A vectorized aggregate: whole columns, nulls already dropped."""

    def __init__(self) -> None:
        self.total = 0

    def accumulate(self, x: pa.Int64Array) -> None:
        self.total += pc.sum(x).as_py() or 0

    def merge(self, other: vec_sum) -> None:
        self.total += other.total

    def finish(self) -> int:
        if self.total == UNLUCKY:
            raise UnluckyError("the total is 13")
        return self.total


@udaf
class count_rows:
    """No merge method, so no combine or merge phase."""

    def __init__(self) -> None:
        self.count = 0

    def accumulate(self, x: Optional[int]) -> None:
        self.count += 1

    def finish(self) -> int:
        return self.count


@transform(input_schema={"x": "int64"})
class running_max:
    """State across batches; at the end, one row of the batches and rows seen."""

    def __init__(self) -> None:
        self.best: Optional[int] = None
        self.batches = 0
        self.rows = 0

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.batches += 1
        self.rows += batch.num_rows
        out = []
        for value in batch.column("x").to_pylist():
            if value == UNLUCKY:
                raise UnluckyError("13 is not a maximum")
            if value is not None and (self.best is None or value > self.best):
                self.best = value
            out.append(self.best)
        return pa.record_batch(
            [pa.array(out, pa.int64()), pa.array([-1] * len(out), pa.int64())], ["max", "n"]
        )

    def finish(self) -> list[pa.RecordBatch]:
        return [pa.record_batch([pa.array([self.rows]), pa.array([self.batches])], names=["max", "n"])]


@transform(input_schema={"x": "int64"}, output_schema={"x": "int64"})
def evens(batch: pa.RecordBatch) -> list[pa.RecordBatch]:
    """Any number of batches of any length: the even values, then the odd ones."""
    x = batch.column(0)
    even = pc.equal(pc.bit_wise_and(x, 1), 0)
    return [batch.filter(even), batch.filter(pc.invert(even))]


@udf(on_error="error_column")
def parse_int(text: str) -> int:
    """error_column: the stream has an error column only if a row of its first batch failed."""
    return int(text)
