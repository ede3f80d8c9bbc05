"""The exceptions fletch raises, in process and from a server.

Errors from a server are classified by gRPC status code in exactly one place, :data:`ERRORS_BY_CODE` and
:func:`from_flight_error`; ``docs/client.md`` has the table.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "ERRORS_BY_CODE",
    "Cancelled",
    "DeadlineExceeded",
    "FletchError",
    "MessageTooLarge",
    "PermissionDenied",
    "ServerError",
    "SignatureMismatch",
    "UdfError",
    "UdfNotFound",
    "Unauthenticated",
    "Unavailable",
    "WorkerCrashed",
    "from_flight_error",
    "grpc_code",
    "parse_udf_error",
    "server_message",
]


class FletchError(Exception):
    """The base of every error fletch raises.

    Attributes:
        code: the gRPC status code name (``"NOT_FOUND"``, ...) when the error came from a server, else None.
    """

    code: str | None = None


FletchError.__module__ = "fletch"


class UdfError(FletchError):
    """A UDF failed on a batch.

    Attributes:
        function: the UDF's name.
        row: the index of the failing row within the batch, or None when unknown (vectorized UDFs).
        exc_type: the exception's class, qualified (``ZeroDivisionError``, ``decimal.InvalidOperation``,
            ``pyarrow.lib.ArrowInvalid``).
        message: the exception's message.
        traceback: the user's traceback (at most the last 10 frames, fletch's own frames removed); empty when
            fletch itself detected the problem (a None result, a value that does not convert, a wrong length).

    ``str(err)`` is ``"<function>: row <n>: <exc_type>: <message>"``, without ``row <n>: `` when the row is
    unknown (and without ``<exc_type>: `` when it is empty, as for native Go UDFs). UdfError pickles.

    From a server (or :mod:`fletch.testing`), ``batch`` is the index of the failing input batch, counting from
    0 in the order the client sent them; ``row`` counts from the start of that batch.
    """

    function: str
    row: int | None
    exc_type: str
    message: str
    traceback: str
    batch: int | None = None

    def __init__(
        self, function: str, row: int | None, exc_type: str, message: str, traceback: str = ""
    ) -> None:
        super().__init__(function, row, exc_type, message, traceback)
        self.function = function
        self.row = row
        self.exc_type = exc_type
        self.message = message
        self.traceback = traceback

    def __str__(self) -> str:
        where = "" if self.row is None else f"row {self.row}: "
        what = (
            f"{self.exc_type}: {self.message}"
            if self.exc_type and self.message
            else self.exc_type or self.message
        )
        return f"{self.function}: {where}{what}"

    @classmethod
    def from_exception(
        cls, function: str, row: int | None, exc: BaseException, *, user: bool = True
    ) -> UdfError:
        """A UdfError describing exc; user=True keeps the traceback of the user's frames."""
        from fletch._eval import _message, exception_type_name, user_traceback

        err = cls(
            function, row, exception_type_name(type(exc)), _message(exc), user_traceback(exc) if user else ""
        )
        err.__cause__ = exc
        return err


UdfError.__module__ = "fletch"  # it is fletch.UdfError to users, pickle and exc_type names


class UdfNotFound(FletchError, LookupError):
    """The server (or module) has no UDF of that name (gRPC ``NOT_FOUND``)."""


class SignatureMismatch(FletchError, TypeError):
    """The input does not fit the UDF's parameters: wrong number of columns, or a column of a type that is not
    the declared one nor a lossless representation of it (gRPC ``INVALID_ARGUMENT``). Also raised before
    anything is sent when Python values (lists, numpy arrays, pandas columns) cannot be converted to a
    parameter's declared type."""


class WorkerCrashed(FletchError):
    """The Python worker running the UDF died: a segfault, ``os._exit``, out of memory (gRPC ``ABORTED``)."""


class Unavailable(FletchError, ConnectionError):
    """The server cannot be reached, is draining, or cannot run the UDF now (gRPC ``UNAVAILABLE``)."""


class Unauthenticated(FletchError):
    """The server refused the call's credentials (gRPC ``UNAUTHENTICATED``)."""


class PermissionDenied(FletchError, PermissionError):
    """The credentials are valid but lack the scope the call needs, such as ``admin`` for live
    registration, or the action is disabled on this server (gRPC ``PERMISSION_DENIED``)."""


class DeadlineExceeded(FletchError, TimeoutError):
    """The call's deadline passed, or a Python UDF exceeded the server's ``--call-timeout``
    (gRPC ``DEADLINE_EXCEEDED``)."""


