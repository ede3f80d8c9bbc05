"""The exceptions fletch raises, in process and from a server."""

from __future__ import annotations

__all__ = ["FletchError", "UdfError"]


class FletchError(Exception):
    """The base of every error fletch raises."""


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
    unknown. UdfError pickles.
    """

    function: str
    row: int | None
    exc_type: str
    message: str
    traceback: str

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
        what = f"{self.exc_type}: {self.message}" if self.message else self.exc_type
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
