"""household.changed carries the living members' ages (oldest first) beside the flat view, on
every producer path (a worker's change, a department batch) and in the snapshot."""

from datetime import date, timedelta

import pytest
from factories import create, deliver, events_since, feed_record, head_position, household, member

from registry.facts.view import MemberFacts
from registry.households.changes import member_ages


def born(years: int) -> date:
    """A birthday ``years`` and 40 to 70 days ago: the same whole years whichever calendar day
    (UTC or the city's) the registry calls today."""
    today = date.today()
    return date(today.year - years, today.month, 1) - timedelta(days=40)


def family() -> tuple[dict, list[str]]:
    members = [member("head", birth=born(43)), member("spouse", birth=born(45)), member("child", birth=born(8))]
    return household(members=members), [m["resident_id"] for m in members]


@pytest.fixture
async def health_dept(registry):
    async with registry.client("department", dept="health", subject="dept-health") as c:
        yield c


async def test_created_household_event_carries_member_ages_oldest_first(registry, worker):
    before = await head_position(registry)
    body, _ = family()
    created = await create(worker, body)
    [event] = [e for e in await events_since(registry, before) if e.subject == created["id"]]
    assert event.payload["member_ages"] == [45, 43, 8]
    assert "member_ages" not in event.payload["view"]  # the view stays flat (config/scoring-view.yaml)


async def test_department_batch_event_leaves_out_the_deceased(registry, worker, health_dept):
    body, (_, spouse, _) = family()
    created = await create(worker, body)
    before = await head_position(registry)
    died = (date.today() - timedelta(days=20)).isoformat()
    async with registry.client("department", dept="public_security", subject="dept-police") as police:
        await deliver(police, [feed_record("AGES-DEATH-1", "death_registration", spouse, died, died)])  # deaths: 公安局
    [event] = [e for e in await events_since(registry, before) if e.subject == created["id"]]
    assert event.payload["member_ages"] == [43, 8]


async def test_snapshot_items_carry_member_ages(registry, worker):
    body, _ = family()
    created = await create(worker, body)
    async with registry.client("service") as svc:
        items, cursor = [], None
        while True:
            page = (await svc.get("/internal/snapshot/households",
                                  params={"limit": 100, **({"cursor": cursor} if cursor else {})})).json()
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
    [item] = [i for i in items if i["household_id"] == created["id"]]
    assert item["member_ages"] == [45, 43, 8]


def test_ages_are_whole_years_on_the_day_and_skip_the_dead():
    today = date(2026, 11, 28)
    dead = {"deceased_on": {"v": "2026-11-28"}}
    later = {"deceased_on": {"v": "2026-12-01"}}  # recorded ahead of the day: still living on it
    members = [MemberFacts(date(2018, 11, 29), "female", "child", {}), MemberFacts(date(2018, 11, 28), "male", "child", {}),
               MemberFacts(date(1950, 1, 1), "male", "head", dead), MemberFacts(date(1990, 6, 1), "female", "spouse", later)]
    assert member_ages(members, today) == [36, 8, 7]
    assert member_ages([], today) == []
