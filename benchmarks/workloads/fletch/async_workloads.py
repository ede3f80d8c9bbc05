"""An I/O-bound async UDF: a simulated 10 ms call per row, with 100 or 1,000 calls in flight.

The harness sets BENCH_ASYNC_WORKERS to fletch's --workers, and each worker runs its share of the calls in
flight. Kept apart from workloads.py so that a fletch without async UDF support loses only these two functions
(the module fails to import and the harness reports "not supported yet").
"""

import asyncio
import os

from fletch import udf

WORKERS = max(1, int(os.environ.get("BENCH_ASYNC_WORKERS", "1")))


@udf(max_concurrency=max(1, 100 // WORKERS))
async def async_echo_100(x: int) -> int:
    """100 rows waiting at once across the workers."""
    await asyncio.sleep(0.01)
    return x


@udf(max_concurrency=max(1, 1000 // WORKERS))
async def async_echo_1000(x: int) -> int:
    """1,000 rows waiting at once across the workers."""
    await asyncio.sleep(0.01)
    return x
