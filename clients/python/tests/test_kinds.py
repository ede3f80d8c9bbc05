"""Table functions, aggregates and batch transforms through the real fletch binary."""

from __future__ import annotations

import json
import random
import textwrap
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

Server = Any

MODULE = '''
from typing import Iterator, NamedTuple, Optional

import pyarrow as pa
import pyarrow.compute as pc

from fletch import transform, udaf, udtf


@udtf
def series(n: int) -> Iterator[int]:
    """0, 1, ..., n-1."""
    yield from range(n)


class Word(NamedTuple):
    word: str
    length: int


@udtf
def words(text: str) -> Iterator[Word]:
    for word in text.split():
        yield Word(word, len(word))


@udtf
def pairs(n: int) -> list[tuple[int, str]]:
    return [(i, str(i)) for i in range(n)]


@udtf
def explode(n: int) -> Iterator[int]:
    if n < 0:
        raise ValueError(f"negative count {n}")
    yield from range(n)


@udaf
class Mean:
    """The mean of the non-null values."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def accumulate(self, x: float) -> None:
        self.total += x
        self.count += 1

    def merge(self, other: "Mean") -> None:
        self.total += other.total
        self.count += other.count

    def finish(self) -> Optional[float]:
        return self.total / self.count if self.count else None


@udaf
class VectorSum:
    def __init__(self) -> None:
        self.total = 0

    def accumulate(self, x: pa.Int64Array) -> None:
        self.total += pc.sum(x).as_py() or 0

    def finish(self) -> int:
        return self.total


@transform(input_schema={"x": "float64"})
class RunningAverage:
    """Fungi's RunningAverage: the mean of every value so far in the exchange."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        averages = []
        for value in batch.column("x").to_pylist():
            self.total += value
            self.count += 1
            averages.append(self.total / self.count)
        return pa.record_batch([batch.column("x"), pa.array(averages, pa.float64())], names=["x", "avg"])


@transform(input_schema={"x": "int64"}, output_schema={"x": "int64"})
def evens(batch: pa.RecordBatch) -> pa.RecordBatch:
    return batch.filter(pc.equal(pc.bit_wise_and(batch.column(0), 1), 0))


@transform(input_schema={"x": "int64"}, output_schema={"rows": "int64", "batches": "int64"})
class Count:
    """Emits nothing until the end of input, then one row."""

    def __init__(self) -> None:
        self.rows = 0
        self.batches = 0

    def __call__(self, batch: pa.RecordBatch) -> list[pa.RecordBatch]:
        self.rows += batch.num_rows
        self.batches += 1
        return []

    def finish(self) -> pa.RecordBatch:
        return pa.record_batch([pa.array([self.rows]), pa.array([self.batches])], names=["rows", "batches"])


@transform(input_schema={"x": "int64"}, output_schema={"x": "int64"})
def wrong_type(batch: pa.RecordBatch) -> pa.RecordBatch:
    return pa.record_batch([pa.array(["text"] * batch.num_rows)], names=["x"])
'''


@pytest.fixture(scope="module")
def server(start_module_server: Callable[..., Server], tmp_path_factory: pytest.TempPathFactory) -> Server:
    root = tmp_path_factory.mktemp("kinds")
    (root / "kinds.py").write_text(textwrap.dedent(MODULE))
    return start_module_server("--udf-dir", str(root), "--workers", "2")


def run(
    server: Server,
    name: str,
    batches: Sequence[pa.RecordBatch],
    options: dict[str, Any] | None = None,
    schema: pa.Schema | None = None,
) -> list[pa.RecordBatch]:
    """Write every batch, half-close, and return every output batch."""
    headers = [(b"fletch-options", json.dumps(options).encode())] if options is not None else []
    call = flight.FlightCallOptions(timeout=60, headers=headers)
    with flight.FlightClient(server.location) as client:
        writer, reader = client.do_exchange(flight.FlightDescriptor.for_path(name), options=call)
        writer.begin(schema if schema is not None else batches[0].schema)
        for batch in batches:
            writer.write_batch(batch)
        writer.done_writing()
        outputs = [chunk.data for chunk in reader if chunk.data is not None]
        writer.close()
    return outputs


def column(name: str, values: Sequence[Any], type: pa.DataType) -> pa.RecordBatch:
    return pa.record_batch([pa.array(values, type)], names=[name])


def pylist(outputs: Sequence[pa.RecordBatch], name: str) -> list[Any]:
    return [v for out in outputs for v in out.column(name).to_pylist()]


# --- table functions --------------------------------------------------------------------------------------


def test_table_function_whose_input_is_split_across_batches(server: Server) -> None:
    counts = [[2, 0, 3], [], [1], [None, 4]]
    outputs = run(server, "series", [column("n", c, pa.int64()) for c in counts])
    flat = [n for c in counts for n in c]
    expected = [(row, i) for row, n in enumerate(flat) if n is not None for i in range(n)]
    assert list(zip(pylist(outputs, "row"), pylist(outputs, "series"), strict=True)) == expected
    assert all(out.schema.names == ["row", "series"] for out in outputs)
    assert outputs[0].schema.field("row").type == pa.int32()


