"""Every query on households, their status history and surveys."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.audit import RECORD_COLUMNS
from servicekit.auth import Caller
from servicekit.db import Database, one_of
from servicekit.tables import AuditRecord, FeedSequence

from registry.facts.view import MemberFacts
from registry.households.tables import Household, StatusChange, Survey
from registry.members.tables import Member
from registry.queries import lockable, newest_first


async def get_in_scope(session: AsyncSession, caller: Caller, household_id: str, *, for_update: bool = False) -> Household | None:
    stmt = select(Household).where(Household.id == household_id, caller.scope(Household.area_code))
    return (await session.execute(lockable(session, stmt, for_update))).scalar_one_or_none()


_H = Household.__table__.c
_M = Member.__table__.c
# What the masked read of a household shows, as plain rows (no ORM objects, no sealed values).
READ_HOUSEHOLD = (
    _H.id, _H.area_code, _H.register_status, _H.off_register_source, _H.status_since, _H.channel, _H.rural_hukou,
    _H.address_enc.is_not(None).label("has_address"), _H.label_masked, _H.facts, _H.view, _H.missing, _H.version,
    _H.synthetic, _H.closed_on, _H.closed_reason, _H.created_at, _H.updated_at,
)
READ_MEMBER = (
    _M.id, _M.household_id, _M.resident_masked, _M.name_masked, _M.phone_masked, _M.sex, _M.birth_date, _M.relation,
    _M.facts, _M.version, _M.synthetic, _M.updated_at,
)


async def read_in_scope(session: AsyncSession, caller: Caller, household_id: str) -> tuple[Any, list[Any]] | None:
    """A household within the caller's jurisdiction and its members, as the masked read shows
    them (Core rows: the hottest call of the product pays for no ORM loading); None if out of scope."""
    row = (await session.execute(
        select(*READ_HOUSEHOLD).where(_H.id == household_id, caller.scope(_H.area_code)))).first()
    if row is None:
        return None
    members = await session.execute(
        select(*READ_MEMBER).where(_M.household_id == household_id).order_by(_M.created_at, _M.id))
    return row, list(members)


# The same read on PostgreSQL, for the reads of the moment at once, with their audit records: one
# statement and one commit for the group (servicekit.groupcommit.GroupStatement), on a driver
# connection. Each read is an element of the JSON parameter -- the household's id, the prefix of
# the caller's jurisdiction and the audit record (``servicekit.audit.entry``) -- and gets back the
# household if it is in that jurisdiction, with its members as an array of rows; a read found has
# its record written, with the household's area, in the same transaction (none for a read out of
# scope). JSON columns come back as text: the facts are decoded here with orjson (the document
# presents them), the scoring view and the missing list go into the document as they are
# (orjson.Fragment). A statement per read with the records in a group insert of their own had
# cost the database ~2x the CPU a read (75 against 170 us, 32 reads at a time, no HTTP) and the
# registry ~50 us more.
_AUDIT_RECORD = ", ".join("h.area_code" if c == "area_code" else f"a.{c}" for c in RECORD_COLUMNS)
_READ_MASKED_AUDITED = f"""
WITH asked AS (
    SELECT e.ordinal, e.read->>'id' AS id, e.read->>'prefix' AS prefix, e.read->'audit' AS audit
    FROM json_array_elements($1::json) WITH ORDINALITY AS e(read, ordinal)
), h AS (
    SELECT asked.ordinal, asked.audit, households.id, area_code, register_status, off_register_source, status_since,
           channel, rural_hukou, address_enc IS NOT NULL AS has_address, label_masked, facts::text, view::text,
           missing::text, version, synthetic, closed_on, closed_reason, created_at, updated_at
    FROM asked JOIN households ON households.id = asked.id AND starts_with(households.area_code, asked.prefix)
), recorded AS (
    INSERT INTO {AuditRecord.__tablename__} ({", ".join(RECORD_COLUMNS)})
    SELECT {_AUDIT_RECORD} FROM h, json_populate_record(NULL::{AuditRecord.__tablename__}, h.audit) a
)
SELECT h.ordinal, h.id, h.area_code, h.register_status, h.off_register_source, h.status_since, h.channel,
       h.rural_hukou, h.has_address, h.label_masked, h.facts, h.view, h.missing, h.version, h.synthetic, h.closed_on,
       h.closed_reason, h.created_at, h.updated_at, ARRAY(
    SELECT ROW(m.id, m.household_id, m.resident_masked, m.name_masked, m.phone_masked, m.sex, m.birth_date, m.relation,
               m.facts::text, m.version, m.synthetic, m.updated_at)
    FROM members m WHERE m.household_id = h.id ORDER BY m.created_at, m.id) AS members
