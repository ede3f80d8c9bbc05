"""fletch: write Apache Arrow Flight UDFs for the fletch server in Python.

Decorate a function with :func:`udf`; its annotations give the Arrow signature::

    from fletch import udf

    @udf
    def scale(x: float, factor: float) -> float:
        return x * factor

The fletch worker imports UDF modules, finds their functions with :func:`collect` and runs them with
:meth:`UdfSpec.evaluate`.
"""

from fletch._errors import FletchError, UdfError
from fletch._kinds import AggregateSpec, TableSpec, TransformSpec, transform, udaf, udtf
from fletch._types import DEFAULT_DECIMAL, TypeTextError, parse_type_text, type_text
from fletch._udf import Param, UdfSpec, Volatility, collect, udf

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DECIMAL",
    "AggregateSpec",
    "FletchError",
    "Param",
    "TableSpec",
    "TransformSpec",
    "TypeTextError",
    "UdfError",
    "UdfSpec",
    "Volatility",
    "__version__",
    "collect",
    "parse_type_text",
    "transform",
    "type_text",
    "udaf",
    "udf",
    "udtf",
]
