"""The worker process the fletch server starts to run Python UDFs.

It is started as ``python -s -c "import fletch._worker ..."`` with two
extra file descriptors: 3 carries frames from the server, 4 frames back
(see fletch._protocol). stdout and stderr are for logs only: print() and
the logging module are turned into JSON log lines the server re-logs with
the function's name.
"""

from __future__ import annotations

import datetime
import faulthandler
import gc
import hashlib
import importlib.util
import io
import json
import logging
import os
import platform
import struct
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import pyarrow as pa

from fletch import _protocol as proto
from fletch._errors import UdfError as _UdfError

COOKIE_KEY = "FLETCH_WORKER_COOKIE"
COOKIE_VALUE = "5b1cf6b0-fletch-worker"
SHM_KEY = "FLETCH_WORKER_SHM"  # "fd:request bytes:reply bytes" of the shared memory, when the server maps one

_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "error",
}


class _Log:
    """Writes JSON log lines to the real stderr, tagged with the running UDF."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self.function: str | None = None

    def emit(self, level: str, message: str, **fields: Any) -> None:
        entry: dict[str, Any] = {
            "@level": level,
            "@message": message,
            "@timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        if self.function is not None:
            entry["function"] = self.function
        entry.update(fields)
        line = (json.dumps(entry, default=str) + "\n").encode()
        with self._lock:
            os.write(self._fd, line)


class _LineWriter(io.TextIOBase):
    """A text stream that logs each complete line (print() lands here)."""

    def __init__(self, log: _Log, stream: str, level: str) -> None:
        self._log = log
        self._stream = stream
        self._level = level
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._log.emit(self._level, line, stream=self._stream)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._log.emit(self._level, self._pending, stream=self._stream)
            self._pending = ""


class _LogHandler(logging.Handler):
    def __init__(self, log: _Log) -> None:
        super().__init__()
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self._log.emit(_LEVELS.get(record.levelno, "info"), message, logger=record.name)


class _Token:
    """What a request's shared-memory input hangs on: while any Arrow buffer over it lives, so does this."""

    __slots__ = ("__weakref__",)


