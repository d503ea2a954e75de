"""A household closed while a department's batch is on its way: on PostgreSQL a chunk is looked
up ahead of its transaction, so it may have found a member of a household that is closed (its
members released) by the time the chunk locks it. Such a record is a lead, as it would be if the
lookup ran now, and the closed household is not written. Closing locks the members before the
household, as the feed does, so the two never deadlock."""

import asyncio
import itertools

from sqlalchemy import text

from factories import (
    create, deliver, events_since, feed_record, head_position, household, member, resident_id, until_waiting_for_a_lock,
)

_ids = itertools.count(1)


def rid() -> str:
    return f"CM-{next(_ids):08d}"


async def _close(worker, hid: str, version: int = 1):
    return await worker.post(f"/api/v1/households/{hid}/close", headers={"If-Match": f'"v{version}"'},
                             json={"reason": "全户迁出本市"})


async def test_records_looked_up_before_the_household_closed_are_leads(registry, worker, police, monkeypatch):
    import registry.feeds.service as feed_service

    head, spouse = resident_id(), resident_id()
    created = await create(worker, household(members=[member("head", resident_id=head),
                                                      member("spouse", resident_id=spouse)]))
    hid = created["id"]
    real = feed_service.apply_chunk
    closings = []

    async def closed_first(*args, **kw):
        if not closings:  # between the chunk's lookup (PostgreSQL: already done) and its locks
            closings.append(await _close(worker, hid))
        return await real(*args, **kw)

    monkeypatch.setattr(feed_service, "apply_chunk", closed_first)
    before = await head_position(registry)
    report = await deliver(police, [
        feed_record(rid(), "missing_person_report", head, True, "2026-01-05"),  # the person's own fact
        feed_record(rid(), "vehicle_registration", spouse, 2, "2026-01-05"),  # the household's
    ])
    assert closings and closings[0].status_code == 200, closings
    assert (report["applied"], report["leads"], report["rejected"], report["households_changed"]) == (0, 2, 0, 0), report

    read = (await worker.get(f"/api/v1/households/{hid}")).json()
    assert read["version"] == 2 and read["view"]["vehicles"] is None and read["view"]["members_missing"] == 0
    assert [e.payload["change"] for e in await events_since(registry, before) if e.subject == hid] == ["closed"]
    sent = [f"CM-{n:08d}" for n in (1, 2)]
    async with registry.db.sessionmaker() as s:
        leads = (await s.execute(text("SELECT record_id, status FROM leads WHERE department = 'public_security'"))).all()
    assert sorted((r, st) for r, st in leads if r in sent) == [(r, "open") for r in sent]


async def test_closing_waits_for_a_chunk_holding_a_member_without_deadlock(registry, worker):
    """A chunk locks the people whose facts it writes, then their household. Closing the household
    meanwhile waits for the members (it releases them) without holding the household, so the
    chunk gets the household and commits, and the close follows."""
    if not registry.db.is_postgres:  # SQLite: one writer at a time, no row locks to order
        return
    created = await create(worker, household(members=[member("head", resident_id=resident_id())]))
    hid = created["id"]
    member_id = created["members"][0]["id"]
    async with registry.db.engine.connect() as feed:
        await feed.execute(text("BEGIN"))
        await feed.execute(text("SET LOCAL lock_timeout = '10s'"))
        await feed.execute(text("SELECT id FROM members WHERE id = :m FOR UPDATE"), {"m": member_id})
        closing = asyncio.create_task(_close(worker, hid))
        await until_waiting_for_a_lock(registry, closing)
        # With the household held by the close, this would wait for it while it waits for the
        # member: a deadlock, one of the two aborted.
        await feed.execute(text("SELECT id FROM households WHERE id = :h FOR UPDATE"), {"h": hid})
        await feed.execute(text("COMMIT"))
    answer = await closing
    assert answer.status_code == 200 and answer.json()["closed_on"], answer.text

