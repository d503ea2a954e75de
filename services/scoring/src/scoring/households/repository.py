"""Queries on scoring's copy of the household views."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller
from servicekit.db import dialect_insert
from scoring.assessments.tables import Assessment
from scoring.bulk import chunked, insert_rows, is_postgres
from scoring.households.tables import HouseholdView

T = HouseholdView

# What scoring reads to assess a household (not the JSON view, unless the layout changed).
SUBJECT_COLUMNS = (
    T.household_id, T.version, T.area_code, T.township_code, T.district_code, T.label_masked, T.input_hash,
    T.facts, T.features, T.layout, T.member_ages,
)


class SubjectRow(NamedTuple):
    household_id: str
    version: int
    area_code: str
    township_code: str
    district_code: str
    label_masked: str
    input_hash: str
    facts: str
    features: bytes
    layout: str
    member_ages: str | None  # JSON text; None: never sent


def ages_json(ages: Sequence[int] | None) -> str | None:
    """Member ages as stored and as assessment.updated carries them (compact JSON)."""
    return None if ages is None else "[" + ",".join(str(int(a)) for a in ages) + "]"


async def member_ages(session: AsyncSession, household_id: str) -> str | None:
    return (await session.execute(select(T.member_ages).where(T.household_id == household_id))).scalar_one_or_none()


async def store(session: AsyncSession, rows: Sequence[dict[str, Any]], *, known: Mapping[str, int],
                copy_threshold: int) -> None:
    """Store views (``view`` as canonical JSON text): households scoring has never seen are
    inserted (COPY when many, as when catching up with a registry), the others upserted."""
    new = [r for r in rows if r["household_id"] not in known]
    old = [r for r in rows if r["household_id"] in known]
    if new:
        columns = list(new[0])
        if is_postgres(session) and len(new) >= copy_threshold:
            at = columns.index("missing")  # a list: COPY takes it as JSON text
            records = [(*row[:at], json.dumps(row[at]), *row[at + 1:]) for row in (tuple(r.values()) for r in new)]
            await insert_rows(session, T.__table__, columns, records, copy_threshold=copy_threshold)
        else:
            await upsert(session, new)
    await upsert(session, old)


async def upsert(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace views; an older version never replaces a newer one (checked again here,
    so that two writers racing on PostgreSQL still keep the newest)."""
    if not rows:
        return
    stmt = _upsert(dialect_insert(session), tuple(c for c in rows[0] if c != "household_id"))
    connection = await session.connection()  # Core executemany: no ORM bookkeeping per row
    for part in chunked(rows, 2000):
        await connection.execute(stmt, list(part))


@functools.cache
def _upsert(insert: Callable[..., Any], columns: tuple[str, ...]) -> Any:
    """The upsert statement for these columns with the dialect's ``insert``, built once (building
    it took a tenth of the CPU of applying one household.changed)."""
    table = T.__table__
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c.household_id],
        set_={c: stmt.excluded[c] for c in columns},
        where=table.c.version < stmt.excluded.version,
    )


async def views(session: AsyncSession, ids: Sequence[str]) -> dict[str, tuple[dict[str, Any], list[str]]]:
    """The JSON views as sent (to prepare them again under another layout)."""
    out: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for part in chunked(ids):
        rows = await session.execute(select(T.household_id, T.view, T.missing).where(T.household_id.in_(part)))
        out.update({r[0]: (r[1], r[2]) for r in rows})
    return out


async def in_scope(session: AsyncSession, caller: Caller, household_id: str) -> HouseholdView | None:
    return (
        await session.execute(select(T).where(T.household_id == household_id, T.closed.is_(False),
                                              caller.scope(T.area_code)))
    ).scalar_one_or_none()


async def withdrawn_page(session: AsyncSession, after: str,
                         limit: int) -> tuple[list[tuple[Any, str, int]], str | None]:
    """Closed households that had an assessment, in id order after ``after`` (the partial index
    on closed households: a page reads those only), each with its last assessment's id and level,
    and the last household id the page read (None: the end). A closed household never assessed
    is passed over, as it was on the feed."""
    # ``closed`` as the partial index says it: PostgreSQL does not use the index for ``closed IS true``.
    closed = (await session.execute(
        select(T.household_id, T.version, T.area_code, T.township_code, T.district_code, T.label_masked, T.updated_at)
        .where(T.closed, T.household_id > after).order_by(T.household_id).limit(limit)
    )).all()
    if not closed:
        return [], None
    last: dict[str, tuple[int, str, int]] = {}
    for household_id, number, assessment_id, level in await session.execute(
            select(Assessment.household_id, Assessment.number, Assessment.id, Assessment.effective_level)
            .where(Assessment.household_id.in_([h.household_id for h in closed]))):
        if household_id not in last or number > last[household_id][0]:
            last[household_id] = (number, assessment_id, level)
    out = [(h, *last[h.household_id][1:]) for h in closed if h.household_id in last]
    return out, closed[-1].household_id if len(closed) == limit else None
