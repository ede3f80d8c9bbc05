"""The worker process the fletch server starts to run Python UDFs.

It is started as ``python -s -c "import fletch._worker ..."`` with two
extra file descriptors: 3 carries frames from the server, 4 frames back
(see fletch._protocol). stdout and stderr are for logs only: print() and
the logging module are turned into JSON log lines the server re-logs with
the function's name.
"""

from __future__ import annotations

import contextlib
import datetime
import faulthandler
import hashlib
import importlib.util
import io
import json
import logging
import os
import platform
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fletch import _protocol as proto

COOKIE_KEY = "FLETCH_WORKER_COOKIE"
COOKIE_VALUE = "5b1cf6b0-fletch-worker"

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

    @contextlib.contextmanager
    def running(self, function: str) -> Iterator[None]:
        self.function = function
        try:
            yield
        finally:
            self.function = None


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


class Worker:
    """Loads UDF modules and answers calls until the server closes the channel."""

    def __init__(self, channel: proto.Channel, log: _Log) -> None:
        self._channel = channel
        self._log = log
        self._functions: dict[str, Any] = {}
        self._sessions: dict[str, Any] = {}  # per-exchange state of aggregates and transforms

    def serve(self) -> int:
        import pyarrow as pa

        self._channel.write(
            proto.HELLO,
            {
                "protocol": proto.PROTOCOL_VERSION,
                "pid": os.getpid(),
                "python": platform.python_version(),
                "pyarrow": pa.__version__,
            },
        )
        while (message := self._channel.read()) is not None:
            kind, header, body = message
            if kind == proto.LOAD:
                self._channel.write(proto.LOADED, self._load(header))
            elif kind == proto.CALL:
                self._call(header, body)
            else:
                raise proto.ProtocolError(f"unexpected frame kind {kind}")
        return 0

    def _load(self, header: dict[str, Any]) -> dict[str, Any]:
        from fletch import collect

        for path in reversed(header.get("paths", [])):
            if path not in sys.path:
                sys.path.insert(0, path)
        functions: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        owner: dict[str, str] = {}
        taken = set(sys.modules)  # the standard library and fletch's own imports
        for entry in header.get("modules", []):
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
                functions.append(
                    {"name": udf.name, "spec": udf.describe(), "module": name, "source_sha256": digest}
                )
        return {"functions": functions, "errors": errors}

    def _call(self, header: dict[str, Any], body: memoryview) -> None:
        from fletch import UdfError

        name = str(header.get("fn"))
        op = header.get("op") or "batch"
        udf = self._functions.get(name)
        if udf is None:
            self._error(name, None, "LookupError", f"this worker has no UDF {name!r}", "")
            return
        try:
            with self._log.running(name):
                outs = self._run(udf, name, op, header.get("options") or {}, body)
            payload = None if outs is None else memoryview(_stream(udf.output_schema(), outs))
        except UdfError as exc:
            self._error(name, exc.row, exc.exc_type, exc.message, exc.traceback)
            return
        except Exception as exc:
            self._error(name, None, type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)))
            return
        self._channel.write(proto.RESULT, {}, payload)

    def _run(
        self, udf: Any, name: str, op: str, options: dict[str, Any], body: memoryview
    ) -> list[Any] | None:
        """One operation of a call: the output batches, or None for open and close."""
        import pyarrow as pa

        if op == "open":
            self._sessions[name] = udf.open(options)
            return None
        if op == "close":
            self._sessions.pop(name, None)
            return None
        if op == "finish":
            session = self._sessions.pop(name, None)
            if session is None:
                raise RuntimeError(f"{name}: finish without an open exchange")
            return list(session.finish())
        if op != "batch":
            raise proto.ProtocolError(f"unknown operation {op!r}")
        batch = pa.ipc.open_stream(pa.py_buffer(body)).read_next_batch()
        if name in self._sessions:
            return list(self._sessions[name].process(batch))
        return list(udf.outputs(batch))

    def _error(self, name: str, row: int | None, exc_type: str, message: str, tb: str) -> None:
        self._channel.write(
            proto.ERROR,
            {"function": name, "row": row, "type": exc_type, "message": message, "traceback": tb},
        )


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


def _stream(schema: Any, batches: list[Any]) -> Any:
    """batches as one Arrow IPC stream with the given schema (an empty stream if there are none)."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batches[0].schema if batches else schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return sink.getvalue()


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
    return Worker(proto.Channel(3, 4), log).serve()
