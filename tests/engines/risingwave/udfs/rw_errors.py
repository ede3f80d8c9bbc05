"""UDFs of each error policy, for the RisingWave client test (tests/engines/risingwave)."""

from typing import Optional

from fletch import udf


@udf(on_error="raise")
def parse_raise(text: str) -> int:
    """The default policy: a failing row fails the call."""
    return int(text)


@udf(on_error="null")
def parse_null(text: str) -> int:
    """A failing row is NULL."""
    return int(text)


@udf(on_error="error_column")
def parse_error_column(text: str) -> int:
    """A failing row is NULL and RisingWave's error column says why."""
    return int(text)


@udf(on_error="null")
def parse_null_opt(text: str) -> Optional[int]:
    """As parse_null, with a result declared Optional."""
    return int(text)


@udf(on_error="error_column")
def parse_error_column_opt(text: str) -> Optional[int]:
    """As parse_error_column, with a result declared Optional."""
    return int(text)
