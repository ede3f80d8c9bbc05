"""fletch: write Apache Arrow Flight UDFs for the fletch server in Python.

Decorate a function with :func:`udf`; its annotations give the Arrow signature::

    from fletch import udf

    @udf
    def scale(x: float, factor: float) -> float:
        return x * factor

The fletch worker imports UDF modules, finds their functions with :func:`collect` and runs them with
:meth:`UdfSpec.evaluate`.

:class:`Client` calls the UDFs of a fletch server, and :mod:`fletch.testing` runs UDF modules in process to
unit-test them (see docs/client.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fletch._errors import (
    Cancelled,
    DeadlineExceeded,
    FletchError,
    MessageTooLarge,
    PermissionDenied,
    ServerError,
    SignatureMismatch,
    UdfError,
    UdfNotFound,
    Unauthenticated,
    Unavailable,
    WorkerCrashed,
)
from fletch._info import ParamInfo, UdfInfo
from fletch._kinds import AggregateSpec, TableSpec, TransformSpec, transform, udaf, udtf
from fletch._types import DEFAULT_DECIMAL, TypeTextError, parse_type_text, type_text
from fletch._udf import Param, UdfSpec, Volatility, collect, udf

if TYPE_CHECKING:
    from fletch import testing
    from fletch._client import Client, ResultStream

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The client needs pyarrow.flight and fletch.testing the UDF machinery; the server's workers import
    # fletch but use neither, so they are imported on first use.
    if name in ("Client", "ResultStream"):
        from fletch import _client

        return getattr(_client, name)
    if name == "testing":
        import importlib

        return importlib.import_module("fletch.testing")
    raise AttributeError(f"module 'fletch' has no attribute {name!r}")


__all__ = [
    "DEFAULT_DECIMAL",
    "AggregateSpec",
    "Cancelled",
    "Client",
    "DeadlineExceeded",
    "FletchError",
    "MessageTooLarge",
    "Param",
    "ParamInfo",
    "PermissionDenied",
    "ResultStream",
    "ServerError",
    "SignatureMismatch",
    "TableSpec",
    "TransformSpec",
    "TypeTextError",
    "UdfError",
    "UdfInfo",
    "UdfNotFound",
    "UdfSpec",
    "Unauthenticated",
    "Unavailable",
    "Volatility",
    "WorkerCrashed",
    "__version__",
    "collect",
    "parse_type_text",
    "testing",
    "transform",
    "type_text",
    "udaf",
    "udf",
    "udtf",
]