class MessageTooLarge(FletchError):
    """A message exceeded the server's ``--max-message-bytes``: send smaller batches (``batch_size=``)
    (gRPC ``RESOURCE_EXHAUSTED``)."""


class Cancelled(FletchError):
    """The call was cancelled (gRPC ``CANCELLED``)."""


class ServerError(FletchError):
    """Any other failure: a bug in the server (gRPC ``INTERNAL``), an unknown action (``UNIMPLEMENTED``), or a
    server that broke the exchange contract."""


for _cls in (
    UdfNotFound,
    SignatureMismatch,
    WorkerCrashed,
    Unavailable,
    Unauthenticated,
    PermissionDenied,
    DeadlineExceeded,
    MessageTooLarge,
    Cancelled,
    ServerError,
):
    _cls.__module__ = "fletch"


# The one table from gRPC status codes to exception classes; every other code is a ServerError.
ERRORS_BY_CODE: Final[dict[str, type[FletchError]]] = {
    "NOT_FOUND": UdfNotFound,
    "INVALID_ARGUMENT": SignatureMismatch,
    "UNKNOWN": UdfError,
    "ABORTED": WorkerCrashed,
    "UNAVAILABLE": Unavailable,
    "UNAUTHENTICATED": Unauthenticated,
    "PERMISSION_DENIED": PermissionDenied,
    "DEADLINE_EXCEEDED": DeadlineExceeded,
    "RESOURCE_EXHAUSTED": MessageTooLarge,
    "CANCELLED": Cancelled,
    "INTERNAL": ServerError,
}

# pyarrow's message starts with one of these, naming the code in words.
_PREFIX: Final = re.compile(
    r"^(?:(?:Flight|gRPC) returned (?P<words>[a-z -]+?) error|(?:Flight|gRPC) (?P<cancelled>cancelled) call"
    r"|Flight RPC (?P<failed>failed))"
    r",? with message: "
)
_WORDS: Final = {
    "not found": "NOT_FOUND",
    "invalid argument": "INVALID_ARGUMENT",
    "timeout": "DEADLINE_EXCEEDED",
    "deadline exceeded": "DEADLINE_EXCEEDED",
    "unavailable": "UNAVAILABLE",
    "unimplemented": "UNIMPLEMENTED",
    "internal": "INTERNAL",
    "aborted": "ABORTED",
    "resource exhausted": "RESOURCE_EXHAUSTED",
    "unauthenticated": "UNAUTHENTICATED",
    "unauthorized": "PERMISSION_DENIED",
    "permission denied": "PERMISSION_DENIED",
    "already exists": "ALREADY_EXISTS",
    "precondition failed": "FAILED_PRECONDITION",
    "out-of-range": "OUT_OF_RANGE",
    "data loss": "DATA_LOSS",
    "unknown": "UNKNOWN",
}
_DEBUG_CONTEXT: Final = re.compile(r"gRPC client debug context: (?P<code>[A-Z_]+):")
_DEBUG_SUFFIX: Final = ". gRPC client debug context: "
_TRAILERS: Final = re.compile(r"(?:\. Client context: [^\n]*)?(?:\. Detail: \w+)?$")

# When the message says nothing, the pyarrow exception class decides (see docs/protocol.md).
_CODE_BY_CLASS: Final = (
    ("FlightUnauthenticatedError", "UNAUTHENTICATED"),
    ("FlightUnauthorizedError", "PERMISSION_DENIED"),
    ("FlightTimedOutError", "DEADLINE_EXCEEDED"),
    ("FlightCancelledError", "CANCELLED"),
    ("FlightUnavailableError", "UNAVAILABLE"),
    ("FlightServerError", "UNKNOWN"),
    ("FlightInternalError", "INTERNAL"),
    ("ArrowKeyError", "NOT_FOUND"),
    ("ArrowNotImplementedError", "UNIMPLEMENTED"),
    ("ArrowInvalid", "INVALID_ARGUMENT"),
)


