"""Example UDFs of every kind and policy: async, on_error, a table function, an aggregate and a transform.

docs/python-udfs.md calls each of them from pyarrow; tests/test_examples.py checks what it says.
"""

import asyncio
from collections.abc import Iterator
from typing import NamedTuple, Optional

import pyarrow as pa

from fletch import transform, udaf, udf, udtf


@udf(max_concurrency=100, timeout=1.0, on_error="null")
async def slow_square(x: int) -> int:
    """Async: a batch's rows run concurrently (100 at a time per worker); a row over 1 s is null."""
    await asyncio.sleep(0.01)  # stands in for an HTTP call
    return x * x


@udf(on_error="error_column")
def parse_int(text: str) -> int:
    """error_column: a failing row is null, and a second column says why."""
    return int(text)


class Token(NamedTuple):
    token: str
    position: int


@udtf
def tokens(text: str) -> Iterator[Token]:
    """A table function: one output row per word, after a row column naming the input row."""
    for position, word in enumerate(text.split()):
        yield Token(word, position)


@udaf
class average:
    """An aggregate; merge lets it run in two phases across exchanges or servers."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def accumulate(self, x: float) -> None:
        self.total += x
        self.count += 1

    def merge(self, other: "average") -> None:
        self.total += other.total
        self.count += other.count

    def finish(self) -> Optional[float]:
        return self.total / self.count if self.count else None


@transform(input_schema={"x": "float64"})
class running_average:
    """A batch transform with state: the mean of every value so far in the exchange (Fungi's example)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        averages = []
        for value in batch.column("x").to_pylist():
            self.total += value
            self.count += 1
            averages.append(self.total / self.count)
        return pa.record_batch([pa.array(averages, pa.float64())], names=["average"])