class Worker:
    """Loads UDF modules and answers calls until the server closes the channel."""

    def __init__(self, channel: proto.Channel, log: _Log, shm: proto.SharedMemory | None) -> None:
        self._channel = channel
        self._log = log
        self._shm = shm
        self._functions: dict[str, Any] = {}
        self._order: list[Any] = []  # by the index calls name them with
        self._input_schemas: dict[str, Any] = {}
        # Per-exchange state of aggregates and transforms, with their input schema.
        self._sessions: dict[str, tuple[Any, Any]] = {}
        # Inputs a call's result still references (a UDF kept an array): freed once nothing does.
        self._held: list[tuple[int, _Token]] = []

    def serve(self) -> int:
        self._channel.write(
            proto.HELLO,
            header={
                "protocol": proto.PROTOCOL_VERSION,
                "pid": os.getpid(),
                "python": platform.python_version(),
                "pyarrow": pa.__version__,
                "shm": self._shm is not None,
            },
        )
        while (frame := self._channel.read()) is not None:
            if frame.kind == proto.CALL:
                self._call(frame)
            elif frame.kind == proto.RELEASE:
                self._release(frame)
            elif frame.kind == proto.LOAD:
                self._channel.write(proto.LOADED, frame.id, header=self._load(frame.json()))
            else:
                raise proto.ProtocolError(f"unexpected frame kind {frame.kind}")
        return 0

    def _release(self, frame: proto.Frame) -> None:
        if self._shm is None or len(frame.body) % 8:
            raise proto.ProtocolError("a release frame without shared memory, or not of u64 ids")
        self._shm.release(list(struct.unpack(f"<{len(frame.body) // 8}Q", frame.body)))

    def _load(self, header: dict[str, Any]) -> dict[str, Any]:
        from fletch import collect

        for path in reversed(header.get("paths") or []):
            if path not in sys.path:
                sys.path.insert(0, path)
        functions: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        owner: dict[str, str] = {}
        taken = set(sys.modules)  # the standard library and fletch's own imports
        for entry in header.get("modules") or []:
            name, path, digest = entry["name"], entry.get("path", ""), entry.get("digest", "")
            if name in taken:
                errors.append(
                    {
                        "module": name,
                        "path": path,
                        "error": f"ImportError: the module name {name!r} is taken by {sys.modules[name]!r}; "
                        "rename the module",
                        "traceback": "",
                    }
                )
                continue
            try:
                if path:
                    module, source_digest = _load_file(name, path)
                    digest = digest or source_digest
                else:  # a package, or a module inside a zip, found on sys.path
                    module = importlib.import_module(name)
                specs = collect(module)
            except BaseException as exc:  # a module may even call sys.exit()
                sys.modules.pop(name, None)
                errors.append(
                    {
                        "module": name,
                        "path": path,
                        "error": f"{type(exc).__name__}: {exc}",
                        "traceback": "".join(traceback.format_exception(exc)),
                    }
                )
                continue
            for udf in specs:
                if udf.name in owner:
                    errors.append(
                        {
                            "module": name,
                            "path": path,
                            "error": f"UDF {udf.name!r} is already defined by module {owner[udf.name]!r}",
                            "traceback": "",
                        }
                    )
                    continue
                owner[udf.name] = name
                self._functions[udf.name] = udf
                self._order.append(udf)
                functions.append(
                    {"name": udf.name, "spec": udf.describe(), "module": name, "source_sha256": digest}
                )
        return {"functions": functions, "errors": errors}

    def _call(self, frame: proto.Frame) -> None:
        udf = self._order[frame.fn] if frame.fn < len(self._order) else None
        name = udf.name if udf is not None else f"#{frame.fn}"
        token = _Token() if frame.flags & proto.FLAG_SHM else None
        placed: tuple[int, int] | list[Any] = []
        error: dict[str, Any] | None = None
        flags = 0
        try:
            if udf is None:
                raise LookupError(f"this worker has no UDF #{frame.fn}")
            # What log lines of the call are tagged with (not a context manager: this runs per batch).
            self._log.function = name
            try:
                outs, flags = self._run(udf, name, frame, token)
            finally:
                self._log.function = None
            placed = self._place(frame.id, outs or [], frame.shm_len or len(frame.body))
            del outs
        except _UdfError as exc:
            error = _error(name, exc.row, exc.exc_type, exc.message, exc.traceback)
        except Exception as exc:
            error = _error(name, None, type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)))
        if self._input_free(frame.id, token):
            flags |= proto.FLAG_INPUT_FREE
        if error is not None:
            self._channel.write(proto.ERROR, frame.id, flags=flags, header=error)
        elif isinstance(placed, tuple):
            self._channel.write(proto.RESULT, frame.id, flags=flags, shm=placed)
        else:
            self._channel.write(proto.RESULT, frame.id, flags=flags, body=placed)
        self._release_held()

    def _run(
        self, udf: Any, name: str, frame: proto.Frame, token: _Token | None
    ) -> tuple[list[Any] | None, int]:
        """One operation of a call: the output batches (None for open and close) and the result's flags."""
        op = frame.op
        if op == proto.OP_OPEN:
            schema = pa.ipc.read_schema(self._input(frame, token))
            self._sessions[name] = (udf.open(frame.json()), schema)
            return None, 0
        if op == proto.OP_CLOSE:
            self._sessions.pop(name, None)
            return None, 0
        if op == proto.OP_FINISH:
            session, _ = self._sessions.pop(name, (None, None))
            if session is None:
                raise RuntimeError(f"{name}: finish without an open exchange")
            return list(session.finish()), 0
        if op != proto.OP_BATCH:
            raise proto.ProtocolError(f"unknown operation {op}")
        session, schema = self._sessions.get(name, (None, None))
        if schema is None:
            schema = self._input_schema(udf)
        body = self._input(frame, token)
        sizes: list[int] = []
        if frame.flags & proto.FLAG_SEVERAL:
            # Several batches the server had queued, evaluated as one (one call instead of many) and
            # answered with one output batch each.
            stream = pa.BufferReader(body)
            parts = []
            while stream.tell() < body.size:
                parts.append(pa.ipc.read_record_batch(pa.ipc.read_message(stream), schema))
            sizes = [part.num_rows for part in parts]
            batch = pa.concat_batches(parts)
            del parts, stream
        else:
            batch = pa.ipc.read_record_batch(body, schema)
        del body
        outs = list(session.process(batch) if session is not None else udf.outputs(batch))
        del batch
        widened = bool(outs) and outs[0].num_columns > len(udf.output_schema())
        if sizes and len(outs) == 1:
            whole, outs, start = outs[0], [], 0
            for size in sizes:
                outs.append(whole.slice(start, size))
                start += size
        return outs, proto.FLAG_ERROR_COLUMN if widened else 0

    def _input(self, frame: proto.Frame, token: _Token | None) -> Any:
        """The call's input message, over shared memory without copying when it lies there."""
        if token is None or self._shm is None:
            return pa.py_buffer(frame.body)
        self._shm.check_request(frame.shm_off, frame.shm_len)
        return pa.foreign_buffer(self._shm.address + frame.shm_off, frame.shm_len, base=token)

    def _input_schema(self, udf: Any) -> Any:
        schema = self._input_schemas.get(udf.name)
        if schema is None:
            schema = pa.schema([pa.field(p.name, p.type) for p in udf.params])
            self._input_schemas[udf.name] = schema
        return schema

    def _input_free(self, ident: int, token: _Token | None) -> bool:
        """Whether nothing references the request's shared-memory input any more; if something does, the
        input is held and released later."""
        # Three references are ours: the caller's name, this parameter and getrefcount's argument.
        if token is None or sys.getrefcount(token) <= 3:
            return True
        self._held.append((ident, token))
        return False

    def _release_held(self) -> None:
        if not self._held:
            return
        # Three references are ours: the list's tuple, the loop's name and getrefcount's argument.
        free = [ident for ident, token in self._held if sys.getrefcount(token) <= 3]
        if len(free) < len(self._held) and len(self._held) > 16:
            gc.collect()  # tracebacks in reference cycles may be what holds them
            free = [ident for ident, token in self._held if sys.getrefcount(token) <= 3]
        if free:
            self._held = [(i, t) for i, t in self._held if i not in free]
            self._channel.write(proto.RELEASE, body=[struct.pack(f"<{len(free)}Q", *free)])

    def _place(self, ident: int, outs: list[Any], input_bytes: int) -> tuple[int, int] | list[Any]:
        """Where a result's batches go: the (offset, length) of their messages in shared memory, or the
        messages to send inline. Done before the input is checked for references: a result may be the
        input itself. The input's size stands for the result's in choosing (nbytes of many slices costs
        more than the choice saves)."""
        if self._shm is not None and outs and input_bytes >= proto.SHM_DIRECT_BYTES:
            placed = self._shm.write_reply(ident, outs)
            if placed is not None:
                return placed
        parts = [b.serialize() for b in outs]
        total = sum(part.size for part in parts)
        if total >= proto.SHM_MIN_BYTES and self._shm is not None:
            off = self._shm.put_reply(ident, parts, total)
            if off is not None:
                return off, total
        return parts


def _error(name: str, row: int | None, exc_type: str, message: str, tb: str) -> dict[str, Any]:
    return {"function": name, "row": row, "type": exc_type, "message": message, "traceback": tb}


def _load_file(name: str, path: str) -> tuple[Any, str]:
    """Import the source file at path as module name; return it with the source's sha256."""
    source = Path(path).read_bytes()
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module, hashlib.sha256(source).hexdigest()


def main() -> int:
    if os.environ.get(COOKIE_KEY) != COOKIE_VALUE:
        sys.stderr.write(
            "fletch._worker runs Python UDFs for `fletch serve`, which starts it; do not run it by hand.\n"
        )
        return 1
    # Only the server decides what is importable: not the working directory.
    cwd = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", ".", cwd)]
    faulthandler.enable()  # a crash dumps the Python stack to stderr
    log = _Log(os.dup(2))
    sys.stdout = _LineWriter(log, "stdout", "info")
    sys.stderr = _LineWriter(log, "stderr", "warn")
    logging.basicConfig(level=logging.INFO, handlers=[_LogHandler(log)], force=True)
    shm = proto.SharedMemory.from_env(os.environ.get(SHM_KEY, ""))
    return Worker(proto.Channel(3, 4), log, shm).serve()
