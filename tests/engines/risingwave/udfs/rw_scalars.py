"""Scalar UDFs the RisingWave client test calls (tests/engines/risingwave).

Each mirrors a function of RisingWave's own remote-UDF end-to-end tests or exercises one rule of fletch's
null policy; only the documented decorator API is used.
"""

import math
from typing import Optional

import pyarrow as pa
import pyarrow.compute as pc

from fletch import udf


@udf
def gcd(a: int, b: int) -> int:
    """Row-wise, non-Optional parameters: a NULL argument gives a NULL result without a call."""
    return math.gcd(a, b)


@udf
def py_coalesce(a: Optional[int], b: Optional[int]) -> Optional[int]:
    """Row-wise, Optional parameters: receives None."""
    return a if a is not None else b


@udf
def py_upper(s: str) -> str:
    """Row-wise strings."""
    return s.upper()


@udf
def py_add(a: pa.Int64Array, b: pa.Int64Array) -> pa.Int64Array:
    """Vectorized: rows with a NULL argument are NULL in the result."""
    return pc.add(a, b)


@udf
def py_echo_utf8(s: pa.StringArray) -> pa.StringArray:
    """Vectorized strings, returned unchanged."""
    return s
