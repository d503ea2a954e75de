"""Rows in PostgreSQL's binary COPY format, made column by column without a connection: a rescore's
worker process makes a chunk's streams, and the event loop of the service only sends them.

A row is its field count, then each field as its length and its bytes (-1 for NULL). The fields
of a column that are the same width in every row of a batch (numbers, times, ids and hashes) are
packed for all rows at once by NumPy, in one record per row at the front of it (the COPY names
the columns in that order); every other column is one piece per row, encoded once per distinct
value where rows share values (codes, areas, portraits), or length and bytes per row.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import numpy as np
from sqlalchemy import BigInteger, Boolean, DateTime, Float, Integer, SmallInteger, String, Table
from sqlalchemy.types import TypeDecorator

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags (none), header extension (none)
END = b"\xff\xff"
NULL = b"\xff\xff\xff\xff"
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

# Binary representation of each kind of column: NumPy dtype, struct format (length + value).
_WIDTH = {"int2": (">i2", ">ih"), "int4": (">i4", ">ii"), "int8": (">i8", ">iq"), "float8": (">f8", ">id"),
          "timestamptz": (">i8", ">iq"), "bool": ("?", ">i?")}
_RANGE = {"int2": 2**15, "int4": 2**31, "int8": 2**63}


def kind_of(column: Any) -> str:
    """The binary kind of a table column, from its SQLAlchemy type (a decorated type by what it
    stores: servicekit's UTCDateTime is a timestamptz)."""
    t = column.type
    if isinstance(t, TypeDecorator):
        t = t.impl
    for cls, kind in ((SmallInteger, "int2"), (BigInteger, "int8"), (Integer, "int4"), (Float, "float8"),
                      (Boolean, "bool"), (String, "text")):  # Text is a String
        if isinstance(t, cls):
            return kind
    if isinstance(t, DateTime) and t.timezone:
        return "timestamptz"
    raise TypeError(f"no binary COPY encoding for {column.name} ({t})")


def kinds(table: Table, columns: Sequence[str]) -> list[str]:
    return [kind_of(table.c[name]) for name in columns]


def micros(value: datetime) -> int:
    """timestamptz as PostgreSQL holds it: microseconds since 2000-01-01 UTC."""
    if value.tzinfo is None:
        raise ValueError("a timestamptz needs an aware datetime")
    since = value - PG_EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def field(kind: str, value: Any) -> bytes:
    """One field: its length and its bytes."""
    if value is None:
        return NULL
    if kind == "text":
        data = value.encode()
        return struct.pack(">i", len(data)) + data
    fmt = _WIDTH[kind][1]
    if kind == "timestamptz":
        value = micros(value)
    elif kind == "float8":
        value = float(value)
    return struct.pack(fmt, struct.calcsize(fmt) - 4, value)


class Encoded:
    """A batch of rows as COPY data: ``columns`` in the order the stream holds them, ``blocks``
    (header first, trailer last) to send one after the other."""

    __slots__ = ("blocks", "columns", "rows")

    def __init__(self, columns: list[str], blocks: list[bytes], rows: int) -> None:
        self.columns, self.blocks, self.rows = columns, blocks, rows


def encode(names: Sequence[str], kinds_: Sequence[str], columns: Sequence[Sequence[Any]], *,
           block: int = 1024) -> Encoded:
    """Rows given as ``columns`` (one sequence of values per name) as binary COPY data."""
    n = len(columns[0]) if columns else 0
    fixed: list[tuple[str, str, Any]] = []  # (name, dtype, values as NumPy can take them)
    pieces: list[tuple[str, list[Any]]] = []  # (name, pieces per row); two entries for length + bytes
    for name, kind, values in zip(names, kinds_, columns, strict=True):
        packed = _fixed(kind, values, n)
        if packed is not None:
            fixed.append((name, *packed))
        else:
            pieces.extend((name, p) for p in _pieces(kind, values, n))
    order = [name for name, _, _ in fixed] + list(dict.fromkeys(name for name, _ in pieces))
    head = np.empty(n, dtype=[("count", ">i2")] + [(f"l{i}", ">i4") if j == 0 else (f"v{i}", dtype)
                                                     for i, (_, dtype, _) in enumerate(fixed) for j in (0, 1)])
    head["count"] = len(order)
    for i, (_, dtype, values) in enumerate(fixed):
        head[f"l{i}"] = np.dtype(dtype).itemsize
        head[f"v{i}"] = values
    heads = head.view(f"V{head.dtype.itemsize}").tolist()
    rows = [heads, *(p for _, p in pieces)]
    blocks = [HEADER]
    for start in range(0, n, block):
        blocks.append(b"".join(chain.from_iterable(zip(*(column[start:start + block] for column in rows)))))
    blocks.append(END)
    return Encoded(order, blocks, n)


def _fixed(kind: str, values: Sequence[Any], n: int) -> tuple[str, Any] | None:
    """The column as one NumPy field, if every row has a value of the same width (a NULL
    anywhere makes the conversion fail: no scan for it first)."""
    if n == 0:
        return None
    try:
        if kind == "text":
            joined = "".join(values)
            width = len(values[0])
            if width == 0 or not joined.isascii() or len(joined) != width * n or len(set(map(len, values))) != 1:
                return None
            return f"S{width}", np.frombuffer(joined.encode("ascii"), dtype=f"S{width}")
        dtype = _WIDTH[kind][0]
        if kind == "timestamptz":
            distinct = {v: micros(v) for v in set(values)}
            return dtype, np.fromiter(map(distinct.__getitem__, values), dtype=np.int64, count=n)
        if kind == "float8" or kind == "bool":  # NumPy takes None as NaN or False here: look for it
            if None in values:
                return None
            return dtype, np.fromiter(values, dtype=np.float64 if kind == "float8" else bool, count=n)
        numbers = np.fromiter(values, dtype=np.int64, count=n)
    except (TypeError, AttributeError):  # a NULL
        return None
    limit = _RANGE[kind]
    if numbers.min() < -limit or numbers.max() >= limit:
        raise OverflowError(f"a value out of range for {kind}")
    return dtype, numbers


def _pieces(kind: str, values: Sequence[Any], n: int) -> Iterator[list[Any]]:
    """The column as pieces of the rows: one per row (each distinct value encoded once), or
    the lengths and the bytes (values mostly distinct)."""
    distinct = set(values)
    if len(distinct) <= max(64, n // 8) or kind != "text" or None in distinct:
        encoded = {v: field(kind, v) for v in distinct}
        yield list(map(encoded.__getitem__, values))
        return
    data = list(map(str.encode, values))
    yield np.fromiter(map(len, data), dtype=">i4", count=n).view("V4").tolist()
    yield data
