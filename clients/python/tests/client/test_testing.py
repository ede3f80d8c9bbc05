"""fletch.testing: UDF modules in process, with the client's calling conventions and exceptions."""

from __future__ import annotations

import sys
import textwrap
import types
from decimal import Decimal
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import fletch
import fletch.testing

from .conftest import CLIENT_UDFS

PRICING = textwrap.dedent(
    '''
    from decimal import Decimal
    from typing import Annotated, Optional

    import pyarrow as pa
    import pyarrow.compute as pc
    from fletch import udf

    from helpers import RATE


    @udf(volatility="immutable")
    def with_tax(price: Annotated[Decimal, pa.decimal128(10, 2)]) -> Annotated[Decimal, pa.decimal128(10, 2)]:
        """Row-wise: called once per row with Python values."""
        return (price * RATE).quantize(Decimal("0.01"))


    @udf
    def discount(price: pa.DoubleArray, pct: Optional[pa.DoubleArray]) -> pa.DoubleArray:
        return pc.multiply(price, pc.subtract(1, pc.divide(pc.fill_null(pct, 0.0), 100)))
    '''
)


@pytest.fixture
def udfs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "udfs"
    root.mkdir()
    (root / "pricing.py").write_text(PRICING, encoding="utf-8")
    (root / "helpers.py").write_text("from decimal import Decimal\nRATE = Decimal('1.2')\n", encoding="utf-8")
    return root


@pytest.fixture
def client_module(tmp_path: Path) -> Path:
    path = tmp_path / "client" / "client_udfs.py"
    path.parent.mkdir()
    path.write_text(CLIENT_UDFS, encoding="utf-8")
    return path


def test_readme_example(udfs_dir: Path) -> None:
    udfs = fletch.testing.load(udfs_dir / "pricing.py")
    assert udfs.call("with_tax", [Decimal("10.00")]).to_pylist() == [Decimal("12.00")]
    assert udfs.call("discount", [100.0, 80.0], [10.0, None]).to_pylist() == [90.0, 80.0]


def test_module_is_not_left_in_sys_modules(udfs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sentinel = types.ModuleType("pricing")
    monkeypatch.setitem(sys.modules, "pricing", sentinel)
    path_before = list(sys.path)
    udfs = fletch.testing.load(str(udfs_dir / "pricing.py"))
    assert sys.modules["pricing"] is sentinel  # what was there before is back
    assert sys.path == path_before
    assert "with_tax" in udfs
    monkeypatch.delitem(sys.modules, "pricing")
    fletch.testing.load(udfs_dir / "pricing.py")
    assert "pricing" not in sys.modules
    # Loading twice gives two independent module objects.
    a = fletch.testing.load(udfs_dir / "pricing.py").spec("with_tax").function
    b = fletch.testing.load(udfs_dir / "pricing.py").spec("with_tax").function
    assert a is not b


def test_load_directory_and_module(udfs_dir: Path) -> None:
    udfs = fletch.testing.load(udfs_dir)
    names = [i.name for i in udfs.list()]
    assert names == sorted(names)
    assert names == ["discount", "with_tax"]
    module = types.ModuleType("inline")
    exec("from fletch import udf\n@udf\ndef one(x: int) -> int:\n    return 1\n", module.__dict__)
    assert [i.name for i in fletch.testing.load(module).list()] == ["one"]
    with pytest.raises(FileNotFoundError):
        fletch.testing.load(udfs_dir / "missing.py")


def test_duplicate_names_in_a_directory(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.py").write_text(
            "from fletch import udf\n@udf\ndef same(x: int) -> int:\n    return x\n"
        )
    with pytest.raises(ValueError, match="already defined by module 'a'"):
        fletch.testing.load(tmp_path)


def test_describe(udfs_dir: Path) -> None:
    udfs = fletch.testing.load(udfs_dir / "pricing.py")
    info = udfs.describe("with_tax")
    assert info.params == (fletch.ParamInfo("price", pa.decimal128(10, 2), "decimal128(10, 2)", False),)
    assert info.returns.type == pa.decimal128(10, 2)
    assert (info.kind, info.language, info.volatility, info.version) == ("scalar", "python", "immutable", "")
    assert info.doc == "Row-wise: called once per row with Python values."
    with pytest.raises(fletch.UdfNotFound, match=r'function "with_ta" not found; did you mean "with_tax"\?'):
        udfs.describe("with_ta")


def test_call_forms(client_module: Path) -> None:
    udfs = fletch.testing.load(client_module)
    assert udfs.call("greet", ["a", None], ["!", "?"]).to_pylist() == ["hello a!", "hello stranger?"]
    table = udfs.call("vec_double", pa.table({"x": pa.chunked_array([[1], [2, 3]])}))
    assert isinstance(table, pa.Table)
    assert table.schema.names == ["vec_double"]
    assert [len(c) for c in table.column(0).chunks] == [1, 2]
    assert udfs.call("seven", rows=2).to_pylist() == [7, 7]
    frame = udfs.call("vec_double", pd.DataFrame({"x": [1, 2]}, index=[3, 4]))
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == [3, 4]
    assert frame["vec_double"].tolist() == [2, 4]
    series = udfs.call("vec_double", pl.Series([5]))
    assert isinstance(series, pl.Series)
    assert series.to_list() == [10]
    out = list(
        udfs.call_stream("vec_double", iter([pa.record_batch({"x": [1]}), pa.record_batch({"x": [2]})]))
    )
    assert [b.column(0).to_pylist() for b in out] == [[2], [4]]


def test_exceptions(client_module: Path) -> None:
    udfs = fletch.testing.load(client_module)
    with pytest.raises(fletch.UdfError) as info:
        udfs.call("fails_on_three", pa.table({"x": [1, 2, 4, 3]}), batch_size=2)
    err = info.value
    assert (err.function, err.batch, err.row, err.exc_type, err.message) == (
        "fails_on_three",
        1,
        1,
        "client_udfs.PriceError",
        "three is not a price",
    )
    assert "raise PriceError" in err.traceback
    with pytest.raises(fletch.SignatureMismatch) as mismatch:
        udfs.call("fails_on_three", pa.array(["x"]))
    assert str(mismatch.value) == (
        "input schema does not match the function's parameters: "
        'fails_on_three: input column 0 ("x"): expected int64, got utf8'
    )
    with pytest.raises(
        fletch.SignatureMismatch, match=r"takes 2 column\(s\) \(name utf8, punctuation utf8\)"
    ):
        udfs.call("greet", pa.array(["x"]))
    with pytest.raises(fletch.SignatureMismatch, match="cannot convert"):
        udfs.call("fails_on_three", ["x"])
    with pytest.raises(fletch.UdfNotFound):
        udfs.call("nope", [1])


def test_lossless_conversions_are_accepted(client_module: Path) -> None:
    udfs = fletch.testing.load(client_module)
    assert udfs.call("fails_on_three", pa.array([1, 2], pa.int8())).to_pylist() == [10, 20]
    assert udfs.call("fails_on_three", pa.array([1], pa.uint32())).to_pylist() == [10]
    assert udfs.call("fails_on_three", pa.array([None, None])).to_pylist() == [None, None]
    assert udfs.call(
        "greet", pa.array(["a"], pa.large_string()), pa.array(["!"], pa.string_view())
    ).to_pylist() == ["hello a!"]
    with pytest.raises(fletch.SignatureMismatch, match="expected int64, got uint64"):
        udfs.call("fails_on_three", pa.array([1], pa.uint64()))
