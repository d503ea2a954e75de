"""Queries on assessments: history, the current one per household, reviews, snapshot pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import compress, repeat
from operator import is_not, itemgetter
from typing import Any

from sqlalchemy import Select, String, and_, any_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller
from servicekit.db import dialect_insert, driver_of
from servicekit.pagination import PageParams
from scoring.assessments.rescore_worker import Chunk
from scoring.assessments.tables import Assessment, AssessmentReview, CurrentAssessment
from scoring.bulk import chunked, fetch, fetch_fixed, insert_rows, is_postgres, streamed
from scoring.engine.records import ASSESSMENT_COLUMNS, CURRENT_COLUMNS, Batch, Previous
from scoring.households.repository import SUBJECT_COLUMNS, SubjectRow
from scoring.households.tables import HouseholdView

C = CurrentAssessment
A = Assessment

PREVIOUS_COLUMNS = (C.household_id, C.assessment_id, C.number, C.score, C.level, C.effective_level, C.content_hash,
                    C.input_hash, C.model_version, C.etag, C.reviewed_level, C.review_id, C.review_basis_level)


async def previous(session: AsyncSession, ids: Sequence[str]) -> dict[str, Previous]:
    out: dict[str, Previous] = {}
    postgres = is_postgres(session)
    for part in chunked(ids, 50_000 if postgres else 5000):
        # One array parameter on PostgreSQL: one statement to prepare, whatever the batch size.
        where = (C.household_id == any_(bindparam("ids", list(part), type_=ARRAY(String(36)))) if postgres
                 else C.household_id.in_(part))
        rows = await fetch(session, select(*PREVIOUS_COLUMNS).where(where))
        out.update({r[0]: Previous._make(r[1:]) for r in rows})
    return out


async def known(session: AsyncSession, ids: Sequence[str]) -> tuple[dict[str, int], dict[str, Previous]]:
    """For the households scoring has seen among ``ids``: the version of the view it holds, and
    its current assessment (one query, for a batch from the feed)."""
    H = HouseholdView
    versions: dict[str, int] = {}
    previous: dict[str, Previous] = {}
    postgres = is_postgres(session)
    for part in chunked(ids, 50_000 if postgres else 5000):
        if postgres:  # the statement built and compiled once (a tenth of one household.changed's CPU)
            found = await fetch_fixed(session, _KNOWN, {"ids": list(part)})
        else:
            found = await fetch(session, _known(H.household_id.in_(part)))
        for r in found:
            versions[r[0]] = r[1]
            if r[2] is not None:
                previous[r[0]] = Previous._make(r[2:])
    return versions, previous


def _known(where: Any) -> Select:
    H = HouseholdView
    return (select(H.household_id, H.version, *PREVIOUS_COLUMNS[1:]).where(where)
            .outerjoin(C, C.household_id == H.household_id))


_KNOWN = _known(HouseholdView.household_id == any_(bindparam("ids", type_=ARRAY(String(36)))))


async def population(session: AsyncSession, chunk: int) -> AsyncIterator[tuple[list[SubjectRow], dict[str, Previous]]]:
    """Every open household, in chunks in household id order, with its current assessment."""
    after = ""
    while True:
        rows = await fetch(session, population_chunk(after, chunk))
        if not rows:
            return
        width = len(SUBJECT_COLUMNS)
        # C loops over the rows (a city is 230,000): tuple.__new__ is what _make calls.
        subjects = list(map(partial(tuple.__new__, SubjectRow), map(itemgetter(slice(width)), rows)))
        assessed = list(compress(rows, map(is_not, map(itemgetter(width), rows), repeat(None))))
        previous = dict(zip(map(itemgetter(0), assessed),
                            map(partial(tuple.__new__, Previous), map(itemgetter(slice(width, None)), assessed))))
        yield subjects, previous
        after = rows[-1][0]


def population_chunk(after: str, chunk: int) -> Select:
    """The next ``chunk`` open households after ``after`` with their current assessments. The
    join's side is bounded too: without it PostgreSQL's merge join read the current rows from the
    first household on for every chunk (a city's activation: 1.5M index entries for 230k rows)."""
    H = HouseholdView
    on = and_(C.household_id == H.household_id, C.household_id > after)
    return (select(*SUBJECT_COLUMNS, *PREVIOUS_COLUMNS[1:]).where(H.closed.is_(False), H.household_id > after)
            .outerjoin(C, on).order_by(H.household_id).limit(chunk))


async def population_facts(session: AsyncSession, chunk: int) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """Only what a simulation reads: rows of (household id, district, prepared facts, layout) of
    every open household, in chunks."""
    H = HouseholdView
    after = ""
    while True:
        stmt = (select(H.household_id, H.district_code, H.features, H.layout)
                .where(H.closed.is_(False), H.household_id > after).order_by(H.household_id).limit(chunk))
        rows = await fetch(session, stmt)
        if not rows:
            return
        yield rows
        after = rows[-1][0]


async def write(session: AsyncSession, batch: Batch, *, copy_threshold: int, whole_range: bool = False) -> None:
    """Append the assessments and make them current, replacing the households' current rows.
    ``whole_range``: the batch is every open household from its lowest id to its highest (a
    chunk of ``population``), so the rows to replace are found by one range of the primary key
    rather than by a list of ids (which PostgreSQL checked against every row of the table)."""
    if not batch.current:
        return
    await insert_rows(session, A.__table__, ASSESSMENT_COLUMNS, batch.assessments, copy_threshold=copy_threshold)
    if whole_range:
        ids = [row[0] for row in batch.current]
        if is_postgres(session) and len(batch.current) >= copy_threshold:
            await current_from_assessments(session, batch.current, min(ids), max(ids), copy_threshold=copy_threshold)
            return
        await (await session.connection()).execute(delete(C).where(C.household_id.between(min(ids), max(ids))))
        await insert_rows(session, C.__table__, CURRENT_COLUMNS, batch.current, copy_threshold=copy_threshold)
        return
    if len(batch.current) < copy_threshold:  # a few households: one upsert statement
        await (await session.connection()).execute(_upsert_current(session), _dicts(CURRENT_COLUMNS, batch.current))
        return
    await drop_current(session, [row[0] for row in batch.current if row[2] > 1])  # number 1: nothing to replace
    await insert_rows(session, C.__table__, CURRENT_COLUMNS, batch.current, copy_threshold=copy_threshold)


# The columns of a current row that its assessment row holds too (CURRENT_COLUMNS but the
# assessment's id, the unclaimed policies and the four carried from the previous current row).
_SHARED = ("household_id", "number", "household_version", "model_version", "score", "level", "effective_level",
           "difficulty", "five_types", "needs", "area_code", "township_code", "district_code", "label_masked",
           "content_hash", "input_hash", "assessed_at")
_OWN = ("unclaimed_policies", "etag", "reviewed_level", "review_id", "review_basis_level")
OWN_AT = tuple(CURRENT_COLUMNS.index(c) for c in _OWN)
# The chunk's assessments (just copied in, found by id within the chunk's range of ids: they are
# time-ordered) beside what only the current rows hold, given as arrays in the same order.
_FROM_CHUNK = (
    "unnest($1::varchar[], $2::varchar[], $3::int[], $4::smallint[], $5::varchar[], $6::smallint[])"
    " AS u(id, unclaimed_policies, etag, reviewed_level, review_id, review_basis_level)"
    " JOIN assessments a ON a.id = u.id AND a.id BETWEEN $7 AND $8"
)
_UPDATE_CURRENT = (
    "UPDATE current_assessments c SET assessment_id = a.id, "
    + ", ".join(f"{col} = {side}.{col}" for side, cols in (("a", _SHARED[1:]), ("u", _OWN)) for col in cols)
    + f" FROM {_FROM_CHUNK} WHERE c.household_id = a.household_id"
)
# Rows of the range the chunk did not write (households not open): gone, as the range was before.
_DELETE_OTHERS = "DELETE FROM current_assessments WHERE household_id BETWEEN $1 AND $2 AND assessed_at <> $3"


async def current_from_assessments(session: AsyncSession, rows: Sequence[tuple], low: str, high: str,
                                   *, copy_threshold: int) -> None:
    """PostgreSQL, a rescore's chunk (every open household from ``low`` to ``high``, whose
    assessments were just copied in). A household that has a current row gets it updated in
    place by PostgreSQL from the assessment row, rather than the row encoded a second time by the
    process, copied, and the old one deleted: no index holds a column a rescore changes, so with
    the room the table keeps on its pages (fillfactor 50) the update is HOT -- no index entry, no
    uniqueness check. Households without one (a first rescore) get theirs copied in: COPY inserts
    a page of rows at a time, where INSERT ... SELECT inserts and logs each row (230k rows: 1.7 s
    of the backend's CPU against 1.0 s). Current rows in the range of households not in the chunk
    go, as when the whole range was deleted and copied again."""
    known = [row[2] > 1 for row in rows]  # number 1: there was no current row to replace
    if not any(known):
        await _clear_range(session, low, high)
        await insert_rows(session, C.__table__, CURRENT_COLUMNS, rows, copy_threshold=copy_threshold)
        return
    fresh = [] if all(known) else [r for r, k in zip(rows, known, strict=True) if not k]
    await _update_in_place(session, _chunk_arrays(list(compress(rows, known)) if fresh else rows), low, high,
                           rows[0][CURRENT_COLUMNS.index("assessed_at")])
    await insert_rows(session, C.__table__, CURRENT_COLUMNS, fresh, copy_threshold=1)


async def write_encoded(session: AsyncSession, chunk: Chunk) -> None:
    """``write`` of a rescore's chunk that the worker process built and encoded (PostgreSQL): the
    same statements, the rows sent as the worker's binary COPY streams."""
    raw = await driver_of(session)
    await raw.copy_to_table(A.__tablename__, source=streamed(chunk.assessments), columns=chunk.assessment_columns,
                            format="binary")
    if chunk.update is None:
        await _clear_range(session, chunk.low, chunk.high)
    else:
        await _update_in_place(session, chunk.update, chunk.low, chunk.high, chunk.assessed_at)
    if chunk.current_columns is not None:
        await raw.copy_to_table(C.__tablename__, source=streamed(chunk.current), columns=chunk.current_columns,
                                format="binary")


async def _clear_range(session: AsyncSession, low: str, high: str) -> None:
    await (await session.connection()).execute(delete(C).where(C.household_id.between(low, high)))


async def _update_in_place(session: AsyncSession, arrays: Sequence[Any], low: str, high: str, assessed_at: Any) -> None:
    raw = await driver_of(session)  # the assessments' COPY has flushed the session
    await raw.execute(_UPDATE_CURRENT, *arrays)
    await raw.execute(_DELETE_OTHERS, low, high, assessed_at)


def update_arrays(assessment_ids: Sequence[str], own: Sequence[Sequence[Any]]) -> list[Any]:
    """The parameters of the in-place update: the assessments' ids, the columns only current rows
    hold (``_OWN``, in order), the ids' range."""
    ids = list(assessment_ids)
    return [ids, *map(list, own), min(ids), max(ids)]


def _chunk_arrays(rows: Sequence[tuple]) -> list[Any]:
    return update_arrays(list(map(itemgetter(1), rows)), [list(map(itemgetter(i), rows)) for i in OWN_AT])


def _upsert_current(session: AsyncSession) -> Any:
    stmt = dialect_insert(session)(C.__table__)
    return stmt.on_conflict_do_update(index_elements=[C.__table__.c.household_id],
                                      set_={c: stmt.excluded[c] for c in CURRENT_COLUMNS[1:]})


def _dicts(columns: Sequence[str], rows: Sequence[tuple]) -> list[dict[str, Any]]:
    return [dict(zip(columns, r, strict=True)) for r in rows]


def small_writes(session: AsyncSession, n: int) -> list[Any]:
    """``write`` for ``n`` households as two statements with a bind parameter per value
    (multi-row VALUES; values from ``small_params``), to go with the events in one round trip
    (``bulk.write_together``)."""
    def rows(prefix: str, columns: Sequence[str]) -> list[dict[str, Any]]:
        return [{c: bindparam(f"{prefix}{i}_{c}") for c in columns} for i in range(n)]
    return [insert(A.__table__).values(rows("a", ASSESSMENT_COLUMNS)),
            _upsert_current(session).values(rows("c", CURRENT_COLUMNS))]


def small_params(batch: Batch) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for prefix, columns, rows in (("a", ASSESSMENT_COLUMNS, batch.assessments), ("c", CURRENT_COLUMNS, batch.current)):
        for i, row in enumerate(rows):
            params.update(zip([f"{prefix}{i}_{c}" for c in columns], row, strict=True))
    return params


async def drop_current(session: AsyncSession, ids: Sequence[str]) -> None:
    if is_postgres(session):  # one array parameter binds far faster than thousands of IN values
        for part in chunked(ids, 50_000):
            ids = bindparam("ids", list(part), type_=ARRAY(String(36)))
            await session.execute(delete(C).where(C.household_id == any_(ids)))
        return
    for part in chunked(ids, 10_000):
        await session.execute(delete(C).where(C.household_id.in_(part)))


async def relabel(session: AsyncSession, household_id: str, area: tuple[str, str, str], label: str) -> None:
    await session.execute(
        update(C).where(C.household_id == household_id)
        .values(area_code=area[0], township_code=area[1], district_code=area[2], label_masked=label)
    )


async def current(session: AsyncSession, caller: Caller, household_id: str, *, for_update: bool = False) -> CurrentAssessment | None:
    stmt = select(C).where(C.household_id == household_id, caller.scope(C.area_code))
    if for_update and session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def assessment(session: AsyncSession, assessment_id: str) -> Assessment | None:
    return await session.get(A, assessment_id)


@dataclass(frozen=True)
class ListFilters:
    level: int | None = None
    area_prefix: str | None = None
    difficulty: str | None = None
    five_type: str | None = None
    need: str | None = None
    unclaimed_policy: str | None = None
    reviewed: bool | None = None


async def list_current(session: AsyncSession, caller: Caller, filters: ListFilters, page: PageParams) -> list[CurrentAssessment]:
    """Weakest first (score, then household id), within the caller's jurisdiction."""
    stmt = select(C).where(caller.scope(C.area_code))
    if filters.level is not None:
        stmt = stmt.where(C.effective_level == filters.level)
    if filters.area_prefix:
        stmt = stmt.where(C.area_code.startswith(filters.area_prefix, autoescape=True))
    if filters.difficulty:
        stmt = stmt.where(C.difficulty == filters.difficulty)
    for column, code in ((C.five_types, filters.five_type), (C.needs, filters.need),
                         (C.unclaimed_policies, filters.unclaimed_policy)):
        if code:
            stmt = stmt.where(column.contains(f" {code} ", autoescape=True))
    if filters.reviewed is not None:
        stmt = stmt.where(C.review_id.is_not(None) if filters.reviewed else C.review_id.is_(None))
    if page.after:
        score, hid = float(page.after[0]), str(page.after[1])
        stmt = stmt.where(or_(C.score > score, and_(C.score == score, C.household_id > hid)))
    stmt = stmt.order_by(C.score, C.household_id).limit(page.limit + 1)
    return list((await session.execute(stmt)).scalars())


async def history(session: AsyncSession, household_id: str, page: PageParams) -> list[Assessment]:
    stmt = select(A).where(A.household_id == household_id)
    if page.after:
        stmt = stmt.where(A.number < int(page.after[0]))
    return list((await session.execute(stmt.order_by(A.number.desc()).limit(page.limit + 1))).scalars())


async def add_review(session: AsyncSession, review: AssessmentReview) -> None:
    session.add(review)
    await session.flush()


async def reviews(session: AsyncSession, household_id: str, limit: int = 20) -> list[AssessmentReview]:
    stmt = (select(AssessmentReview).where(AssessmentReview.household_id == household_id)
            .order_by(AssessmentReview.created_at.desc()).limit(limit))
    return list((await session.execute(stmt)).scalars())


async def review(session: AsyncSession, review_id: str) -> AssessmentReview | None:
    return await session.get(AssessmentReview, review_id)


async def snapshot_page(session: AsyncSession, after: str, limit: int) -> list[tuple[Assessment, CurrentAssessment, str | None]]:
    """The current assessments of open households, in household id order (for alerts' resync),
    with the household's member ages (JSON text, None if never sent)."""
    H = HouseholdView
    stmt = (
        select(A, C, H.member_ages).join(C, C.assessment_id == A.id)
        .outerjoin(H, H.household_id == C.household_id).where(C.household_id > after)
        .order_by(C.household_id).limit(limit)
    )
    return [(r[0], r[1], r[2]) for r in (await session.execute(stmt)).all()]


async def level_counts(session: AsyncSession) -> dict[int, int]:
    rows = await session.execute(select(C.effective_level, func.count()).group_by(C.effective_level))
    return {int(r[0]): int(r[1]) for r in rows}
