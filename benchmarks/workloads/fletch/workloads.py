"""The benchmark workloads as fletch Python UDFs (run with `fletch serve --no-builtins --udf-dir`).

The names match fletch's Go built-ins and the peer servers in benchmarks/peers, so the harness calls
every server the same way. Vectorized functions take and return pyarrow arrays; `plus_one` is row-wise.
"""

import platform

import pyarrow as pa
import pyarrow.compute as pc

from fletch import udf


@udf
def echo_int64(x: pa.Int64Array) -> pa.Int64Array:
    """Identity: the transport and worker hop, with no compute."""
    return x


@udf
def echo_utf8(s: pa.StringArray) -> pa.StringArray:
    """Identity on strings."""
    return s


@udf
def add_int64(a: pa.Int64Array, b: pa.Int64Array) -> pa.Int64Array:
    """One pyarrow kernel over the batch."""
    return pc.add(a, b)


@udf
def upper(s: pa.StringArray) -> pa.StringArray:
    """Unicode upper case with pyarrow's kernel."""
    return pc.utf8_upper(s)


@udf
def plus_one(x: int) -> int:
    """Row-wise: one Python call per row."""
    return x + 1


@udf
def versions(x: int) -> str:
    """What this server runs, for the benchmark record."""
    return f"CPython {platform.python_version()}, pyarrow {pa.__version__}"
