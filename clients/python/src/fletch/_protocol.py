"""Frames between the fletch server and a worker process.

Each frame is a 40-byte prefix, an optional JSON header and an optional inline body::

    magic b"FLW2" | kind u16 | flags u16 | id u64 | fn u32 | header length u32 | body length u64 |
    body offset u64

Integers are little-endian. Requests carry an id that their reply repeats. A body is inline after the
header or, with ``FLAG_SHM``, lies in shared memory at the body offset: in the request half for frames
from the server, in the reply half for frames to it. Call bodies are one encapsulated Arrow IPC record
batch message (the schema is known to both sides); result bodies are zero or more. The Go side is
pybridge/frame.go; the two must change together (and PROTOCOL_VERSION with them).
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import struct
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 2

MAGIC = b"FLW2"
PREFIX = struct.Struct("<4sHHQIIQQ")

HELLO = 1
LOAD = 2
LOADED = 3
CALL = 4
RESULT = 5
ERROR = 6
RELEASE = 7

FLAG_SHM = 1 << 0
FLAG_INPUT_FREE = 1 << 1
FLAG_ERROR_COLUMN = 1 << 2
FLAG_SEVERAL = 1 << 3
OP_SHIFT = 8
OP_MASK = 3 << OP_SHIFT

OP_BATCH = 0
OP_OPEN = 1
OP_FINISH = 2
OP_CLOSE = 3

MAX_HEADER = 16 << 20
# Bodies smaller than this cross the pipe: one write costs no more than the copy, and needs no release
# (pybridge's shmMinBytes).
SHM_MIN_BYTES = 16 << 10
# Results this large are written straight into the reply half (one copy) rather than serialized and copied
# there (two): below it, setting up the direct write costs more than the copy it saves.
SHM_DIRECT_BYTES = 128 << 10
MAX_BODY = 1 << 31

# A frame this small goes out in one write.
_SMALL = 64 << 10


class ProtocolError(Exception):
    """The server sent something that is not a frame."""


@dataclass(slots=True)
class Frame:
    kind: int
    flags: int
    id: int
    fn: int
    header: bytes
    body: bytes  # inline; empty for a shared-memory body
    shm_off: int
    shm_len: int

    @property
    def op(self) -> int:
        return (self.flags & OP_MASK) >> OP_SHIFT

    def json(self) -> dict[str, Any]:
        if not self.header:
            return {}
        value = json.loads(self.header)
        if not isinstance(value, dict):
            raise ProtocolError("frame header is not a JSON object")
        return value


class Channel:
    """Reads frames from one file descriptor and writes them to another."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._in = open(read_fd, "rb", buffering=1 << 16, closefd=False)  # noqa: SIM115 (held for the process)
        self._write_fd = write_fd

    def read(self) -> Frame | None:
        """Returns the next frame, or None when the server closed the channel."""
        prefix = self._in.read(PREFIX.size)
        if not prefix:
            return None
        if len(prefix) < PREFIX.size:
            raise ProtocolError(f"stream ended after {len(prefix)} of {PREFIX.size} prefix bytes")
        magic, kind, flags, ident, fn, header_len, body_len, off = PREFIX.unpack(prefix)
        if magic != MAGIC:
            raise ProtocolError(f"bad frame magic {bytes(magic)!r}")
        if header_len > MAX_HEADER:
            raise ProtocolError(f"frame header of {header_len} bytes exceeds {MAX_HEADER}")
        header = self._exact(header_len)
        if flags & FLAG_SHM:
            return Frame(kind, flags, ident, fn, header, b"", off, body_len)
        if body_len > MAX_BODY:
            raise ProtocolError(f"frame body of {body_len} bytes exceeds {MAX_BODY}")
        return Frame(kind, flags, ident, fn, header, self._exact(body_len), 0, 0)

    def _exact(self, n: int) -> bytes:
        if n == 0:
            return b""
        data = self._in.read(n)
        if len(data) < n:
            raise ProtocolError(f"stream ended after {len(data)} of {n} bytes")
        return data

    def write(
        self,
        kind: int,
        ident: int = 0,
        *,
        flags: int = 0,
        header: dict[str, Any] | None = None,
        body: list[Any] | None = None,
        shm: tuple[int, int] | None = None,
    ) -> None:
        """Write one frame: body is buffers sent inline; shm is the (offset, length) of a body in shared
        memory."""
        raw_header = json.dumps(header, separators=(",", ":")).encode() if header is not None else b""
        parts = [memoryview(b).cast("B") for b in body or ()]
        if shm is not None:
            flags |= FLAG_SHM
            off, length = shm
        else:
            off, length = 0, sum(p.nbytes for p in parts)
        head = PREFIX.pack(MAGIC, kind, flags, ident, 0, len(raw_header), length, off) + raw_header
        if length <= _SMALL and shm is None:
            head += b"".join(parts)
            parts = []
        self._write_all([memoryview(head), *parts])

    def _write_all(self, views: list[memoryview]) -> None:
        while views:
            written = os.writev(self._write_fd, views)
            while views and written >= views[0].nbytes:
                written -= views[0].nbytes
                views.pop(0)
            if written:
                views[0] = views[0][written:]