FROM h
"""
# Statements of reads at once. One: the reads that arrive meanwhile wait and go together in the
# next (the bench, 32 connections through the gateway, in turn: 1 gave 3,550-3,830 reads/s and a
# p99 of 13.8-16.4 ms, 2 gave 3,100-3,250 and 17.0-20.0, 3 gave 2,980-3,290 and 16.7-19.7).
READ_GROUPS_AT_ONCE = 1
# Rows with the names of READ_HOUSEHOLD and READ_MEMBER, so that one presenter serves both paths.
HouseholdRead = namedtuple("HouseholdRead", [c.key for c in READ_HOUSEHOLD])  # type: ignore[misc]
MemberRead = namedtuple("MemberRead", [c.key for c in READ_MEMBER])  # type: ignore[misc]
_H_FACTS = HouseholdRead._fields.index("facts")
_H_AS_IS = tuple(HouseholdRead._fields.index(k) for k in ("view", "missing"))
_M_FACTS = MemberRead._fields.index("facts")


async def read_masked_audited(db: Database, caller: Caller, household_id: str,
                              record: dict[str, Any]) -> tuple[Any, list[Any]] | None:
    """``read_in_scope`` and, if found, its audit ``record`` (``servicekit.audit.entry``; its
    area is the household's), on PostgreSQL: returns once the record is committed, with the
    reads of the moment in one statement (raises ``GroupWriteFailed`` if it was not)."""
    prefix = caller.visible_prefix
    if prefix is None:
        return None
    group = db.group_statement(_READ_MASKED_AUDITED, name="household reads", concurrency=READ_GROUPS_AT_ONCE)
    row = await group.one({"id": household_id, "prefix": prefix, "audit": record})
    if row is None:
        return None
    household = list(row.values())
    members = household.pop()
    del household[0]  # the ordinal
    household[_H_FACTS] = orjson.loads(household[_H_FACTS])
    for i in _H_AS_IS:
        if household[i] is not None:
            household[i] = orjson.Fragment(household[i])
    rows = []
    for m in members:
        m = list(m)
        m[_M_FACTS] = orjson.loads(m[_M_FACTS])
        rows.append(MemberRead._make(m))
    return HouseholdRead._make(household), rows


async def get(session: AsyncSession, household_id: str, *, for_update: bool = False) -> Household | None:
    stmt = select(Household).where(Household.id == household_id)
    return (await session.execute(lockable(session, stmt, for_update))).scalar_one_or_none()


async def of_member(session: AsyncSession, resident_bidx: str, *, or_closed: bool = False) -> Household | None:
    """The person's open household; with ``or_closed``, failing that the one closed last."""
    stmt = select(Household).join(Member, Member.household_id == Household.id).where(Member.resident_bidx == resident_bidx)
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is None and or_closed:
        stmt = (select(Household).join(Member, Member.household_id == Household.id)
                .where(Member.released_bidx == resident_bidx).order_by(Household.closed_on.desc(), Household.id).limit(1))
        found = (await session.execute(stmt)).scalar_one_or_none()
    return found


async def search(
    session: AsyncSession, caller: Caller, *, limit: int, after: list[Any] | None, area_prefix: str | None,
    register_status: str | None, off_register_source: str | None, channel: str | None,
) -> list[Household]:
    """Newest first by (updated_at, id), within the caller's jurisdiction."""
    stmt = select(Household).where(caller.scope(Household.area_code))
    if area_prefix:
        stmt = stmt.where(Household.area_code.startswith(area_prefix, autoescape=True))
    if register_status:
        stmt = stmt.where(Household.register_status == register_status)
    if off_register_source:
        stmt = stmt.where(Household.off_register_source == off_register_source)
    if channel:
        stmt = stmt.where(Household.channel == channel)
    return list((await session.execute(newest_first(stmt, Household.updated_at, Household.id, after, limit))).scalars())


async def members_of(session: AsyncSession, household_id: str) -> list[Member]:
    stmt = select(Member).where(Member.household_id == household_id).order_by(Member.created_at, Member.id)
    return list((await session.execute(stmt)).scalars())


async def member_facts_of(session: AsyncSession, household_ids: list[str]) -> dict[str, list[MemberFacts]]:
    """What the scoring view needs of every member of these households, by household."""
    out: dict[str, list[MemberFacts]] = {}
    for start in range(0, len(household_ids), 5000):
        rows = await session.execute(
            select(Member.household_id, Member.birth_date, Member.sex, Member.relation, Member.facts)
            .where(one_of(session, Member.household_id, household_ids[start:start + 5000]))
        )
        for hid, birth, sex, relation, facts in rows:
            out.setdefault(hid, []).append(MemberFacts(birth, sex, relation, facts))
    return out


async def status_history(session: AsyncSession, household_id: str, limit: int, after: list[Any] | None) -> list[StatusChange]:
    stmt = select(StatusChange).where(StatusChange.household_id == household_id)
    return list((await session.execute(newest_first(stmt, StatusChange.at, StatusChange.id, after, limit))).scalars())


async def surveys_of(session: AsyncSession, household_id: str, limit: int, after: list[Any] | None) -> list[Survey]:
    stmt = select(Survey).where(Survey.household_id == household_id)
    return list((await session.execute(newest_first(stmt, Survey.created_at, Survey.id, after, limit))).scalars())


async def count_members(session: AsyncSession, household_id: str) -> int:
    return (await session.execute(select(func.count()).select_from(Member).where(Member.household_id == household_id))).scalar_one()


async def feed_head(session: AsyncSession) -> int:
    return (await session.execute(select(FeedSequence.last_position).where(FeedSequence.id == 1))).scalar_one()


async def snapshot_page(session: AsyncSession, after: str, limit: int) -> list[Any]:
    stmt = (
        select(Household.id, Household.version, Household.area_code, Household.label_masked, Household.synthetic,
               Household.view, Household.missing, Household.closed_on)
        .where(Household.id > after, Household.view.is_not(None)).order_by(Household.id).limit(limit + 1)
    )
    return list((await session.execute(stmt)).all())
