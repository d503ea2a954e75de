"""Every query of the engine's runs: what it reads to build a problem and how it writes the
answer back, in bulk (COPY on PostgreSQL, executemany on SQLite)."""

from __future__ import annotations

import json
from itertools import repeat
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, bindparam, cast, exists, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import jurisdiction_prefix
from servicekit.db import driver_of, one_of
from servicekit.ids import time_ordered_ids

from matching.matches.tables import CLOSED, LIVE, Match, MatchingRun
from matching.needs.tables import Need
from matching.offers.tables import Offer
from matching.organisations.tables import Organisation
from matching.sites.tables import Site
from matching.sql import in_parts, in_subquery, is_postgres

CHUNK = 10_000
MATCH_COLUMNS = ("id", "need_id", "offer_id", "organisation_id", "site_code", "status", "period_key", "distance_km",
                 "priority", "run_id", "reference", "proposed_at", "version")


@dataclass(slots=True)
class NeedColumns:
    """The needs a run looks at, as columns in the engine's order (oldest first); their JSON
    lists as stored text, decoded in bulk by the run."""
    ids: list[str]
    area_code: list[str]
    service_code: list[str]
    priority: list[int]
    household_type: list[str | None]
    need_types: list[str]
    member_ages: list[str]
    unmatched_reason: list[str | None]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(slots=True)
class OfferRow:
    id: str
    organisation_id: str
    site_code: str
    services: list[str]
    areas: list[str]
    capacity: int
    period: str
    min_age: int | None
    max_age: int | None
    need_types: list[str]
    household_types: list[str]
    lat: float
    lon: float


async def rows(session: AsyncSession, columns: tuple[Any, ...], stmt: Any, order: tuple[Any, ...]) -> list[list]:
    """Rows of ``stmt`` (a select of ``columns``, filtered and joined), in ``order``.

    On PostgreSQL as one JSON document parsed in one go: row by row, the JSON columns of 140,000
    needs cost seconds of decoding. SQLite: an ordinary select."""
    if is_postgres(session):
        doc = func.coalesce(func.json_agg(aggregate_order_by(func.json_build_array(*columns), *order)), text("'[]'"))
        raw = (await session.execute(stmt.with_only_columns(doc))).scalar_one()
        return json.loads(raw) if isinstance(raw, str) else raw
    return [list(r) for r in (await session.execute(stmt.order_by(*order))).all()]


OFFER_COLUMNS = (Offer.id, Offer.organisation_id, Offer.site_code, Offer.services, Offer.areas, Offer.capacity,
                 Offer.period, Offer.min_age, Offer.max_age, Offer.need_types, Offer.household_types, Site.latitude,
                 Site.longitude)


async def published_offers(session: AsyncSession) -> list[OfferRow]:
    """Published offers of approved partners at active sites, by id."""
    stmt = (
        select(*OFFER_COLUMNS)
        .join(Site, Site.code == Offer.site_code)
        .join(Organisation, Organisation.id == Offer.organisation_id)
        .where(Offer.status == "published", Site.active.is_(True), Organisation.status == "approved")
    )
    return [OfferRow(*row) for row in await rows(session, OFFER_COLUMNS, stmt, (Offer.id,))]


def live_match_exists() -> Any:
    return exists().where(Match.need_id == Need.id, Match.status.in_(LIVE))


NEED_COLUMNS = (Need.id, Need.area_code, Need.service_code, Need.priority, Need.household_type,
                cast(Need.need_types, Text), cast(Need.member_ages, Text), Need.unmatched_reason)


def in_reach(service: str, area: str) -> Any:
    """Needs of a service in an area, as an index range on (service_code, area_code): area codes
    are digits, so the prefix's range is the same in any collation."""
    prefix = jurisdiction_prefix(area)
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return (Need.service_code == service) & (Need.area_code >= prefix) & (Need.area_code < upper)


# Needs are stamped when created, committed a moment later: look back this far for late commits.
SLACK = timedelta(minutes=5)


