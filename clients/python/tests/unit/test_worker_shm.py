"""The worker's side of the shared-memory transport, in process: allocation in the reply half, results written
there, and inputs a UDF keeps referencing held back from reuse until it lets them go."""

from __future__ import annotations

import os
import struct
import tempfile
from typing import Any

import pyarrow as pa
import pytest

from fletch import _protocol as proto
from fletch import _worker, udf

HALF = 4 << 20


def shared_memory() -> proto.SharedMemory:
    fd, path = tempfile.mkstemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.unlink(path)
    os.ftruncate(fd, 2 * HALF)
    return proto.SharedMemory(fd, HALF, HALF)


def test_first_fit_reuses_the_start_and_refuses_what_does_not_fit() -> None:
    shm = shared_memory()
    a = shm.put_reply(1, [b"a" * 100], 100)
    b = shm.put_reply(2, [b"b" * 5000], 5000)
    assert (a, b) == (0, 128)  # 64-byte aligned spans, one after the other
    shm.release([1])
    assert shm.put_reply(3, [b"c" * 64], 64) == 0  # the freed gap at the start
    assert shm.put_reply(4, [b"d"], HALF) is None  # no gap that large is left
    with pytest.raises(proto.ProtocolError, match="released reply 9"):
        shm.release([9])
    shm.release([2, 3])
    assert shm.put_reply(5, [b"e"], HALF) == 0  # empty again: the whole half


@pytest.mark.parametrize("rows", [1, 4096, 65536])
def test_results_written_into_the_reply_half_read_back(rows: int) -> None:
    shm = shared_memory()
    batches = [pa.record_batch([pa.array(range(rows), pa.int64())], names=["x"])] * 2
    placed = shm.write_reply(7, batches)
    assert placed is not None
    off, length = placed
    body = pa.py_buffer(shm.view[HALF + off : HALF + off + length])
    stream = pa.BufferReader(body)
    for batch in batches:
        got = pa.ipc.read_record_batch(pa.ipc.read_message(stream), batch.schema)
        assert got.equals(batch)
    assert stream.tell() == length
    shm.release([7])


def test_a_request_outside_the_request_half_is_refused() -> None:
    shm = shared_memory()
    shm.check_request(HALF - 8, 8)
    with pytest.raises(proto.ProtocolError, match="outside the request half"):
        shm.check_request(HALF - 8, 9)


class _Channel:
    def __init__(self) -> None:
        self.frames: list[tuple[int, int, int, Any]] = []

    def write(
        self,
        kind: int,
        ident: int = 0,
        *,
        flags: int = 0,
        header: Any = None,
        body: Any = None,
        shm: Any = None,
    ) -> None:
        self.frames.append((kind, ident, flags, b"".join(bytes(b) for b in body or ())))


kept: list[Any] = []


@udf
def keeps(x: pa.Int64Array) -> pa.Int64Array:
    kept.append(x)  # a UDF that holds on to its input
    return x


def call_frame(shm: proto.SharedMemory, ident: int, batch: pa.RecordBatch) -> proto.Frame:
    message = batch.serialize()
    shm.view[0 : message.size] = memoryview(message).cast("B")
    return proto.Frame(proto.CALL, proto.FLAG_SHM, ident, 0, b"", b"", 0, message.size)


def test_an_input_the_udf_keeps_is_released_only_once_it_lets_go() -> None:
    shm = shared_memory()
    channel = _Channel()
    worker = _worker.Worker(channel, _worker._Log(os.open(os.devnull, os.O_WRONLY)), shm)  # type: ignore[arg-type]
    spec = keeps.__fletch_udf__  # type: ignore[attr-defined]
    worker._functions[spec.name] = spec
    worker._order.append(spec)
    batch = pa.record_batch([pa.array([1, 2, 3], pa.int64())], names=["x"])

    worker._call(call_frame(shm, 1, batch))
    kind, ident, flags, _ = channel.frames[-1]
    assert (kind, ident) == (proto.RESULT, 1)
    assert not flags & proto.FLAG_INPUT_FREE, "the UDF still holds its input"

    kept.clear()  # the UDF lets go; the next call tells the server
    worker._call(call_frame(shm, 2, batch))
    kinds = [(k, i) for k, i, _, _ in channel.frames[-2:]]
    assert kinds == [(proto.RESULT, 2), (proto.RELEASE, 0)]
    assert channel.frames[-1][3] == struct.pack("<Q", 1)
    assert not channel.frames[-2][2] & proto.FLAG_INPUT_FREE  # call 2's input is kept in turn
    kept.clear()
