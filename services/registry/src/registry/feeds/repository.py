"""Every query of the department feeds: set-based, a chunk of records at a time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import JSON, Text, bindparam, cast, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import after_commit, dialect_insert, driver_of, one_of
from servicekit.tables import JSONType, utcnow
from servicekit.telemetry import current_traceparent

from registry.bulk import Writer
from registry.facts import repository as facts_repo
from registry.feeds.tables import FeedBatch, FeedRejection
from registry.queries import is_postgres, lockable, newest_first
from registry.households.tables import Household
from registry.leads.tables import Lead
from registry.members.tables import Member

M = Member.__table__
H = Household.__table__


# A record's person, found by the 64-bit key of the blind index (registry_0008) and then the
# whole blind index. The subquery is a fence (OFFSET 0): the full comparison stays outside it, so
# the probe is always the bigint index, never the text one, whatever the statistics say.
PERSON = (
    "LEFT JOIN LATERAL (SELECT m.id, m.household_id, m.resident_bidx, m.facts FROM members m "
    "WHERE ('x' || left(m.resident_bidx, 16))::bit(64)::bigint = ('x' || left(v.bidx, 16))::bit(64)::bigint "
    "OFFSET 0) AS m ON m.resident_bidx = v.bidx"
)
# The household is read only for the records that write a household fact (a join would visit
# it for every record).
ENTRY = (
    "CASE WHEN v.hh = 't' THEN (SELECT h.facts -> v.key FROM households h WHERE h.id = m.household_id) "
    "ELSE m.facts -> v.key END"
)
LISTS = "unnest(string_to_array($1, ','), string_to_array($2, ','), string_to_array($3, NULL)"
CURRENT_ENTRIES = (
    f"SELECT v.n, m.id, m.household_id, CAST({ENTRY} AS text), CAST(m.facts -> 'deceased_on' AS text) "
    f"FROM {LISTS}) WITH ORDINALITY AS v(bidx, key, hh, n) {PERSON}"
)
# The same, but a record settled here -- its value is the one held, and no other record of the
# chunk touches that fact of that person or household, nor is the person's death recorded or
# being recorded -- gives no row: it changes nothing, and most records of a batch are such.
UNSETTLED_ENTRIES = (
    f"WITH r AS MATERIALIZED (SELECT v.n, v.key, v.hh, v.val, m.id, m.household_id, {ENTRY} AS entry, "
    f"m.facts -> 'deceased_on' AS died FROM {LISTS}, string_to_array($4, chr(31), '')) "
    f"WITH ORDINALITY AS v(bidx, key, hh, val, n) {PERSON}) "
    "SELECT n, id, household_id, CAST(entry AS text), CAST(died AS text) FROM r "
    "WHERE id IS NULL OR val IS NULL OR died IS NOT NULL OR NOT COALESCE(entry -> 'v' = CAST(val AS jsonb), false) "
    "OR (CASE WHEN hh = 't' THEN household_id ELSE id END, key) IN "
    "(SELECT CASE WHEN hh = 't' THEN household_id ELSE id END, key FROM r GROUP BY 1, 2 HAVING count(*) > 1) "
    "OR (hh = 'f' AND id IN (SELECT id FROM r WHERE key = 'deceased_on'))"
)
SEPARATOR = "\x1f"  # between values' JSON texts: JSON never holds a raw control character


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def current_entries(session: AsyncSession, indexes: list[str], keys: list[str],
                          of_household: list[bool], values: list[str | None] | None = None) -> list[Any]:
    """For record n (the n-th of these lists, from 1): its person's member id, household id, the
    current entry of the fact the record writes (the member's, or the household's) and the
    member's ``deceased_on`` entry, both as JSON text; a person not in the database gives a row
    of None but for n.

    Only the one fact each record touches travels, not the whole fact document. With ``values``
    (each record's value as JSON, None where it is not one value to compare), PostgreSQL leaves
    out the records it settles as unchanged (see UNSETTLED_ENTRIES): no row, so for ~90% of a
    batch nothing travels back and nothing is decoded. SQLite settles nothing here.
    """
    if not indexes:
        return []
    if is_postgres(session):
        # Straight to the driver: a chunk gives thousands of rows, and the ORM's row
        # processing cost more than the query. The lists travel as texts split by the server:
        # the driver encodes a text array element by element, which cost more still.
        driver = await driver_of(session)
        lists = (",".join(indexes), ",".join(keys), "".join("t" if h else "f" for h in of_household))
        if values is None:
            return await driver.fetch(CURRENT_ENTRIES, *lists)
        return await driver.fetch(UNSETTLED_ENTRIES, *lists, SEPARATOR.join(v or "" for v in values))
    # SQLite: whole documents, picked apart here (slower, same answer).
    people = {r.resident_bidx: r for r in await session.execute(
        select(M.c.resident_bidx, M.c.id, M.c.household_id, M.c.facts).where(M.c.resident_bidx.in_(set(indexes))))}
    hids = {p.household_id for p in people.values()}
    h_facts = {r.id: r.facts for r in await session.execute(select(H.c.id, H.c.facts).where(H.c.id.in_(hids)))}
    out = []
    for n, (bidx, key, hh) in enumerate(zip(indexes, keys, of_household, strict=True), start=1):
        p = people.get(bidx)
        if p is None:
            out.append((n, None, None, None, None))
            continue
        entry = (h_facts[p.household_id] if hh else p.facts).get(key)
        died = p.facts.get("deceased_on")
        out.append((n, p.id, p.household_id, None if entry is None else dumps(entry),
                    None if died is None else dumps(died)))
    return out


async def lock_members(session: AsyncSession, member_ids: list[str]) -> dict[str, str]:
    """Lock these members (in id order, as every writer does) and say where each lives now."""
    stmt = select(M.c.id, M.c.household_id).where(one_of(session, M.c.id, sorted(member_ids))).order_by(M.c.id)
    return {r.id: r.household_id for r in await session.execute(lockable(session, stmt, True))}


class HouseholdMember(NamedTuple):
    id: str
    household_id: str
    resident_bidx: str
    birth_date: date
    sex: str
    relation: str
    facts: str  # JSON text


# On PostgreSQL straight to the driver: a chunk reads a thousand members and more, and the ORM's
# row processing cost 4.6-8.8 us a row against 2.9-4.1 (38,117 rows of the 0.25 city). Only this
# read, made after the chunk's locks: the dialect begins its transaction on its own first
# statement, so a lock taken through the driver before that would not hold.
MEMBERS_OF_HOUSEHOLDS = (
    f"SELECT {', '.join(f if f != 'facts' else 'facts::text' for f in HouseholdMember._fields)} FROM members "
    "WHERE household_id = ANY($1::varchar[])"
)


async def lock_households(session: AsyncSession, household_ids: list[str]) -> dict[str, Any]:
    """Lock these households (in id order); their facts come as JSON text, for a fast decoder.
    ``closed_on`` says whether one was closed since the chunk's lookup (its members released)."""
    stmt = (
        select(H.c.id, H.c.area_code, H.c.register_status, H.c.off_register_source, H.c.channel, H.c.status_since,
               H.c.rural_hukou, cast(H.c.facts, Text).label("facts"), H.c.version, H.c.label_masked, H.c.synthetic,
               H.c.closed_on)
        .where(one_of(session, H.c.id, sorted(household_ids))).order_by(H.c.id)
    )
    return {r.id: r for r in await session.execute(lockable(session, stmt, True))}


async def members_of_households(session: AsyncSession, household_ids: list[str]) -> list[HouseholdMember]:
    """Every member of these households with what the scoring view needs (facts as JSON text), and
    their blind index."""
    if is_postgres(session):
        return list(map(HouseholdMember._make, await (await driver_of(session)).fetch(MEMBERS_OF_HOUSEHOLDS,
                                                                                   household_ids)))
    stmt = select(M.c.id, M.c.household_id, M.c.resident_bidx, M.c.birth_date, M.c.sex, M.c.relation,
                  cast(M.c.facts, Text).label("facts")).where(one_of(session, M.c.household_id, household_ids))
    return [HouseholdMember._make(r) for r in await session.execute(stmt)]


async def update_members(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """New facts for members (``_facts``, of which ``_patch`` holds the entries that changed):
    one statement on PostgreSQL (UPDATE ... FROM unnest), not one per row, that merges the
    changed entries into the stored document rather than sending and parsing it whole."""
    if not rows:
        return
    if is_postgres(session):
        await session.execute(text(
            "UPDATE members AS m SET facts = m.facts || v.patch::jsonb, version = m.version + 1, updated_at = :at "
            "FROM unnest(CAST(:ids AS varchar[]), CAST(:patches AS text[])) AS v(id, patch) WHERE m.id = v.id"
        ), {"ids": [r["_id"] for r in rows], "patches": [dumps(r["_patch"]) for r in rows], "at": rows[0]["_at"]})
        return
    stmt = (update(M).where(M.c.id == bindparam("_id"))
            .values(facts=bindparam("_facts", type_=JSONType), version=M.c.version + 1, updated_at=bindparam("_at")))
    await session.execute(stmt, [{k: v for k, v in r.items() if k != "_patch"} for r in rows])


async def update_households(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """New views and versions for households, and new facts where ``_facts`` is not None (a
    change of a member's fact leaves the household's document as it is; ``_patch`` holds the
    entries that changed, merged into the stored document on PostgreSQL); set-based there."""
    if not rows:
        return
    if is_postgres(session):
        await session.execute(text(
            "UPDATE households AS h SET facts = COALESCE(h.facts || v.patch::jsonb, h.facts), view = v.view::json, "
            "missing = v.missing::jsonb, version = v.version, updated_at = :at "
            "FROM unnest(CAST(:ids AS varchar[]), CAST(:patches AS text[]), CAST(:views AS text[]), "
            "CAST(:missing AS text[]), CAST(:versions AS int[])) AS v(id, patch, view, missing, version) "
            "WHERE h.id = v.id"
        ), {"ids": [r["_id"] for r in rows], "patches": [None if r["_patch"] is None else dumps(r["_patch"]) for r in rows],
            "views": [r["_view_json"] for r in rows], "missing": [r["_missing_json"] for r in rows],
            "versions": [r["_version"] for r in rows], "at": rows[0]["_at"]})
        return
    rows = [{k: v for k, v in r.items() if not k.endswith("_json") and k != "_patch"} for r in rows]
    stmt = (update(H).where(H.c.id == bindparam("_id"))
            .values(facts=func.coalesce(bindparam("_facts", type_=JSON(none_as_null=True)), H.c.facts),
                    view=bindparam("_view", type_=JSONType),
                    missing=bindparam("_missing", type_=JSONType), version=bindparam("_version"),
                    updated_at=bindparam("_at")))
    await session.execute(stmt, rows)


async def insert_events(session: AsyncSession, events: list[tuple[str, str, str]],
                        notify: Callable[[int], Any] | None) -> None:
    """household.changed events (event id, household id, payload JSON) into the outbox, numbered
    by the kit's sequencer and copied in one go (COPY on PostgreSQL), carrying the trace; once
    committed, ``notify`` hears the feed's new head (it wakes the feed's long-poll waiters)."""
    if not events:
        return
    last = await Writer(session, postgres=is_postgres(session)).events(events, utcnow(), current_traceparent())
    if notify is not None:
        after_commit(session, lambda: notify(last))


async def insert_history(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """History rows of one chunk (one source, one arrival time): one statement on PostgreSQL."""
    if not rows:
        return
    if not is_postgres(session):
        await facts_repo.insert_history(session, rows)
        return
    await session.execute(text(
        "INSERT INTO fact_history (household_id, member_id, fact, value, source, record_id, effective_date, received_at) "
        "SELECT h, m, f, v::jsonb, :source, r, e, :at FROM unnest(CAST(:h AS varchar[]), CAST(:m AS varchar[]), "
        "CAST(:f AS varchar[]), CAST(:v AS text[]), CAST(:r AS varchar[]), CAST(:e AS date[])) AS t(h, m, f, v, r, e)"
    ), {"h": [r["household_id"] for r in rows], "m": [r["member_id"] for r in rows], "f": [r["fact"] for r in rows],
        "v": [dumps(r["value"]) for r in rows], "r": [r["record_id"] for r in rows],
        "e": [r["effective_date"] for r in rows], "source": rows[0]["source"], "at": rows[0]["received_at"]})


async def insert_leads(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Leads, once per (department, record id): a re-sent record does not queue a second lead."""
    if rows:
        await session.execute(dialect_insert(session)(Lead).on_conflict_do_nothing(index_elements=["department", "record_id"]), rows)


async def add_batch(session: AsyncSession, batch: FeedBatch) -> None:
    session.add(batch)
    await session.flush()


async def count_into_batch(session: AsyncSession, batch_id: str, **counts: int) -> None:
    values = {name: getattr(FeedBatch, name) + n for name, n in counts.items() if n}
    if values:
        await session.execute(update(FeedBatch).where(FeedBatch.id == batch_id).values(**values))


async def finish_batch(session: AsyncSession, batch_id: str, status: str, at: datetime) -> None:
    await session.execute(update(FeedBatch).where(FeedBatch.id == batch_id).values(status=status, finished_at=at))


async def insert_rejections(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(FeedRejection.__table__.insert(), rows)


async def get_batch(session: AsyncSession, department: str | None, batch_id: str) -> FeedBatch | None:
    """The batch, if it is of ``department`` (None: of any)."""
    stmt = select(FeedBatch).where(FeedBatch.id == batch_id)
    if department is not None:
        stmt = stmt.where(FeedBatch.department == department)
    return (await session.execute(stmt)).scalar_one_or_none()


async def batches(session: AsyncSession, department: str | None, limit: int, after: list[Any] | None,
                  fmt: str | None = None) -> list[FeedBatch]:
    """A page of the batches of ``department`` (None: of every department), newest first; only
    those sent in format ``fmt`` when it is given."""
    stmt = select(FeedBatch)
    if department is not None:
        stmt = stmt.where(FeedBatch.department == department)
    if fmt is not None:
        stmt = stmt.where(FeedBatch.format == fmt)
    return list((await session.execute(newest_first(stmt, FeedBatch.received_at, FeedBatch.id, after, limit))).scalars())


async def rejections(session: AsyncSession, batch_id: str, limit: int, after: list[Any] | None) -> list[FeedRejection]:
    stmt = select(FeedRejection).where(FeedRejection.batch_id == batch_id)
    if after:
        stmt = stmt.where(FeedRejection.id > int(after[0]))
    return list((await session.execute(stmt.order_by(FeedRejection.id).limit(limit + 1))).scalars())


async def health(session: AsyncSession, since: datetime) -> dict[str, dict[str, Any]]:
    """Per department: last delivery ever, and volume and rejections since ``since``."""
    last = dict((await session.execute(
        select(FeedBatch.department, func.max(FeedBatch.received_at)).group_by(FeedBatch.department)
    )).all())
    recent = (await session.execute(
        select(FeedBatch.department, func.count(), func.coalesce(func.sum(FeedBatch.lines), 0),
               func.coalesce(func.sum(FeedBatch.rejected), 0), func.coalesce(func.sum(FeedBatch.leads), 0))
        .where(FeedBatch.received_at >= since).group_by(FeedBatch.department)
    )).all()
    out: dict[str, dict[str, Any]] = {d: {"last_delivery": at, "deliveries": 0, "records": 0, "rejected": 0, "leads": 0}
                                      for d, at in last.items()}
    for department, deliveries, records, rejected, leads in recent:
        out[department].update(deliveries=deliveries, records=int(records), rejected=int(rejected), leads=int(leads))
    return out


async def placed(session: AsyncSession, indexes: list[str]) -> dict[str, Any]:
    """Where these people (by blind index) are members of an open household: member id,
    household, relation to its head, and its area. Births only: a few rows, read one record at a time."""
    stmt = (select(M.c.resident_bidx, M.c.id, M.c.household_id, M.c.relation, H.c.area_code)
            .join(H, H.c.id == M.c.household_id).where(M.c.resident_bidx.in_(indexes)))
    return {r.resident_bidx: r for r in await session.execute(stmt)}


async def add_member(session: AsyncSession, member: Member) -> bool:
    """Insert a newborn; False when the person was placed in a household at this very moment by
    another writer (the unique blind index), and the chunk goes on without them."""
    try:
        async with session.begin_nested():
            session.add(member)
    except IntegrityError:
        return False
    return True