@pytest.mark.parametrize("seed", range(3))
def test_table_function_rows_index_the_exchange(server: Server, seed: int) -> None:
    rng = random.Random(seed)
    sizes = [rng.choice([0, 1, 7, 300, 2000]) for _ in range(rng.randint(1, 6))]
    batches = [column("n", [rng.randint(0, 4) for _ in range(size)], pa.int64()) for size in sizes]
    outputs = run(server, "series", batches)
    flat = [n for b in batches for n in b.column(0).to_pylist()]
    assert pylist(outputs, "row") == [row for row, n in enumerate(flat) for _ in range(n)]
    assert pylist(outputs, "series") == [i for n in flat for i in range(n)]
    assert all(out.num_rows <= 1024 for out in outputs)


def test_table_function_output_batches_hold_at_most_1024_rows(server: Server) -> None:
    outputs = run(server, "series", [column("n", [2500, 10], pa.int64())])
    assert [out.num_rows for out in outputs] == [1024, 1024, 462]
    assert pylist(outputs, "row") == [0] * 2500 + [1] * 10


def test_table_batch_rows_is_configurable(start_server: Callable[..., Server], tmp_path: Any) -> None:
    (tmp_path / "kinds.py").write_text(textwrap.dedent(MODULE))
    small = start_server("--udf-dir", str(tmp_path), "--workers", "1", "--table-batch-rows", "100")
    outputs = run(small, "series", [column("n", [250], pa.int64())])
    assert [out.num_rows for out in outputs] == [100, 100, 50]


def test_table_function_tuples_are_columns(server: Server) -> None:
    outputs = run(server, "words", [column("text", ["a bb", None, "", "ccc"], pa.string())])
    (out,) = outputs
    assert out.schema.names == ["row", "word", "length"]
    assert out.to_pydict() == {"row": [0, 0, 3], "word": ["a", "bb", "ccc"], "length": [1, 2, 3]}
    (pairs,) = run(server, "pairs", [column("n", [2], pa.int64())])
    assert pairs.to_pydict() == {"row": [0, 0], "c0": [0, 1], "c1": ["0", "1"]}


def test_table_function_failure_names_the_row(server: Server) -> None:
    message = r"batch 1: explode: row 0: ValueError: negative count -1"  # rows count within their batch
    with pytest.raises(flight.FlightServerError, match=message):
        run(server, "explode", [column("n", [1, 1], pa.int64()), column("n", [-1], pa.int64())])
    server.assert_healthy()


def test_table_function_is_described_with_its_row_column(server: Server) -> None:
    with flight.FlightClient(server.location) as client:
        schema = client.get_schema(flight.FlightDescriptor.for_path("words")).schema
        info = client.get_flight_info(flight.FlightDescriptor.for_path("words"))
    assert schema.names == ["text", "row", "word", "length"]
    assert json.loads(info.app_metadata)["kind"] == "table"


# --- aggregates -------------------------------------------------------------------------------------------


def floats(values: Sequence[float | None]) -> pa.RecordBatch:
    return column("x", values, pa.float64())


@pytest.mark.parametrize("seed", range(4))
def test_aggregate_over_many_batches_equals_one_pass(server: Server, seed: int) -> None:
    rng = random.Random(seed)
    values: list[float | None] = [
        None if rng.random() < 0.1 else float(rng.randint(-100, 100)) for _ in range(3000)
    ]
    cuts = sorted(rng.sample(range(1, len(values)), rng.randint(1, 40)))
    batches = [floats(values[a:b]) for a, b in zip([0, *cuts], [*cuts, len(values)], strict=True)]
    (one_pass,) = run(server, "Mean", [floats(values)])
    (many,) = run(server, "Mean", batches)
    present = [v for v in values if v is not None]
    assert many.column(0).to_pylist() == one_pass.column(0).to_pylist() == [sum(present) / len(present)]


def test_aggregate_of_no_rows(server: Server) -> None:
    (out,) = run(server, "Mean", [floats([])])
    assert out.column(0).to_pylist() == [None]
    (out,) = run(server, "VectorSum", [], schema=pa.schema([pa.field("x", pa.int64())]))
    assert out.column(0).to_pylist() == [0]


def test_vectorized_aggregate_skips_nulls(server: Server) -> None:
    batches = [
        column("x", [1, None, 2], pa.int64()),
        column("x", [None], pa.int64()),
        column("x", [10], pa.int64()),
    ]
    (out,) = run(server, "VectorSum", batches)
    assert out.column(0).to_pylist() == [13]


