"""Example UDFs over numbers, one row-wise and one vectorized (not named `numbers`: the stdlib has one)."""

import math

import pyarrow as pa
import pyarrow.compute as pc

from fletch import udf


@udf(volatility="immutable")
def gcd(a: int, b: int) -> int:
    """Greatest common divisor (the function RisingWave's UDF examples start with)."""
    return math.gcd(a, b)


@udf(volatility="immutable")
def fahrenheit(celsius: pa.DoubleArray) -> pa.DoubleArray:
    """Vectorized: called once per batch with the whole column."""
    return pc.add(pc.multiply(celsius, 1.8), 32)