def arrived_since(session: AsyncSession, since: datetime) -> Any:
    """Needs created since (with slack) that no run has looked at (a run leaves a reason or a
    proposal on every need it sees), or whose proposal or match was let go since."""
    let_go = select(Match.need_id).where(Match.closed_at > since)
    return or_((Need.created_at > since - SLACK) & Need.unmatched_reason.is_(None), in_subquery(session, Need.id, let_go))


async def candidate_needs(session: AsyncSession, *, full: bool, since: datetime | None = None,
                          also: list[OfferRow] | None = None) -> NeedColumns:
    """Open needs without a proposal (a full run: with or without), oldest first. With ``since``,
    only those that arrived or were let go since, and those of the services and areas of the
    offers in ``also`` (whose capacity moved)."""
    condition = Need.status == "open"
    if since is None:
        if not full:
            condition = condition & ~live_match_exists()
    else:
        # In reach of those offers, only the needs a run left unmatched, with a reason: the others
        # are matched, or arrived or were let go since and are found as such. A run writes a need's
        # reason and its proposal together, so a need with a reason has no live match to look for.
        reach = [in_reach(s, a) & Need.unmatched_reason.is_not(None)
                 for s, a in sorted({(s, a) for o in also or () for s in o.services for a in o.areas})]
        condition = condition & or_(arrived_since(session, since) & ~live_match_exists(), *reach)
    found = await columns_of(session, select(*NEED_COLUMNS).where(condition).order_by(Need.created_at, Need.id))
    return NeedColumns(*(found or [[] for _ in NEED_COLUMNS]))


async def columns_of(session: AsyncSession, stmt: Any) -> list[list]:
    """The columns of the rows of ``stmt`` (none: an empty list). On PostgreSQL straight from
    asyncpg, whose records are built in C: SQLAlchemy's row processing takes about a second for
    140,000 needs (the ORM's, several)."""
    if is_postgres(session):
        compiled = stmt.compile(dialect=session.bind.dialect, compile_kwargs={"render_postcompile": True})
        records = await (await driver_of(session)).fetch(compiled.string,
                                                        *(compiled.params[k] for k in compiled.positiontup))
    else:
        records = (await (await session.connection()).execute(stmt)).all()
    return [list(c) for c in zip(*records, strict=True)]


async def exclusions(session: AsyncSession) -> list[tuple[str, str]]:
    """(need, offer) pairs never to propose again: declined by the partner or revoked by an officer."""
    stmt = select(Match.need_id, Match.offer_id).where(Match.status.in_(CLOSED))
    return [(n, o) for n, o in (await session.execute(stmt)).all()]


async def proposals(session: AsyncSession) -> dict[str, tuple[str, str]]:
    stmt = select(Match.id, Match.need_id, Match.offer_id).where(Match.status == "proposed")
    return {need: (match, offer) for match, need, offer in (await session.execute(stmt)).all()}


def reference(match_id: str) -> str:
    """What a partner quotes to the relay hotline: the last 48 bits of the id (of a time-ordered
    id, 44 random bits and 4 of its place in the batch)."""
    return "M" + match_id[-12:].upper()


def proposal_rows(need_ids: list[str], priorities: list[int], offers: list[OfferRow], offer_index: list[int],
                  keys: dict[str, str], km: list[float], run_id: str, now: datetime) -> list[tuple]:
    """New proposals, in the order of MATCH_COLUMNS: need ``need_ids[k]`` to offer
    ``offers[offer_index[k]]`` at ``km[k]``. Column by column, then zipped into rows."""
    ids = time_ordered_ids(len(need_ids))
    chosen = [offers[j] for j in offer_index]
    return list(zip(ids, need_ids, [o.id for o in chosen], [o.organisation_id for o in chosen],
                    [o.site_code for o in chosen], repeat("proposed"), [keys[o.id] for o in chosen], km,
                    priorities, repeat(run_id), [reference(i) for i in ids], repeat(now), repeat(1)))


