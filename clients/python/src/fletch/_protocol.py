"""Frames between the fletch server and a worker process.

Each frame is a 24-byte prefix, a JSON header and an optional body::

    magic b"FLW1" | kind u32 | header length u32 | reserved u32 | body length u64

Integers are little-endian; bodies are Arrow IPC streams. The Go side is
pybridge/frame.go; the two must change together (and PROTOCOL_VERSION with
them).
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

PROTOCOL_VERSION = 1

MAGIC = b"FLW1"
PREFIX = struct.Struct("<4sIIIQ")

HELLO = 1
LOAD = 2
LOADED = 3
CALL = 4
RESULT = 5
ERROR = 6

MAX_HEADER = 16 << 20


class ProtocolError(Exception):
    """The server sent something that is not a frame."""


class Channel:
    """Reads frames from one file descriptor and writes them to another."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd

    def read(self) -> tuple[int, dict[str, Any], memoryview] | None:
        """Returns the next frame, or None when the server closed the channel."""
        prefix = self._read_exact(PREFIX.size, allow_eof=True)
        if prefix is None:
            return None
        magic, kind, header_len, _, body_len = PREFIX.unpack(prefix)
        if magic != MAGIC:
            raise ProtocolError(f"bad frame magic {bytes(magic)!r}")
        if header_len > MAX_HEADER:
            raise ProtocolError(f"frame header of {header_len} bytes exceeds {MAX_HEADER}")
        raw_header = self._read_exact(header_len)
        body = self._read_exact(body_len)
        assert raw_header is not None and body is not None
        header = json.loads(bytes(raw_header)) if header_len else {}
        if not isinstance(header, dict):
            raise ProtocolError("frame header is not a JSON object")
        return kind, header, body

    def write(self, kind: int, header: dict[str, Any], body: memoryview | bytes | None = None) -> None:
        raw_header = json.dumps(header, separators=(",", ":")).encode()
        body_view = memoryview(body if body is not None else b"").cast("B")
        prefix = PREFIX.pack(MAGIC, kind, len(raw_header), 0, body_view.nbytes)
        self._write_all(memoryview(prefix + raw_header))
        self._write_all(body_view)

    def _read_exact(self, n: int, allow_eof: bool = False) -> memoryview | None:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            chunk = os.readv(self._read_fd, [view[got:]])
            if chunk == 0:
                if got == 0 and allow_eof:
                    return None
                raise ProtocolError(f"stream ended after {got} of {n} bytes")
            got += chunk
        return view

    def _write_all(self, view: memoryview) -> None:
        while view.nbytes:
            written = os.write(self._write_fd, view)
            view = view[written:]
