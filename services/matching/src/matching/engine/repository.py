"""Every query of the engine's runs: what it reads to build a problem and how it writes the
answer back, in bulk (COPY on PostgreSQL, executemany on SQLite)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import jurisdiction_prefix

from matching.matches.tables import CLOSED, LIVE, Match, MatchingRun
from matching.needs.tables import Need
from matching.offers.tables import Offer
from matching.organisations.tables import Organisation
from matching.sites.tables import Site
from matching.sql import is_postgres

CHUNK = 10_000
MATCH_COLUMNS = ("id", "need_id", "offer_id", "organisation_id", "site_code", "status", "period_key", "distance_km",
                 "priority", "run_id", "reference", "proposed_at", "version")


@dataclass(slots=True)
class NeedRow:
    id: str
    area_code: str
    service_code: str
    priority: int
    household_type: str | None
    need_types: list[str]
    member_ages: list[int]
    unmatched_reason: str | None


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


NEED_COLUMNS = (Need.id, Need.area_code, Need.service_code, Need.priority, Need.household_type, Need.need_types,
                Need.member_ages, Need.unmatched_reason)


def in_reach(service: str, area: str) -> Any:
    """Needs of a service in an area, as an index range on (service_code, area_code): area codes
    are digits, so the prefix's range is the same in any collation."""
    prefix = jurisdiction_prefix(area)
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return (Need.service_code == service) & (Need.area_code >= prefix) & (Need.area_code < upper)


# Needs are stamped when created, committed a moment later: look back this far for late commits.
SLACK = timedelta(minutes=5)


def arrived_since(since: datetime) -> Any:
    """Needs created since (with slack) that no run has looked at (a run leaves a reason or a
    proposal on every need it sees), or whose proposal or match was let go since."""
    let_go = select(Match.need_id).where(Match.closed_at > since)
    return or_((Need.created_at > since - SLACK) & Need.unmatched_reason.is_(None), Need.id.in_(let_go))


async def candidate_needs(session: AsyncSession, *, full: bool, since: datetime | None = None,
                          also: list[OfferRow] | None = None) -> list[NeedRow]:
    """Open needs without a proposal (a full run: with or without), oldest first. With ``since``,
    only those that arrived or were let go since, and those of the services and areas of the
    offers in ``also`` (whose capacity moved)."""
    condition = Need.status == "open"
    if not full:
        condition = condition & ~live_match_exists()
    if since is not None:
        reach = [in_reach(s, a) for s, a in sorted({(s, a) for o in also or () for s in o.services for a in o.areas})]
        condition = condition & or_(arrived_since(since), *reach)
    stmt = select(*NEED_COLUMNS).where(condition)
    return [NeedRow(*row) for row in await rows(session, NEED_COLUMNS, stmt, (Need.created_at, Need.id))]


async def exclusions(session: AsyncSession) -> list[tuple[str, str]]:
    """(need, offer) pairs never to propose again: declined by the partner or revoked by an officer."""
    stmt = select(Match.need_id, Match.offer_id).where(Match.status.in_(CLOSED))
    return [(n, o) for n, o in (await session.execute(stmt)).all()]


async def proposals(session: AsyncSession) -> dict[str, tuple[str, str]]:
    stmt = select(Match.id, Match.need_id, Match.offer_id).where(Match.status == "proposed")
    return {need: (match, offer) for match, need, offer in (await session.execute(stmt)).all()}


def reference(match_id: str) -> str:
    """What a partner quotes to the relay hotline: 48 of the id's random bits."""
    return "M" + match_id[:8].upper() + match_id[9:13].upper()


def match_row(need: NeedRow, offer: OfferRow, key: str, km: float, run_id: str, now: datetime) -> tuple:
    """A proposal, in the order of MATCH_COLUMNS."""
    match_id = str(uuid.uuid4())
    return (match_id, need.id, offer.id, offer.organisation_id, offer.site_code, "proposed", key, round(km, 3),
            need.priority, run_id, reference(match_id), now, 1)


async def withdraw(session: AsyncSession, match_ids: list[str], now: datetime) -> None:
    for i in range(0, len(match_ids), CHUNK):
        await session.execute(
            update(Match).where(Match.id.in_(match_ids[i:i + CHUNK]), Match.status == "proposed")
            .values(status="withdrawn", closed_at=now, close_reason="rematched", version=Match.version + 1)
        )


async def _asyncpg(session: AsyncSession) -> Any:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def insert_matches(session: AsyncSession, rows: list[tuple]) -> None:
    if not rows:
        return
    if is_postgres(session):
        await (await _asyncpg(session)).copy_records_to_table("matches", records=rows, columns=MATCH_COLUMNS)
        return
    dicts = [dict(zip(MATCH_COLUMNS, r, strict=True)) for r in rows]
    for i in range(0, len(dicts), CHUNK):
        await session.execute(insert(Match), dicts[i:i + CHUNK])


async def update_reasons(session: AsyncSession, needs: list[NeedRow], reasons: list[str | None],
                         now: datetime) -> int:
    """Each need's reason for being left unmatched (None when matched); only changes are written.
    No indexed column changes, so on PostgreSQL these are HOT updates."""
    ids, why = [], []
    for need, reason in zip(needs, reasons, strict=True):
        if need.unmatched_reason != reason:
            ids.append(need.id)
            why.append(reason)
    if not ids:
        return 0
    if is_postgres(session):
        await session.execute(
            text("UPDATE needs SET unmatched_reason = v.reason, updated_at = :now "
                 "FROM unnest(CAST(:ids AS varchar[]), CAST(:reasons AS varchar[])) AS v(id, reason) "
                 "WHERE needs.id = v.id"),
            {"ids": ids, "reasons": why, "now": now},
        )
    else:
        table = Need.__table__  # Core, not the ORM's bulk update: executemany with one statement
        stmt = (update(table).where(table.c.id == bindparam("b_id"))
                .values(unmatched_reason=bindparam("b_reason"), updated_at=now))
        params = [{"b_id": i, "b_reason": r} for i, r in zip(ids, why, strict=True)]
        for k in range(0, len(params), CHUNK):
            await session.execute(stmt, params[k:k + CHUNK])
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
                                   arrived_since(since)).limit(1))
    return (await session.execute(fresh)).first() is not None