class SharedMemory:
    """The worker's view of its shared memory: requests to read, and a reply half it allocates in.

    Allocation is first fit from the start of the reply half, like the server's in the request half, so
    steady traffic keeps reusing the same pages; a half emptied after a burst gives its pages back.
    """

    ALIGN = 64
    KEEP_WARM = 4 << 20

    def __init__(self, fd: int, request_bytes: int, reply_bytes: int) -> None:
        self._map = mmap.mmap(fd, request_bytes + reply_bytes)
        os.close(fd)
        self.view = memoryview(self._map)
        self.request_bytes = request_bytes
        self.reply_bytes = reply_bytes
        self.address = _address_of(self._map)
        self._live: list[tuple[int, int]] = []  # (offset, size), sorted
        self._high = 0
        self._spans: dict[int, int] = {}  # request id → offset of its reply

    @classmethod
    def from_env(cls, spec: str) -> SharedMemory | None:
        try:
            fd, req, rep = (int(part) for part in spec.split(":"))
            return cls(fd, req, rep)
        except (ValueError, OSError):
            return None

    def check_request(self, off: int, length: int) -> None:
        if off > self.request_bytes or length > self.request_bytes - off:
            raise ProtocolError(f"a request body of {length} bytes at {off} lies outside the request half")

    def put_reply(self, ident: int, parts: list[Any], total: int) -> int | None:
        """Copy parts into the reply half for request ident; return their offset, or None if no gap fits."""
        off = self._alloc(total)
        if off is None:
            return None
        pos = self.request_bytes + off
        for part in parts:
            view = memoryview(part).cast("B")
            self.view[pos : pos + view.nbytes] = view
            pos += view.nbytes
        self._spans[ident] = off
        return off

    def write_reply(self, ident: int, batches: list[Any]) -> tuple[int, int] | None:
        """Write batches as IPC messages straight into the reply half for request ident; return the
        (offset, length) of the messages, or None if no gap fits them.

        An IPC stream writer is the one way pyarrow writes a batch message into memory of the caller's: it
        writes the schema first, which is given its room and skipped."""
        import pyarrow as pa

        schema = batches[0].schema
        head = schema.serialize().size
        total = head + sum(pa.ipc.get_record_batch_size(b) for b in batches)
        off = self._alloc(total)
        if off is None:
            return None
        pos = self.request_bytes + off
        sink = pa.FixedSizeBufferWriter(pa.py_buffer(self.view[pos : pos + total]))
        try:
            writer = pa.ipc.new_stream(sink, schema)
            for batch in batches:
                writer.write_batch(batch)
            written = sink.tell()
        except pa.ArrowException:
            written = -1
        if written != total:  # sizes pyarrow's writer did not keep to: never seen, but never trusted
            self._free(off)
            return None
        self._spans[ident] = off
        return off + head, total - head

    def release(self, idents: list[int]) -> None:
        for ident in idents:
            off = self._spans.pop(ident, None)
            if off is None:
                raise ProtocolError(f"the server released reply {ident}, which holds no shared memory")
            self._free(off)

    def _alloc(self, n: int) -> int | None:
        n = (n + self.ALIGN - 1) & ~(self.ALIGN - 1)
        if n <= 0 or n > self.reply_bytes:
            return None
        prev = 0
        at = len(self._live)
        for i, (off, size) in enumerate(self._live):
            if off - prev >= n:
                at = i
                break
            prev = off + size
        else:
            if self.reply_bytes - prev < n:
                return None
        self._live.insert(at, (prev, n))
        self._high = max(self._high, prev + n)
        return prev

    def _free(self, off: int) -> None:
        for i, (start, _) in enumerate(self._live):
            if start == off:
                del self._live[i]
                break
        if not self._live:
            if self._high > self.KEEP_WARM:
                start = self.request_bytes + self.KEEP_WARM
                with contextlib.suppress(OSError):  # an emulator may not offer it; the pages just stay
                    self._map.madvise(mmap.MADV_REMOVE, start, self._high - self.KEEP_WARM)
            self._high = 0


def _address_of(m: mmap.mmap) -> int:
    import ctypes

    return ctypes.addressof(ctypes.c_char.from_buffer(m))
