"""@udtf, @udaf and @transform in process (fletch._kinds)."""

from __future__ import annotations

import dataclasses
import hmac
import pickle
import random
import sys
from collections.abc import Iterator
from typing import Any, NamedTuple, Optional

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fletch import AggregateSpec, TableSpec, TransformSpec, UdfError, collect, transform, udaf, udtf

KEY = b"k" * 32


def spec_of(target: Any) -> Any:
    return target.__fletch_udf__


def ints(name: str, values: list[int | None]) -> pa.RecordBatch:
    return pa.record_batch([pa.array(values, pa.int64())], names=[name])


# -- table functions ---------------------------------------------------------------------------------------


class Pair(NamedTuple):
    left: int
    right: Optional[str]


@dataclasses.dataclass
class Point:
    x: float
    y: float


def test_udtf_output_schemas() -> None:
    @udtf
    def count(n: int) -> Iterator[int]:
        yield from range(n)

    @udtf
    def pairs(n: int) -> Iterator[Pair]:
        yield Pair(n, None)

    @udtf
    def tuples(n: int) -> list[tuple[int, str]]:
        return [(n, "x")]

    @udtf
    def points(n: int) -> Iterator[Point]:
        yield Point(n, -n)

    cases = {
        count: [("row", pa.int32()), ("count", pa.int64())],
        pairs: [("row", pa.int32()), ("left", pa.int64()), ("right", pa.string())],
        tuples: [("row", pa.int32()), ("c0", pa.int64()), ("c1", pa.string())],
        points: [("row", pa.int32()), ("x", pa.float64()), ("y", pa.float64())],
    }
    for function, fields in cases.items():
        spec = spec_of(function)
        assert isinstance(spec, TableSpec)
        assert [(f.name, f.type) for f in spec.output_schema()] == fields
        assert spec.describe()["kind"] == "table"


def test_udtf_rows_and_null_policy() -> None:
    @udtf
    def count(n: int) -> Iterator[int]:
        yield from range(n)

    out = spec_of(count).table(ints("n", [2, None, 0, 1]))
    assert out.to_pydict() == {"row": [0, 0, 3], "count": [0, 1, 0]}


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ("int", r"the return annotation must be Iterator\[T\]"),
        ("Iterator[tuple[int, ...]]", r"tuple\[T, ...\] has no fixed columns"),
    ],
)
def test_udtf_refuses_returns_without_rows(annotation: str, message: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"from collections.abc import Iterator\ndef f(n: int) -> {annotation}:\n    return []", namespace)
    with pytest.raises(TypeError, match=message):
        udtf(namespace["f"])


# -- aggregates --------------------------------------------------------------------------------------------


@udaf
class Total:
    def __init__(self) -> None:
        self.total = 0

    def accumulate(self, x: int) -> None:
        self.total += x

    def merge(self, other: Total) -> None:
        self.total += other.total

    def finish(self) -> int:
        return self.total


@udaf
class Maximum:
    def __init__(self) -> None:
        self.best: int | None = None

    def accumulate(self, x: pa.Int64Array) -> None:
        top = pc.max(x).as_py()
        if top is not None and (self.best is None or top > self.best):
            self.best = top

    def finish(self) -> Optional[int]:
        return self.best


def aggregate(spec: AggregateSpec, batches: list[pa.RecordBatch], **options: Any) -> list[Any]:
    session = spec.open(options, key=KEY)
    outs = [out for b in batches for out in session.process(b)] + session.finish()
    return [v for out in outs for v in out.column(0).to_pylist()]


def test_udaf_is_described() -> None:
    described = spec_of(Total).describe()
    assert described["kind"] == "aggregate"
    assert described["params"] == [{"name": "x", "type": "int64", "nullable": False}]
    assert described["mergeable"] is True
    assert "mergeable" not in spec_of(Maximum).describe()
    assert spec_of(Maximum).vectorized
    assert {"Total", "Maximum"} <= {s.name for s in collect(sys.modules[__name__])}


def test_udaf_skips_nulls_and_runs() -> None:
    batches = [ints("x", [1, None, 2]), ints("x", []), ints("x", [4])]
    assert aggregate(spec_of(Total), batches) == [7]
    assert aggregate(spec_of(Total), batches, running=True) == [3, 3, 7, 7]
    assert aggregate(spec_of(Maximum), batches) == [4]
    assert aggregate(spec_of(Maximum), []) == [None]


