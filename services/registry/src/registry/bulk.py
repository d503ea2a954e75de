"""Bulk loading of households (the synthetic city, or an initial import): sealed, indexed, with
their scoring views and one household.changed each, in one transaction.

PostgreSQL takes the rows by COPY (asyncpg ``copy_records_to_table``), never row by row; SQLite
by batched inserts. The events are numbered by the same single sequencer row the kit uses (its
lock is held to the commit), so consumers see them in commit order like any other events.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.crypto import mask_name, mask_phone
from servicekit.db import Database, driver_of, unit_of_work
from servicekit.resident_id import mask
from servicekit.tables import FeedSequence, OutboxEvent, utcnow

from registry.facts.view import HouseholdFacts, MemberFacts
from registry.households.changes import EVENT_TYPE, event_data, member_ages
from registry.households.present import label
from registry.households.tables import Household, StatusChange
from registry.members.tables import Member
from registry.profile import CityProfile
from registry.settings import RegistrySettings
from registry.synthetic import SyntheticHousehold
from registry.vault import Vault

H_COLUMNS = ("id", "area_code", "register_status", "off_register_source", "status_since", "channel", "rural_hukou",
             "address_enc", "location_enc", "label_masked", "facts", "view", "missing", "version", "synthetic",
             "created_by", "created_at", "updated_at")
M_COLUMNS = ("id", "household_id", "resident_bidx", "resident_enc", "resident_masked", "name_enc", "name_masked",
             "phone_enc", "phone_masked", "sex", "birth_date", "relation", "facts", "version", "synthetic",
             "created_at", "updated_at")
S_COLUMNS = ("id", "household_id", "from_status", "from_source", "to_status", "to_source", "effective_date", "reason",
             "actor", "role", "at")
O_COLUMNS = ("position", "event_id", "type", "subject", "payload", "traceparent", "created_at")
JSON_COLUMNS = frozenset({"facts", "view", "missing", "payload"})
_NO_VIEW = ',"view":null,"missing":null}'


def with_view(encoded: str, view_json: str, missing_json: str) -> str:
    """An event's JSON, encoded with view and missing null, with the already encoded view and
    missing put in their place (the household row holds the same texts)."""
    assert encoded.endswith(_NO_VIEW), "event_data must end with view and missing"
    return f'{encoded[:-len(_NO_VIEW)]},"view":{view_json},"missing":{missing_json}}}'


@dataclass
class SealedBatch:
    households: list[tuple[Any, ...]] = field(default_factory=list)
    members: list[tuple[Any, ...]] = field(default_factory=list)
    statuses: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # event id, subject, payload JSON


@dataclass
class LoadReport:
    households: int = 0
    members: int = 0
    skipped: int = 0
    events: int = 0
    seal_seconds: float = 0.0
    write_seconds: float = 0.0  # COPY or inserts, events included
    events_seconds: float = 0.0  # of which the outbox (sealing their payloads is in seal_seconds)


class Sealer:
    """Turns plain households into rows ready for the tables: sealed, indexed, with views."""

    def __init__(self, profile: CityProfile, vault: Vault, today: date, now: datetime, actor: str = "synthetic") -> None:
        self.profile, self.vault, self.today, self.now, self.actor = profile, vault, today, now, actor

    def seal(self, households: Iterable[SyntheticHousehold], *, events: bool, indexes: dict[str, str]) -> SealedBatch:
        """``indexes``: blind index by member id, computed once by the caller."""
        out = SealedBatch()
        seal, now = self.vault.seal, self.now
        encoder = json.JSONEncoder(separators=(",", ":"))
        dumps = encoder.encode
        for h in households:
            people = [MemberFacts(m.birth_date, m.sex, m.relation, m.facts) for m in h.members]
            view, missing = self.profile.view(HouseholdFacts(
                h.area_code, h.register_status, h.off_register_source, h.channel, h.status_since, h.rural_hukou,
                h.facts, people), self.today)
            tag = label(h.head_name)
            location = f"{h.location[0]:.6f},{h.location[1]:.6f}"
            view_json, missing_json = dumps(view), dumps(missing)
            out.households.append((
                h.id, h.area_code, h.register_status, h.off_register_source, h.status_since, h.channel, h.rural_hukou,
                seal(h.address, table="households", column="address", row_id=h.id),
                seal(location, table="households", column="location", row_id=h.id), tag,
                dumps(h.facts), view_json, missing_json, 1, True, self.actor, now, now))
            for m in h.members:
                out.members.append((
                    m.id, h.id, indexes[m.id], seal(m.resident_id, table="members", column="resident_id", row_id=m.id),
                    mask(m.resident_id), seal(m.name, table="members", column="name", row_id=m.id), mask_name(m.name),
                    seal(m.phone, table="members", column="phone", row_id=m.id), mask_phone(m.phone) if m.phone else None,
                    m.sex, m.birth_date, m.relation, dumps(m.facts), 1, True, now, now))
            out.statuses.append((str(uuid.uuid5(uuid.NAMESPACE_URL, f"status:{h.id}")), h.id, None, None,
                                 h.register_status, h.off_register_source, h.status_since, "opened", self.actor,
                                 "service", now))
            if events:
                payload = event_data(household_id=h.id, version=1, area_code=h.area_code, label_masked=tag,
                                     synthetic=True, change="created",
                                     triggers=[{"code": "household_created", "member_ref": None,
                                                "effective_date": self.today.isoformat(), "source": h.channel,
                                                "detail": {}}],
                                     member_ages=member_ages(people, self.today), view=None, missing=None)
                # The view is already encoded for the household row: splice it in, not encode twice.
                out.events.append((str(uuid.uuid4()), h.id, with_view(dumps(payload), view_json, missing_json)))
        return out


async def existing(session: AsyncSession, households: list[str], indexes: list[str]) -> tuple[set[str], set[str]]:
    """Which of these households and people the database already holds (loading is idempotent)."""
    have_h: set[str] = set()
    have_m: set[str] = set()
    for start in range(0, len(households), 5000):
        rows = await session.execute(select(Household.id).where(Household.id.in_(households[start:start + 5000])))
        have_h |= set(rows.scalars())
    for start in range(0, len(indexes), 5000):
        rows = await session.execute(select(Member.resident_bidx).where(Member.resident_bidx.in_(indexes[start:start + 5000])))
        have_m |= set(rows.scalars())
    return have_h, have_m


class Writer:
    """Writes sealed rows: COPY on PostgreSQL, batched inserts on SQLite. Without a schema, the
    tables are found on the connection's search path (the service's schema)."""

    def __init__(self, session: AsyncSession, *, postgres: bool, schema: str | None = None) -> None:
        self.session, self.postgres, self.schema = session, postgres, schema

    async def rows(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.postgres:
            raw = await driver_of(self.session)
            await raw.copy_records_to_table(table, records=rows, columns=list(columns), schema_name=self.schema)
            return
        decoded = [{c: (json.loads(v) if c in JSON_COLUMNS and v is not None else v) for c, v in zip(columns, r, strict=True)}
                   for r in rows]
        model = {"households": Household, "members": Member, "status_changes": StatusChange, "outbox": OutboxEvent}[table]
        for start in range(0, len(decoded), 2000):
            await self.session.execute(model.__table__.insert(), decoded[start:start + 2000])

    async def events(self, events: list[tuple[str, str, str]], now: datetime, traceparent: str | None = None) -> int:
        """Number the events with the kit's sequencer row (locked until commit) and write them;
        the last position (the feed's head once committed)."""
        if not events:
            return 0
        result = await self.session.execute(
            update(FeedSequence).where(FeedSequence.id == 1)
            .values(last_position=FeedSequence.last_position + len(events)).returning(FeedSequence.last_position))
        last = result.scalar_one()
        first = last - len(events) + 1
        rows = [(first + i, eid, EVENT_TYPE, subject, payload, traceparent, now)
                for i, (eid, subject, payload) in enumerate(events)]
        await self.rows("outbox", O_COLUMNS, rows)
        return last


def chunks(items: Iterable[SyntheticHousehold], size: int) -> Iterator[list[SyntheticHousehold]]:
    chunk: list[SyntheticHousehold] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# Sealing in worker processes: each builds its own profile, vault and sealer once.
_worker_sealer: Sealer | None = None


def _start_worker(settings: RegistrySettings, today: date, now: datetime) -> None:
    global _worker_sealer
    from registry.profile import load_profile

    _worker_sealer = Sealer(load_profile(settings.config_dir), Vault.from_settings(settings), today, now)


def _seal(sealer: Sealer, households: list[SyntheticHousehold], events: bool) -> tuple[SealedBatch, dict[str, str], float]:
    started = time.perf_counter()
    index = sealer.vault.resident_index
    indexes = {m.id: index(m.resident_id) for h in households for m in h.members}
    return sealer.seal(households, events=events, indexes=indexes), indexes, time.perf_counter() - started


def _seal_in_worker(households: list[SyntheticHousehold], events: bool) -> tuple[SealedBatch, dict[str, str], float]:
    assert _worker_sealer is not None
    return _seal(_worker_sealer, households, events)


def _keep(sealed: SealedBatch, keep: set[str]) -> SealedBatch:
    return SealedBatch([r for r in sealed.households if r[0] in keep], [r for r in sealed.members if r[1] in keep],
                       [r for r in sealed.statuses if r[1] in keep], [e for e in sealed.events if e[1] in keep])


async def load(db: Database, profile: CityProfile, vault: Vault, households: Iterable[SyntheticHousehold], *,
               events: bool = True, chunk: int = 5000, today: date | None = None, workers: int = 0,
               settings: RegistrySettings | None = None) -> LoadReport:
    """Load households in one transaction; those (or people) already present are skipped.

    With ``workers`` > 0 (and the ``settings`` the workers build their keys from), chunks are
    sealed in that many processes while PostgreSQL copies the previous chunk, so sealing and
    COPY overlap instead of adding up.
    """
    now = utcnow()
    today = today or date.today()
    report = LoadReport()
    async with unit_of_work(db) as session:
        writer = Writer(session, postgres=db.is_postgres, schema=db.schema)

        async def write(part: list[SyntheticHousehold], sealed: SealedBatch, indexes: dict[str, str], seconds: float) -> None:
            report.seal_seconds += seconds
            started = time.perf_counter()
            have_h, have_m = await existing(session, [h.id for h in part], list(indexes.values()))
            if have_h or have_m:  # already loaded (seeding twice): keep only what is new
                keep = {h.id for h in part if h.id not in have_h and not any(indexes[m.id] in have_m for m in h.members)}
                sealed = _keep(sealed, keep)
                report.skipped += len(part) - len(keep)
            await writer.rows("households", H_COLUMNS, sealed.households)
            await writer.rows("members", M_COLUMNS, sealed.members)
            await writer.rows("status_changes", S_COLUMNS, sealed.statuses)
            events_started = time.perf_counter()
            await writer.events(sealed.events, now)
            report.events_seconds += time.perf_counter() - events_started
            report.write_seconds += time.perf_counter() - started
            report.households += len(sealed.households)
            report.members += len(sealed.members)
            report.events += len(sealed.events)

        if workers <= 0:
            sealer = Sealer(profile, vault, today, now)
            for part in chunks(households, chunk):
                await write(part, *_seal(sealer, part, events))
            return report
        if settings is None:
            raise ValueError("sealing in workers needs the settings to build their keys from")
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                                 initargs=(settings, today, now)) as pool:
            queue: deque[tuple[list[SyntheticHousehold], asyncio.Future]] = deque()
            for part in chunks(households, chunk):
                queue.append((part, loop.run_in_executor(pool, _seal_in_worker, part, events)))
                if len(queue) > workers:
                    done, future = queue.popleft()
                    await write(done, *(await future))
            while queue:
                done, future = queue.popleft()
                await write(done, *(await future))
    return report