def test_running_aggregate_emits_after_every_batch(server: Server) -> None:
    outputs = run(server, "Mean", [floats([2.0]), floats([4.0, None]), floats([])], options={"running": True})
    assert pylist(outputs, "Mean") == [2.0, 3.0, 3.0, 3.0]  # one per batch, then the final result


@pytest.mark.parametrize("seed", range(3))
def test_merging_partial_states_equals_one_pass(server: Server, seed: int) -> None:
    rng = random.Random(seed)
    parts = [
        [float(rng.randint(0, 50)) for _ in range(rng.randint(0, 200))] for _ in range(rng.randint(2, 6))
    ]
    states = [run(server, "Mean", [floats(part)], options={"phase": "partial"})[0] for part in parts]
    assert all(s.schema == pa.schema([pa.field("state", pa.binary())]) for s in states)
    # Combine the first two states into one, then merge everything into the result.
    (combined,) = run(server, "Mean", states[:2], options={"phase": "combine"})
    (merged,) = run(server, "Mean", [combined, *states[2:]], options={"phase": "merge"})
    (one_pass,) = run(server, "Mean", [floats([v for part in parts for v in part])])
    assert merged.column(0).to_pylist() == one_pass.column(0).to_pylist()


def test_merge_refuses_states_it_did_not_sign(server: Server) -> None:
    forged = column("state", [b"\0" * 32 + b"cos\nsystem\n(S'true'\ntR."], pa.binary())
    with pytest.raises(flight.FlightServerError, match="state in row 0 is not one this server made"):
        run(server, "Mean", [forged], options={"phase": "merge"})
    server.assert_healthy()


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "VectorSum",
            {"phase": "merge"},
            "phase merge needs an aggregate with a merge method; VectorSum has none",
        ),
        ("Mean", {"phase": "final"}, 'phase "final" is not partial, combine or merge'),
        ("Mean", {"runing": True}, 'unknown field "runing"'),
        ("series", {"running": True}, "running applies to aggregates; series is a table function"),
    ],
)
def test_bad_exchange_options_are_invalid_arguments(
    server: Server, name: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(pa.ArrowInvalid, match=message):
        run(server, name, [column("x" if name != "series" else "n", [1], pa.int64())], options=options)


def test_concurrent_aggregates_keep_their_own_state(server: Server) -> None:
    results: dict[int, Any] = {}

    def one(i: int) -> None:
        batches = [floats([float(i)] * 50) for _ in range(20)]
        results[i] = run(server, "Mean", batches)[0].column(0).to_pylist()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: [float(i)] for i in range(6)}


# --- batch transforms -------------------------------------------------------------------------------------


def test_stateful_transform_like_fungis_running_average(server: Server) -> None:
    outputs = run(server, "RunningAverage", [floats([1.0, 3.0]), floats([]), floats([5.0]), floats([7.0])])
    assert pylist(outputs, "avg") == [1.0, 2.0, 3.0, 4.0]
    assert pylist(outputs, "x") == [1.0, 3.0, 5.0, 7.0]
    # A new exchange starts from fresh state.
    (again,) = run(server, "RunningAverage", [floats([10.0])])
    assert again.column("avg").to_pylist() == [10.0]


def test_transform_output_schema_is_inferred_and_described(server: Server) -> None:
    with flight.FlightClient(server.location) as client:
        schema = client.get_schema(flight.FlightDescriptor.for_path("RunningAverage")).schema
    assert schema.names == ["x", "x", "avg"]  # the input field, then the output fields


def test_transform_may_change_the_row_count(server: Server) -> None:
    outputs = run(
        server, "evens", [column("x", list(range(10)), pa.int64()), column("x", [1, 3], pa.int64())]
    )
    assert pylist(outputs, "x") == [0, 2, 4, 6, 8]


def test_transform_emits_at_finish(server: Server) -> None:
    batches = [column("x", list(range(n)), pa.int64()) for n in (3, 0, 5)]
    outputs = run(server, "Count", batches)
    assert [out.to_pydict() for out in outputs] == [{"rows": [8], "batches": [3]}]


def test_transform_output_of_the_wrong_type_is_an_error(server: Server) -> None:
    with pytest.raises(flight.FlightServerError, match=r"wrong_type produced columns \[DataType\(string\)\]"):
        run(server, "wrong_type", [column("x", [1], pa.int64())])
    server.assert_healthy()


def test_kinds_are_listed(server: Server) -> None:
    with flight.FlightClient(server.location) as client:
        (result,) = client.do_action(flight.Action("list", b""))
    listed = {e["name"]: e for e in json.loads(result.body.to_pybytes())}
    assert {n: listed[n]["kind"] for n in ("series", "Mean", "RunningAverage")} == {
        "series": "table",
        "Mean": "aggregate",
        "RunningAverage": "transform",
    }
    assert listed["Mean"]["mergeable"] is True
    assert "mergeable" not in listed["VectorSum"]