async def withdraw(session: AsyncSession, match_ids: list[str], now: datetime) -> None:
    for part in in_parts(session, match_ids):
        await session.execute(
            update(Match).where(one_of(session, Match.id, part), Match.status == "proposed")
            .values(status="withdrawn", closed_at=now, close_reason="rematched", version=Match.version + 1)
        )


async def settle_run(session: AsyncSession) -> None:
    """Settings for a run's transaction (PostgreSQL). No JIT: the planner's cost of the run's reads
    crosses its threshold, and compiling them takes longer than running them. No wait at commit
    for the write-ahead log to reach the disk: a crash in that moment loses the run as a whole --
    proposals, reasons and record -- and the next run, which looks at everything since the last
    recorded one, does its work again; any later commit that does wait (an accept, say) flushes
    the run's log with its own."""
    if is_postgres(session):
        await session.execute(text("SET LOCAL jit = off"))
        await session.execute(text("SET LOCAL synchronous_commit = off"))


async def insert_matches(session: AsyncSession, rows: list[tuple]) -> None:
    if not rows:
        return
    if is_postgres(session):
        await (await driver_of(session)).copy_records_to_table("matches", records=rows, columns=MATCH_COLUMNS)
        return
    dicts = [dict(zip(MATCH_COLUMNS, r, strict=True)) for r in rows]
    for i in range(0, len(dicts), CHUNK):
        await session.execute(insert(Match), dicts[i:i + CHUNK])


async def update_reasons(session: AsyncSession, ids: list[str], reasons: list[str | None], now: datetime) -> int:
    """Set each need's reason for being left unmatched (None when matched); the caller passes only
    changes. One statement per reason, so that PostgreSQL finds the rows by a bitmap of the primary
    key and visits the table's pages in order. No indexed column changes: HOT updates."""
    by_reason: dict[str | None, list[str]] = {}
    for need_id, reason in zip(ids, reasons, strict=True):
        by_reason.setdefault(reason, []).append(need_id)
    table = Need.__table__
    for reason, need_ids in sorted(by_reason.items(), key=lambda kv: kv[0] or ""):
        for part in in_parts(session, need_ids):
            await session.execute(update(table).where(one_of(session, table.c.id, part))
                                  .values(unmatched_reason=reason, updated_at=now))
    return len(ids)


async def record_run(session: AsyncSession, report: Any, triggered_by: str, started: datetime,
                     finished: datetime) -> None:
    session.add(MatchingRun(
        id=report.id, mode=report.mode, triggered_by=triggered_by[:128], started_at=started, finished_at=finished,
        needs_considered=report.needs_considered, offers_considered=report.offers_considered,
        proposed=report.proposed, kept=report.kept, withdrawn=report.withdrawn, unmatched=report.unmatched,
        objective=report.objective, solver_seconds=report.solver_seconds, total_seconds=report.total_seconds,
    ))
    await session.flush()


async def last_run_started(session: AsyncSession) -> datetime | None:
    stmt = select(MatchingRun.started_at).order_by(MatchingRun.started_at.desc()).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def offers_moved_since(session: AsyncSession, since: datetime) -> set[str]:
    """Offers whose capacity may have moved: changed, or a match of theirs let go of its slot."""
    changed = select(Offer.id).where(Offer.updated_at > since)
    freed = select(Match.offer_id).where(Match.closed_at > since)
    return set((await session.execute(changed.union(freed))).scalars())


async def work_waiting(session: AsyncSession, since: datetime) -> bool:
    """Whether a run could do anything: needs arrived or let go, or offers changed, since ``since``."""
    if await offers_moved_since(session, since):
        return True
    fresh = (select(Need.id).where(Need.status == "open", Need.unmatched_reason.is_(None), ~live_match_exists(),
                                   arrived_since(session, since)).limit(1))
    return (await session.execute(fresh)).first() is not None
