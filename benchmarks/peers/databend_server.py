"""The benchmark workloads on Databend's Python UDF server (PyPI `databend-udf`).

Each function is declared with databend-udf's own `@udf` and served by its `UDFServer`. The
vectorized workloads use `batch_mode=True`, the fastest mode databend-udf offers: one call per batch
with each column as a Python list (databend-udf calls `as_py()` on each value). `plus_one` is
row-wise with `io_threads=None`, the plain sequential loop; the default, 32 I/O threads, sends every
row through a thread pool and is slower for CPU-bound work. VARCHAR is large_utf8 in databend-udf, so
the string functions take and return large_utf8.

    python databend_server.py --listen 127.0.0.1:8819
"""

import argparse
import logging
import platform
from importlib.metadata import version

import pyarrow as pa
from databend_udf import UDFServer, udf


@udf(input_types=["BIGINT"], result_type="BIGINT", batch_mode=True, io_threads=None)
def echo_int64(x):
    return x


@udf(input_types=["VARCHAR"], result_type="VARCHAR", batch_mode=True, io_threads=None)
def echo_utf8(s):
    return s


@udf(input_types=["BIGINT", "BIGINT"], result_type="BIGINT", batch_mode=True, io_threads=None)
def add_int64(a, b):
    return [None if x is None or y is None else x + y for x, y in zip(a, b, strict=True)]


@udf(input_types=["VARCHAR"], result_type="VARCHAR", batch_mode=True, io_threads=None)
def upper(s):
    return [None if v is None else v.upper() for v in s]


@udf(input_types=["BIGINT"], result_type="BIGINT", io_threads=None)
def plus_one(x):
    return x + 1


@udf(input_types=["BIGINT"], result_type="VARCHAR", batch_mode=True, io_threads=None)
def versions(x):
    text = (
        f"CPython {platform.python_version()}, pyarrow {pa.__version__}, "
        f"databend-udf {version('databend-udf')}"
    )
    return [text] * len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8819", help="host:port")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    server = UDFServer(location=args.listen)
    for fn in (echo_int64, echo_utf8, add_int64, upper, plus_one, versions):
        server.add_function(fn)
    server.serve()


if __name__ == "__main__":
    main()
