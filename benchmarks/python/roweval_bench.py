"""Row-wise evaluation overhead: fletch's evaluation of a batch beside the bare Python loop.

For each case and batch size it times, in the same process, the loop a user would write by hand

    out = [f(x) for x in col.to_pylist()]; pa.array(out, type)

and ``UdfSpec.outputs(batch)``, what the worker calls for every batch, on the same function and batch, and
prints the best ns/row of each, their ratio (fletch / bare) and the median of the per-run ratios. Where the
column has nulls and the parameter is not Optional, the bare loop skips them by hand:
``[None if x is None else f(x) for x in ...]``.

Run it from the repository root with any Python that has pyarrow:

    PYTHONPATH=clients/python/src .venv/bin/python benchmarks/python/roweval_bench.py
    PYTHONPATH=clients/python/src python3 benchmarks/python/roweval_bench.py --repeat 500 --rows 1024,65536
    PYTHONPATH=clients/python/src .venv/bin/python benchmarks/python/roweval_bench.py --on-error null
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from fletch import udf

# Each run decorates these with the --on-error policy asked for (see _spec).


def plus_one(x: int) -> int:
    return x + 1


def add(a: int, b: int) -> int:
    return a + b


def upper(s: str) -> str:
    return s.upper()


def twice(x: float) -> float:
    return x * 2.0


def plus_one_or_zero(x: int | None) -> int:
    return 0 if x is None else x + 1


@dataclass(frozen=True)
class Case:
    name: str
    function: Callable[..., Any]
    columns: Callable[[int], list[pa.Array]]
    bare: Callable[[Callable[..., Any], list[pa.Array], pa.DataType], pa.Array]
    type: pa.DataType


def _ints(rows: int, null_every: int = 0, seed: int = 0) -> pa.Array:
    rng = random.Random(rows + seed)
    return pa.array(
        [None if null_every and rng.randrange(null_every) == 0 else i for i in range(rows)], pa.int64()
    )


def _bare1(f: Callable[..., Any], cols: list[pa.Array], t: pa.DataType) -> pa.Array:
    out = [f(x) for x in cols[0].to_pylist()]
    return pa.array(out, t)


def _bare1_skip_nulls(f: Callable[..., Any], cols: list[pa.Array], t: pa.DataType) -> pa.Array:
    out = [None if x is None else f(x) for x in cols[0].to_pylist()]
    return pa.array(out, t)


def _bare2(f: Callable[..., Any], cols: list[pa.Array], t: pa.DataType) -> pa.Array:
    out = [f(a, b) for a, b in zip(cols[0].to_pylist(), cols[1].to_pylist(), strict=True)]
    return pa.array(out, t)


def _bare2_skip_nulls(f: Callable[..., Any], cols: list[pa.Array], t: pa.DataType) -> pa.Array:
    pairs = zip(cols[0].to_pylist(), cols[1].to_pylist(), strict=True)
    out = [None if a is None or b is None else f(a, b) for a, b in pairs]
    return pa.array(out, t)


CASES = [
    Case("int64 x+1", plus_one, lambda n: [_ints(n)], _bare1, pa.int64()),
    Case("int64 x+1, 10% null", plus_one, lambda n: [_ints(n, 10)], _bare1_skip_nulls, pa.int64()),
    Case("int64 x+1, 50% null", plus_one, lambda n: [_ints(n, 2)], _bare1_skip_nulls, pa.int64()),
    Case("int64 a+b", add, lambda n: [_ints(n), _ints(n)], _bare2, pa.int64()),
    Case(
        "int64 a+b, 10% null each",
        add,
        lambda n: [_ints(n, 10), _ints(n, 10, seed=1)],
        _bare2_skip_nulls,
        pa.int64(),
    ),
    Case(
        "utf8 s.upper()",
        upper,
        lambda n: [pa.array([f"row {i} of the batch" for i in range(n)], pa.utf8())],
        _bare1,
        pa.utf8(),
    ),
    Case(
        "float64 x*2.0",
        twice,
        lambda n: [pa.array([i * 0.5 for i in range(n)], pa.float64())],
        _bare1,
        pa.float64(),
    ),
    Case("Optional int64, 10% null", plus_one_or_zero, lambda n: [_ints(n, 10)], _bare1, pa.int64()),
]


def _spec(function: Callable[..., Any], on_error: str) -> Any:
    """function's UdfSpec under on_error. Decorating again replaces the spec stored on the function; the bare
    loop calls the same function object (on CPython 3.14 a copy made with types.FunctionType calls slower)."""
    return udf(on_error=on_error)(function).__fletch_udf__  # type: ignore[call-overload]


def measure(case: Case, rows: int, repeat: int, on_error: str) -> tuple[float, float, float]:
    """Best-of-repeat ns/row of the bare loop and of fletch, and the median of the per-run ratios.

    The two are timed alternately, in alternating order, so load from elsewhere hits both alike.
    """
    spec = _spec(case.function, on_error)
    columns = case.columns(rows)
    batch = pa.record_batch(columns, names=[p.name for p in spec.params])
    expected = case.bare(case.function, columns, case.type)
    got = spec.outputs(batch)[0].column(0)
    if not got.equals(expected):
        raise SystemExit(f"{case.name}: fletch and the bare loop disagree at {rows} rows")
    clock = time.perf_counter_ns
    bare: list[int] = []
    fletch: list[int] = []
    for i in range(repeat):
        for side in (0, 1) if i % 2 else (1, 0):
            start = clock()
            if side:
                spec.outputs(batch)
            else:
                case.bare(case.function, columns, case.type)
            (fletch if side else bare).append(clock() - start)
    ratio = statistics.median(f / b for f, b in zip(fletch, bare, strict=True))
    return min(bare) / rows, min(fletch) / rows, ratio


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1024,8192,65536", help="comma-separated batch sizes")
    parser.add_argument("--repeat", type=int, default=200, help="timed runs of each (best taken)")
    parser.add_argument("--case", action="append", help="only cases whose name contains this (repeatable)")
    parser.add_argument("--on-error", default="raise", choices=["raise", "null", "error_column"])
    args = parser.parse_args(argv)
    sizes = [int(r) for r in args.rows.split(",")]
    cases = [c for c in CASES if not args.case or any(s in c.name for s in args.case)]
    out = sys.stdout
    out.write(
        f"CPython {platform.python_version()}, pyarrow {pa.__version__}; on_error={args.on_error}; "
        f"best of {args.repeat} runs\n\n"
    )
    out.write(f"| {'case':<26} | {'rows':>6} | bare ns/row | fletch ns/row | ratio | median ratio |\n")
    out.write(f"|{'-' * 28}|{'-' * 7}:|{'-' * 12}:|{'-' * 14}:|{'-' * 6}:|{'-' * 13}:|\n")
    gc.collect()
    for case in cases:
        for rows in sizes:
            bare, fletch, ratio = measure(case, rows, args.repeat, args.on_error)
            out.write(
                f"| {case.name:<26} | {rows:>6} | {bare:>11.1f} | {fletch:>13.1f} | {fletch / bare:>5.2f} "
                f"| {ratio:>12.2f} |\n"
            )
            out.flush()


if __name__ == "__main__":
    main()
