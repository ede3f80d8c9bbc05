"""The benchmark workloads on RisingWave's arrow-udf Python server (PyPI `arrow-udf`).

Each function is declared with arrow-udf's own `@udf` and served by its `UdfServer`. The vectorized
workloads use `batch=True`, the fastest mode arrow-udf offers: one call per batch, with every column
converted to a Python list (arrow-udf calls `as_py()` on each value) and the returned list converted
back. `plus_one` is row-wise, arrow-udf's default mode: one call per row, no I/O threads.

    python arrowudf_server.py --listen 127.0.0.1:8818
"""

import argparse
import platform
from importlib.metadata import version

import pyarrow as pa
from arrow_udf import UdfServer, udf


@udf(input_types=["BIGINT"], result_type="BIGINT", batch=True)
def echo_int64(x):
    return x


@udf(input_types=["VARCHAR"], result_type="VARCHAR", batch=True)
def echo_utf8(s):
    return s


@udf(input_types=["BIGINT", "BIGINT"], result_type="BIGINT", batch=True)
def add_int64(a, b):
    return [None if x is None or y is None else x + y for x, y in zip(a, b, strict=True)]


@udf(input_types=["VARCHAR"], result_type="VARCHAR", batch=True)
def upper(s):
    return [None if v is None else v.upper() for v in s]


@udf(input_types=["BIGINT"], result_type="BIGINT")
def plus_one(x):
    return x + 1


@udf(input_types=["BIGINT"], result_type="VARCHAR", batch=True)
def versions(x):
    text = f"CPython {platform.python_version()}, pyarrow {pa.__version__}, arrow-udf {version('arrow-udf')}"
    return [text] * len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8818", help="host:port")
    args = parser.parse_args()
    server = UdfServer(location=args.listen)
    for fn in (echo_int64, echo_utf8, add_int64, upper, plus_one, versions):
        server.add_function(fn)
    server.serve()


if __name__ == "__main__":
    main()
