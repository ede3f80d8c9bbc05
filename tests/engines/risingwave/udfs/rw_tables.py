"""Table functions for the RisingWave client test (tests/engines/risingwave)."""

from collections.abc import Iterator
from typing import NamedTuple, Optional

from fletch import udtf


@udtf
def series(n: int) -> Iterator[int]:
    """0, 1, ..., n-1 for each input row: RisingWave's generate_series-style example."""
    yield from range(n)


@udtf
def split_words(text: str) -> Iterator[str]:
    """One row per word; an empty string yields no row."""
    yield from text.split()


@udtf
def series_raise(n: int) -> Iterator[int]:
    """Like series, but fails on a negative n."""
    if n < 0:
        raise ValueError(f"negative count {n}")
    yield from range(n)


class Labelled(NamedTuple):
    x: Optional[int]
    label: Optional[str]


@udtf
def labelled_series(n: int) -> Iterator[Labelled]:
    """Two output columns: RisingWave's `RETURNS TABLE (x bigint, label varchar)`."""
    for i in range(n):
        yield Labelled(i, f"#{i}")
