"""A plain pyarrow.flight server computing the benchmark workloads in its own process.

No framework: DoExchange looks the function up by its PATH descriptor, begins the output stream and
writes one output batch per input batch. Vectorized functions call pyarrow.compute; `plus_one` calls
a Python function per row, as any row-wise UDF must. It is what a team writes by hand instead of
running a UDF server, and the lower bound of Python-in-process overhead.

    python pyarrow_server.py --listen 127.0.0.1:8817
"""

import argparse
import platform
import sys
from collections.abc import Callable
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight


class Function(NamedTuple):
    inputs: list[pa.DataType]
    output: pa.DataType
    compute: Callable[[pa.RecordBatch], pa.Array]


def _plus_one(x: int) -> int:
    return x + 1


def _row_wise(fn: Callable[[int], int], out: pa.DataType) -> Callable[[pa.RecordBatch], pa.Array]:
    def compute(batch: pa.RecordBatch) -> pa.Array:
        return pa.array([None if v is None else fn(v) for v in batch.column(0).to_pylist()], type=out)

    return compute


def _versions(batch: pa.RecordBatch) -> pa.Array:
    text = f"CPython {platform.python_version()}, pyarrow {pa.__version__}"
    return pa.array([text] * batch.num_rows, type=pa.utf8())


FUNCTIONS: dict[str, Function] = {
    "echo_int64": Function([pa.int64()], pa.int64(), lambda b: b.column(0)),
    "echo_utf8": Function([pa.utf8()], pa.utf8(), lambda b: b.column(0)),
    "add_int64": Function([pa.int64(), pa.int64()], pa.int64(), lambda b: pc.add(b.column(0), b.column(1))),
    "upper": Function([pa.utf8()], pa.utf8(), lambda b: pc.utf8_upper(b.column(0))),
    "plus_one": Function([pa.int64()], pa.int64(), _row_wise(_plus_one, pa.int64())),
    "versions": Function([pa.int64()], pa.utf8(), _versions),
}


class Server(flight.FlightServerBase):
    def _info(self, name: str) -> flight.FlightInfo:
        fn = FUNCTIONS[name]
        fields = [pa.field(f"arg{i}", t) for i, t in enumerate(fn.inputs)]
        schema = pa.schema([*fields, pa.field(name, fn.output)])
        return flight.FlightInfo(schema, flight.FlightDescriptor.for_path(name), [], len(fn.inputs), 0)

    def _lookup(self, descriptor: flight.FlightDescriptor) -> str:
        if descriptor.descriptor_type != flight.DescriptorType.PATH or len(descriptor.path) != 1:
            raise flight.FlightServerError("expected a PATH [name] descriptor")
        name = descriptor.path[0].decode()
        if name not in FUNCTIONS:
            raise KeyError(f"no function {name!r}")
        return name

    def list_flights(self, context, criteria):
        for name in FUNCTIONS:
            yield self._info(name)

    def get_flight_info(self, context, descriptor):
        return self._info(self._lookup(descriptor))

    def do_exchange(self, context, descriptor, reader, writer):
        name = self._lookup(descriptor)
        fn = FUNCTIONS[name]
        schema = pa.schema([pa.field(name, fn.output)])
        writer.begin(schema)
        for chunk in reader:
            if chunk.data is None:
                continue
            writer.write_batch(pa.record_batch([fn.compute(chunk.data)], schema=schema))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8817", help="host:port")
    args = parser.parse_args()
    server = Server(f"grpc://{args.listen}")
    sys.stderr.write(f"pyarrow server listening on {args.listen}\n")
    server.serve()


if __name__ == "__main__":
    main()
