"""A chunk whose transaction PostgreSQL aborts for another's (a deadlock over the locks it takes
before writing, with a worker's change or another department's batch) committed nothing: it is
applied again in a new transaction, and the batch completes as if nothing had happened. When the
aborts go on, the batch fails with a 503 to send it again, and nothing of the chunk is kept."""

import itertools

from sqlalchemy import text

from factories import create, deliver, events_since, feed_record, head_position, household, jsonl, member, resident_id

_ids = itertools.count(1)


def rid() -> str:
    return f"CF-{next(_ids):08d}"


def aborting(registry, monkeypatch, times: int, first: int = 1) -> list[int]:
    """The chunks' household locks fail ``times`` times from the ``first`` call on, as a
    deadlock's victim does: a real error of SQLSTATE 40P01 in the chunk's own transaction on
    PostgreSQL (aborting it), the driver's error on SQLite (which has no deadlocks)."""
    from asyncpg.exceptions import DeadlockDetectedError

    from registry.feeds import apply as feed_apply

    real = feed_apply.repository.lock_households
    calls: list[int] = []

    async def lock_households(session, household_ids):
        calls.append(len(household_ids))
        if first <= len(calls) < first + times:
            if registry.db.is_postgres:
                await session.execute(text(
                    "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = 'deadlock_detected'; END $$"))
            raise DeadlockDetectedError("deadlock detected")
        return await real(session, household_ids)

    monkeypatch.setattr(feed_apply.repository, "lock_households", lock_households)
    return calls


async def test_a_chunk_aborted_for_another_transaction_is_applied_again(registry, worker, police, monkeypatch):
    number = resident_id()
    created = await create(worker, household(members=[member("head", resident_id=number)]))
    calls = aborting(registry, monkeypatch, times=1)
    before = await head_position(registry)
    report = await deliver(police, [feed_record(rid(), "vehicle_registration", number, 2, "2026-01-05"),
                                    feed_record(rid(), "missing_person_report", resident_id(), True, "2026-01-05")])
    assert len(calls) == 2  # aborted once, then applied
    assert (report["status"], report["applied"], report["leads"], report["rejected"]) == ("completed", 1, 1, 0), report
    assert [e.subject for e in await events_since(registry, before)] == [created["id"]]  # one event, not two
    view = (await worker.get(f"/api/v1/households/{created['id']}")).json()["view"]
    assert view["vehicles"] == 2


async def test_a_chunk_between_others_aborted_once_is_applied_again_in_its_place(
        registry, worker, police, monkeypatch):
    """Chunks of one record (on PostgreSQL a pipeline: the second is worked out while the first
    is written): the second chunk is aborted once; every chunk is applied, each household
    changed once."""
    monkeypatch.setattr(registry.app.state.settings, "feed_chunk_records", 1)
    numbers = [resident_id() for _ in range(3)]
    homes = [(await create(worker, household(members=[member("head", resident_id=n)])))["id"] for n in numbers]
    calls = aborting(registry, monkeypatch, times=1, first=2)
    before = await head_position(registry)
    report = await deliver(police, [feed_record(rid(), "vehicle_registration", n, k, "2026-01-05")
                                    for k, n in enumerate(numbers, start=1)])
    assert (report["status"], report["applied"], report["households_changed"]) == ("completed", 3, 3), report
    assert len(calls) == 4
    assert sorted(e.subject for e in await events_since(registry, before)) == sorted(homes)
    for k, hid in enumerate(homes, start=1):
        assert (await worker.get(f"/api/v1/households/{hid}")).json()["view"]["vehicles"] == k


async def test_a_chunk_aborted_again_and_again_fails_the_batch_with_a_503_and_keeps_nothing(
        registry, worker, police, monkeypatch):
    from registry.feeds.service import CONFLICT_TRIES

    number = resident_id()
    created = await create(worker, household(members=[member("head", resident_id=number)]))
    calls = aborting(registry, monkeypatch, times=CONFLICT_TRIES)
    before = await head_position(registry)
    lead_record = rid()
    r = await police.post("/api/v1/feeds/batches", headers={"Content-Type": "application/x-ndjson"}, content=jsonl([
        feed_record(rid(), "vehicle_registration", number, 3, "2026-01-05"),
        feed_record(lead_record, "missing_person_report", resident_id(), True, "2026-01-05")]))
    assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
    assert "concurrent change" in r.json()["detail"] and number not in r.text
    assert len(calls) == CONFLICT_TRIES
    assert [e for e in await events_since(registry, before) if e.subject == created["id"]] == []
    batches = (await police.get("/api/v1/feeds/batches")).json()["items"]
    assert batches[0]["status"] == "failed" and batches[0]["applied"] == 0 and batches[0]["leads"] == 0
    async with registry.db.sessionmaker() as s:
        assert (await s.execute(text("SELECT count(*) FROM leads WHERE record_id = :r"),
                                {"r": lead_record})).scalar_one() == 0