@pytest.mark.parametrize("seed", range(20))
def test_merging_partial_states_equals_one_pass(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.randint(-1000, 1000) for _ in range(rng.randint(0, 300))]
    cuts = sorted(rng.sample(range(len(values) + 1), rng.randint(0, min(5, len(values) + 1))))
    parts = [values[a:b] for a, b in zip([0, *cuts], [*cuts, len(values)], strict=True)]
    spec = spec_of(Total)
    states = [aggregate(spec, [ints("x", part)], phase="partial")[0] for part in parts]
    assert all(isinstance(s, bytes) for s in states)
    merged = aggregate(
        spec, [pa.record_batch([pa.array(states, pa.binary())], names=["state"])], phase="merge"
    )
    assert merged == [sum(values)]


def test_states_are_signed() -> None:
    spec = spec_of(Total)
    state = Total()
    state.total = 5
    blob = spec.dump_state(state, KEY)
    assert spec.load_state(blob, KEY, 0).total == 5
    with pytest.raises(UdfError, match="not one this server made"):
        spec.load_state(blob, b"other" * 8, 0)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(UdfError, match="not one this server made"):
        spec.load_state(tampered, KEY, 3)
    with pytest.raises(UdfError, match="not one this server made"):
        spec.load_state(b"short", KEY, 0)
    payload = pickle.dumps([1, 2])
    with pytest.raises(UdfError, match="state in row 1 is a list, not Total"):
        spec.load_state(hmac.digest(KEY, payload, "sha256") + payload, KEY, 1)


def test_merge_phases_need_a_merge_method() -> None:
    with pytest.raises(ValueError, match="phase merge needs a merge method"):
        spec_of(Maximum).open({"phase": "merge"})
    with pytest.raises(ValueError, match="phase 'final' is not partial, combine or merge"):
        spec_of(Total).open({"phase": "final"})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(x: int) -> int:\n    return x", "decorate a class with accumulate and finish methods"),
        ("class A:\n    def finish(self) -> int:\n        return 0", "the class has no accumulate method"),
        (
            "class A:\n    def accumulate(self, x: int) -> None: ...\n"
            "    def finish(self):\n        return 0",
            "finish has no return annotation",
        ),
    ],
)
def test_udaf_refuses_incomplete_classes(source: str, message: str) -> None:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    target = namespace.get("A", namespace.get("f"))
    with pytest.raises(TypeError, match=message):
        udaf(target)


def test_udaf_finish_errors_name_the_function() -> None:
    @udaf
    class Broken:
        def accumulate(self, x: int) -> None:
            raise KeyError(x)

        def finish(self) -> int:
            return 0

    with pytest.raises(UdfError) as info:
        aggregate(spec_of(Broken), [ints("x", [None, 9])])
    assert (info.value.row, info.value.exc_type) == (1, "KeyError")


# -- transforms --------------------------------------------------------------------------------------------


def test_transform_infers_its_output_and_keeps_state() -> None:
    @transform(input_schema={"x": "int64"})
    class Cumulative:
        def __init__(self) -> None:
            self.total = 0

        def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
            sums = []
            for v in batch.column(0).to_pylist():
                self.total += v
                sums.append(self.total)
            return pa.record_batch([pa.array(sums, pa.int64())], names=["sum"])

    spec = spec_of(Cumulative)
    assert isinstance(spec, TransformSpec)
    assert spec.output_schema() == pa.schema([pa.field("sum", pa.int64())])
    session = spec.open({})
    outs = session.process(ints("x", [1, 2])) + session.process(ints("x", [3])) + session.finish()
    assert [v for o in outs for v in o.column(0).to_pylist()] == [1, 3, 6]
    assert spec.describe()["return"]["type"] == "struct<sum: int64>"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_schema": 5}, "a schema is a pa.Schema, a struct type text or a dict of column types"),
        ({"input_schema": {"x": "int64"}}, "produced no batch to learn the output schema from"),
    ],
)
def test_transform_schema_errors(kwargs: dict[str, Any], message: str) -> None:
    def nothing(batch: pa.RecordBatch) -> list[pa.RecordBatch]:
        return []

    with pytest.raises(TypeError, match=message):
        transform(nothing, **kwargs)


def test_transform_output_must_match_its_schema() -> None:
    @transform(input_schema={"x": "int64"}, output_schema={"x": "int64"})
    def stringify(batch: pa.RecordBatch) -> pa.RecordBatch:
        return pa.record_batch([pc.cast(batch.column(0), pa.string())], names=["x"])

    with pytest.raises(UdfError, match="stringify produced columns"):
        spec_of(stringify).open({}).process(ints("x", [1]))
