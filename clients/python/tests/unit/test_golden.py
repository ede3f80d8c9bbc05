"""describe() of testdata/udfs/fixtures.py against testdata/udfs/fixtures.golden.json.

The Go worker tests load the same fixtures through the real worker and compare with the same file, so the
two sides agree on every descriptor. Set FLETCH_UPDATE_GOLDEN=1 to rewrite the golden file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from fletch import UdfSpec, collect

# tests/unit/test_golden.py -> the repository root is four levels up.
UDFS = Path(__file__).parents[4] / "testdata" / "udfs"
FIXTURES = UDFS / "fixtures.py"
GOLDEN = UDFS / "fixtures.golden.json"
MODULE_NAME = "fletch_golden_fixtures"


@pytest.fixture(scope="module")
def fixtures() -> Iterator[types.ModuleType]:
    """The fixtures module, imported by path (registered in sys.modules, as a normal import would)."""
    spec = importlib.util.spec_from_file_location(MODULE_NAME, FIXTURES)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[MODULE_NAME]


def render(specs: list[UdfSpec]) -> str:
    return json.dumps([s.describe() for s in specs], indent=2, sort_keys=False) + "\n"


def test_fixtures_match_golden(fixtures: types.ModuleType) -> None:
    got = render(collect(fixtures))
    if os.environ.get("FLETCH_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(got, encoding="utf-8")
        return
    assert GOLDEN.is_file(), f"{GOLDEN} is missing; run with FLETCH_UPDATE_GOLDEN=1 to create it"
    want = GOLDEN.read_text(encoding="utf-8")
    assert got == want, "describe() changed; rerun with FLETCH_UPDATE_GOLDEN=1 if that is intended"


def test_fixtures_are_deterministic(fixtures: types.ModuleType) -> None:
    assert render(collect(fixtures)) == render(collect(fixtures))


def test_fixtures_cover_every_form(fixtures: types.ModuleType) -> None:
    specs = {s.name: s for s in collect(fixtures)}
    assert "add_int_alias" not in specs  # an alias is the same UDF
    assert "renamed" in specs
    assert "original_name" not in specs
    assert any(s.vectorized for s in specs.values())
    assert any(not s.params for s in specs.values())
    texts = {p.describe()["type"] for s in specs.values() for p in [*s.params, s.result]}
    for expected in [
        "int64",
        "float64",
        "utf8",
        "binary",
        "bool",
        "decimal128(38, 9)",
        "date32",
        "timestamp[us]",
        "time64[us]",
        "duration[us]",
        "list<int64 not null>",
        "map<utf8, float64 not null>",
    ]:
        assert expected in texts


# A few fixtures run end to end, so the golden module is known to work and not just to describe itself.
RUNS: list[tuple[str, list[pa.Array], list[object]]] = [
    ("add_int", [pa.array([1, None]), pa.array([2, 3])], [3, None]),
    ("coalesce_int", [pa.array([None, 5]), pa.array([1, 2])], [1, 5]),
    ("safe_div", [pa.array([7, 7]), pa.array([2, 0])], [3, None]),
    ("compact", [pa.array([[1, None, 2]], type=pa.list_(pa.int64()))], [[1, 2]]),
    ("renamed", [pa.array([9])], [9]),
    ("answer", [], [42, 42]),
    ("vec_add", [pa.array([1, None]), pa.array([10, 20])], [11, None]),
    ("vec_pi", [], [3.141592653589793] * 2),
    ("repeat_text", [pa.array([2], type=pa.int32()), pa.array(["ab"])], ["abab"]),
    (
        "midpoint",
        [
            pa.array(
                [
                    {
                        "start": {"x": 0.0, "y": 0.0, "label": None},
                        "end": {"x": 2.0, "y": 4.0, "label": "e"},
                        "tags": [],
                    }
                ],
                type=pa.struct(
                    [
                        (
                            "start",
                            pa.struct([("x", pa.float64()), ("y", pa.float64()), ("label", pa.string())]),
                        ),
                        (
                            "end",
                            pa.struct([("x", pa.float64()), ("y", pa.float64()), ("label", pa.string())]),
                        ),
                        ("tags", pa.list_(pa.string())),
                    ]
                ),
            )
        ],
        [{"x": 1.0, "y": 2.0, "label": "mid"}],
    ),
    (
        "format_address",
        [
            pa.array(
                [{"street": "Main St 1", "city": "Springfield", "zip_code": None}],
                type=pa.struct([("street", pa.string()), ("city", pa.string()), ("zip_code", pa.string())]),
            )
        ],
        ["Main St 1, ? Springfield"],
    ),
    (
        "count_nulls",
        [pa.array([{"a": [1, None, None]}], type=pa.map_(pa.string(), pa.list_(pa.int64())))],
        [[("a", 2)]],
    ),
    ("vec_concat", [pa.array(["a", None]), pa.array(["b", "c"], type=pa.large_string())], ["ab", None]),
    ("vec_is_null", [pa.array([1.0, None])], [False, True]),
    (
        "weight",
        [pa.array(["a", "z"]), pa.array([[("a", 0.5)], []], type=pa.map_(pa.string(), pa.float64()))],
        [0.5, None],
    ),
    ("tags", [pa.array([["ab", "c"]], type=pa.list_(pa.large_string()))], [[2, 1]]),
]


@pytest.mark.parametrize(("name", "columns", "expected"), RUNS, ids=[r[0] for r in RUNS])
def test_fixtures_run(
    fixtures: types.ModuleType, name: str, columns: list[pa.Array], expected: list[object]
) -> None:
    spec = {s.name: s for s in collect(fixtures)}[name]
    if columns:
        batch = pa.record_batch(columns, names=[p.name for p in spec.params])
    else:
        batch = pa.record_batch([pa.nulls(len(expected))], names=["_"]).drop_columns(["_"])
    assert spec.evaluate(batch).to_pylist() == expected