def grpc_code(exc: BaseException) -> str:
    """The gRPC status code name behind a pyarrow Flight exception.

    pyarrow raises one class for several codes (``ArrowInvalid`` for INVALID_ARGUMENT and RESOURCE_EXHAUSTED,
    ``FlightInternalError`` for INTERNAL and ABORTED), so the message decides first: its debug context
    (``gRPC client debug context: NOT_FOUND:...``), then its prefix (``gRPC returned aborted error``), and
    only then the class.
    """
    text = str(exc)
    found = _DEBUG_CONTEXT.search(text)
    if found:
        return found["code"]
    prefix = _PREFIX.match(text)
    if prefix:
        if prefix["cancelled"]:
            return "CANCELLED"
        if prefix["failed"]:
            return "UNKNOWN"
        code = _WORDS.get(prefix["words"])
        if code:
            return code
    names = {cls.__name__ for cls in type(exc).__mro__}
    for name, code in _CODE_BY_CLASS:
        if name in names:
            return code
    return "UNKNOWN" if "FlightError" in names else "INTERNAL"


def server_message(exc: BaseException) -> str:
    """The server's own message, without pyarrow's prefix, debug context and trailers."""
    text = str(exc)
    prefix = _PREFIX.match(text)
    if prefix:
        text = text[prefix.end() :]
    cut = text.find(_DEBUG_SUFFIX)
    if cut >= 0:
        return text[:cut]
    return _TRAILERS.sub("", text, count=1)


_END_OF_INPUT: Final = "end of input: "
_BATCH: Final = re.compile(r"batch (\d+): ")
_ROW: Final = re.compile(r"row (\d+): ")
# A Python exception type as the worker names it: ZeroDivisionError, decimal.InvalidOperation, mod.Cls.
_EXC_TYPE: Final = re.compile(r"(?P<type>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?:: |:?$)", re.DOTALL)
_TRACEBACK: Final = "\nTraceback (most recent call last):\n"


def parse_udf_error(message: str, function: str | None = None, language: str | None = None) -> UdfError:
    """A UdfError from a server's UNKNOWN message.

    The form is ``batch <b>: <function>: row <n>: <ExcType>: <message>\nTraceback ...``, where ``batch`` and
    ``row`` may be missing, Python UDFs add the exception type and the traceback, and native Go UDFs give only
    the message. ``function`` (the UDF called) and ``language`` (``"python"`` or ``"go"``) resolve ambiguity;
    without a language, a type is recognised by the Python convention that class names are capitalised.
    """
    rest = message
    batch = None
    found = _BATCH.match(rest)
    if found:
        batch = int(found[1])
        rest = rest[found.end() :]
    elif rest.startswith(_END_OF_INPUT):  # a failure in an aggregate's or transform's finish()
        rest = rest[len(_END_OF_INPUT) :]
    if function is not None and rest.startswith(function + ": "):
        name = function
        rest = rest[len(function) + 2 :]
    else:
        name, sep, after = rest.partition(": ")
        if not sep or "\n" in name:
            err = UdfError(function or "", None, "", message)
            err.batch = batch
            return err
        rest = after
    row = None
    found = _ROW.match(rest)
    if found:
        row = int(found[1])
        rest = rest[found.end() :]
    tb = ""
    cut = rest.find(_TRACEBACK)
    if cut >= 0:
        rest, tb = rest[:cut], rest[cut + 1 :]
    exc_type, text = "", rest
    found = _EXC_TYPE.match(rest) if language != "go" else None
    if found and (language == "python" or found["type"].rpartition(".")[2][:1].isupper()):
        exc_type, text = found["type"], rest[found.end() :]
        if not tb:  # a traceback that could not be formatted is just "<ExcType>: <message>"
            head, sep, tail = text.rpartition(f"\n{exc_type}: ")
            if sep and head == tail:
                text, tb = head, f"{exc_type}: {tail}"
    err = UdfError(name, row, exc_type, text, tb)
    err.batch = batch
    return err


def from_flight_error(
    exc: BaseException,
    *,
    function: str | None = None,
    language: str | None = None,
    deadline_passed: bool = False,
) -> FletchError:
    """The fletch exception for a pyarrow Flight exception, with exc as its ``__cause__``.

    function and language (of the UDF called, when known) help parse a UdfError. deadline_passed says that
    the call's deadline has passed: the server may then reset the stream before the client's own timer fires,
    which gRPC reports as CANCELLED, but it is a DEADLINE_EXCEEDED.
    """
    code = grpc_code(exc)
    if code == "CANCELLED" and deadline_passed:
        code = "DEADLINE_EXCEEDED"
    message = server_message(exc)
    cls = ERRORS_BY_CODE.get(code, ServerError)
    err = parse_udf_error(message, function, language) if cls is UdfError else cls(message)
    err.code = code
    err.__cause__ = exc
    return err
