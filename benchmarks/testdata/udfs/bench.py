"""UDFs the Go benchmarks call through the Python path."""

import pyarrow as pa
import pyarrow.compute as pc

from fletch import udf


@udf
def py_add(a: pa.Int64Array, b: pa.Int64Array) -> pa.Int64Array:
    """Vectorized: one pyarrow kernel over the whole batch."""
    return pc.add(a, b)


@udf
def py_plus_one(x: int) -> int:
    """Row-wise: one Python call per row."""
    return x + 1
