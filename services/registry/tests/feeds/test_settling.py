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
