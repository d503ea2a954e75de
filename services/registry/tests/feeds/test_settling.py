"""Records settled as unchanged by the lookup itself (PostgreSQL): only a record whose value is
the one held, and whose fact no other record of its chunk touches, is settled there; the rest
come back to be classified as before. On SQLite nothing is settled in the lookup: the same
batches must give the same outcomes there."""

import itertools
from datetime import date

from factories import create, deliver, feed_record, household, member, resident_id
from registry.feeds import repository

_ids = itertools.count(1)


def rid() -> str:
    return f"S-{next(_ids):08d}"


async def _view(worker, household_id: str) -> dict:
    return (await worker.get(f"/api/v1/households/{household_id}")).json()["view"]


async def test_a_value_set_and_set_back_in_one_chunk(worker, police):
    """The second record repeats the value held before the batch, but the first changed it."""
    number = resident_id()
    created = await create(worker, household(members=[member("head", resident_id=number)]))
    await deliver(police, [feed_record(rid(), "missing_person_report", number, False, "2026-01-01")])
    report = await deliver(police, [
        feed_record(rid(), "missing_person_report", number, True, "2026-01-05"),
        feed_record(rid(), "missing_person_report", number, False, "2026-01-09"),
    ])
    assert (report["applied"], report["unchanged"]) == (2, 0)
    assert (await _view(worker, created["id"]))["members_missing"] == 0


async def test_a_household_fact_set_and_set_back_by_two_members(worker, police):
    """Two members of one household, one household fact: the second record repeats the value
    held, but the first (about another person) changed it."""
    head, spouse = resident_id(), resident_id()
    created = await create(worker, household(members=[member("head", resident_id=head),
                                                      member("spouse", resident_id=spouse)]))
    await deliver(police, [feed_record(rid(), "vehicle_registration", head, 1, "2026-01-01")])
    report = await deliver(police, [
        feed_record(rid(), "vehicle_registration", head, 2, "2026-01-05"),
        feed_record(rid(), "vehicle_registration", spouse, 1, "2026-01-09"),
    ])
    assert (report["applied"], report["unchanged"]) == (2, 0)
    assert (await _view(worker, created["id"]))["vehicles"] == 1


async def test_a_death_in_the_chunk_rejects_a_repeated_value_after_it(worker, police):
    """The second record repeats the value held, but the person's death came first in the chunk."""
    number = resident_id()
    await create(worker, household(members=[member("head", resident_id=number)]))
    await deliver(police, [feed_record(rid(), "missing_person_report", number, False, "2026-01-01")])
    died = date(2026, 1, 10)
    report = await deliver(police, [
        feed_record(rid(), "death_registration", number, str(died), str(died)),
        feed_record(rid(), "missing_person_report", number, False, "2026-01-13"),
    ])
    rejected = (await police.get(f"/api/v1/feeds/batches/{report['id']}/rejections")).json()["items"]
    assert (report["applied"], report["unchanged"], report["rejected"]) == (1, 0, 1)
    assert [(r["line"], r["reason_code"]) for r in rejected] == [(2, "after_death")]


async def test_repeated_values_are_settled_in_the_lookup(registry, worker, police):
    """PostgreSQL returns no row for a record it settles, a row for one it cannot (another value,
    a fact of another shape, a person not in the database); SQLite returns them all."""
    number = resident_id()
    await create(worker, household(members=[member("head", resident_id=number)]))
    await deliver(police, [feed_record(rid(), "missing_person_report", number, True, "2026-01-01")])
    index = registry.app.state.vault.resident_index
    people = [index(number), index(number), index(number), index(resident_id())]
    keys = ["missing_person", "in_custody", "vehicles", "missing_person"]
    async with registry.db.sessionmaker() as s:
        rows = await repository.current_entries(s, people, keys, [False, False, True, False],
                                                ["true", "false", None, "true"])
    found = {n: member_id for n, member_id, *_ in rows}
    assert found.get(4, "no row") is None  # not in the database: a row without a member
    assert found[2] is not None and found[3] is not None  # no entry yet; a value not compared
    assert (1 in found) is not registry.db.is_postgres  # the value held: settled on PostgreSQL


async def test_the_person_is_found_by_the_whole_blind_index(registry, worker):
    """The lookup probes a 64-bit key of the blind index (registry_0008), then compares all of
    it: another index with the same first 16 digits finds nobody."""
    number = resident_id()
    await create(worker, household(members=[member("head", resident_id=number)]))
    mine = registry.app.state.vault.resident_index(number)
    twin = mine[:16] + ("0" if mine[16] != "0" else "1") + mine[17:]
    async with registry.db.sessionmaker() as s:
        rows = await repository.current_entries(s, [twin, mine], ["pregnant", "pregnant"], [False, False])
    found = {n: member_id for n, member_id, *_ in rows}
    assert found[1] is None and found[2] is not None


async def test_a_household_fact_locks_the_household_not_the_person(registry, worker, police, monkeypatch):
    """A record about a household's fact writes no member: its person is not locked (a lock
    writes to the row's page); a record about the person's own fact locks them."""
    from registry.feeds import apply as feed_apply

    number = resident_id()
    await create(worker, household(members=[member("head", resident_id=number)]))
    locked: list[list[str]] = []
    real = feed_apply.repository.lock_members

    async def recording(session, member_ids):
        locked.append(list(member_ids))
        return await real(session, member_ids)

    monkeypatch.setattr(feed_apply.repository, "lock_members", recording)
    report = await deliver(police, [feed_record(rid(), "vehicle_registration", number, 3, "2026-01-01")])
    assert report["applied"] == 1 and locked == []
    report = await deliver(police, [feed_record(rid(), "missing_person_report", number, True, "2026-01-01")])
    assert report["applied"] == 1 and len(locked) == 1 and len(locked[0]) == 1


async def test_a_person_who_moved_after_the_lookup_is_sent_again(registry, worker, police, monkeypatch):
    """On PostgreSQL a chunk is looked up ahead of its transaction: a person who moved to another
    household in between is not in the household locked for their record, which is rejected as
    ``retry`` (sent again, it goes to the new household). On SQLite the lookup is part of the
    chunk's transaction and finds the person where they are."""
    from sqlalchemy import text

    import registry.feeds.service as feed_service

    number = resident_id()
    first = await create(worker, household(members=[member("head", resident_id=number), member("spouse")]))
    second = await create(worker, household())
    real = feed_service.apply_chunk

    async def moved_first(*args, **kw):
        async with registry.db.sessionmaker() as s, s.begin():
            await s.execute(text("UPDATE members SET household_id = :to WHERE household_id = :at AND relation = 'head'"),
                            {"to": second["id"], "at": first["id"]})
        return await real(*args, **kw)

    monkeypatch.setattr(feed_service, "apply_chunk", moved_first)
    report = await deliver(police, [feed_record(rid(), "vehicle_registration", number, 3, "2026-01-01")])
    if registry.db.is_postgres:
        rejected = (await police.get(f"/api/v1/feeds/batches/{report['id']}/rejections")).json()["items"]
        assert report["applied"] == 0 and [r["reason_code"] for r in rejected] == ["retry"]
        assert (await _view(worker, first["id"]))["vehicles"] is None
    else:
        assert report["applied"] == 1 and (await _view(worker, second["id"]))["vehicles"] == 3
