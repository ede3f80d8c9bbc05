"""Types and functions annotated under ``from __future__ import annotations`` (every annotation a string)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from typing import Annotated, TypedDict

import pyarrow as pa


@dataclasses.dataclass
class Point:
    x: int
    y: str | None


@dataclasses.dataclass(frozen=True)
class Box:
    corners: list[Point]
    by_name: dict[str, Point | None]
    origin: Point | None = None


class Tagged(TypedDict):
    tag: str
    weight: float | None
    where: Point


class Sparse(TypedDict, total=False):
    count: int


def scalars(
    i: int, f: float, s: str, b: bytes, flag: bool, d: decimal.Decimal, day: datetime.date
) -> datetime.datetime | None:
    del i, f, s, b, flag, d, day
    return None


def nested(points: list[Point], box: Box | None, tagged: Tagged) -> dict[str, list[int | None]]:
    del points, box, tagged
    return {}


def overridden(x: Annotated[int | None, pa.int32()]) -> Annotated[decimal.Decimal, pa.decimal128(10, 2)]:
    del x
    return decimal.Decimal(0)
