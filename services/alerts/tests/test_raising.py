"""Raising from scoring's assessment.updated: rules, one case per household, idempotency."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fakes import assessment, withdrawal
from helpers import alerts_of, evidence_count, outbox_events


async def test_major_illness_raises_an_important_alert(svc, feed):
    a = assessment(level=1, previous_level=1, triggers=["major_illness_diagnosed"])
    await feed.publish(a)
    [alert] = await alerts_of(svc, a["household_id"])
    assert alert.alert_class == "important"
    assert alert.status == "raised"
    assert alert.rules == ["major_illness"]
    assert alert.label_masked == "张*明户" and alert.area_code == a["area_code"]
    assert alert.portrait["causes"] == ["illness"]
    assert alert.deadline_at > alert.raised_at


async def test_general_alert_at_levels_2_and_3(svc, feed):
    for level in (2, 3):
        a = assessment(level=level, previous_level=level, triggers=["member_born"])
        await feed.publish(a)
        [alert] = await alerts_of(svc, a["household_id"])
        assert alert.alert_class == "general"
        assert alert.rules == ["member_born"]


async def test_each_configured_trigger_raises(svc, feed):
    expected = {
        "member_deceased": "member_deceased",
        "disability_grade_changed": "disability_changed",
        "declaration_accepted": "declaration_accepted",
        "job_lost": "job_lost",
    }
    for trigger, rule in expected.items():
        a = assessment(level=2, previous_level=2, triggers=[trigger])
        await feed.publish(a)
        [alert] = await alerts_of(svc, a["household_id"])
        assert alert.rules == [rule]


async def test_level_rules(svc, feed):
    into_1 = assessment(level=1, previous_level=2)
    by_band = assessment(level=2, previous_level=3)
    better = assessment(level=2, previous_level=1)
    same = assessment(level=2, previous_level=2)
    await feed.publish(into_1, by_band, better, same)
    assert [a.rules for a in await alerts_of(svc, into_1["household_id"])] == [["level_entered_1", "level_dropped"]]
    assert [a.rules for a in await alerts_of(svc, by_band["household_id"])] == [["level_dropped"]]
    assert await alerts_of(svc, better["household_id"]) == []
    assert await alerts_of(svc, same["household_id"]) == []


async def test_level_filter_of_a_rule(svc, feed):
    # income_dropped is configured for levels 1 and 2 only
    a = assessment(level=3, previous_level=3, triggers=["income_dropped"])
    await feed.publish(a)
    assert await alerts_of(svc, a["household_id"]) == []


async def test_the_same_event_delivered_twice_raises_one_alert(svc, feed, scoring, consumer):
    a = assessment(level=1, previous_level=1, triggers=["major_illness_diagnosed"])
    event_id = str(uuid.uuid4())
    await feed.publish(a, event_ids=[event_id])
    # delivered again under the same id at a later position (a producer retry, a replay)
    await feed.publish(a, event_ids=[event_id])
    [alert] = await alerts_of(svc, a["household_id"])
    assert await evidence_count(svc, alert.id) == 1
    assert len(await outbox_events(svc, "alert.raised", alert.id)) == 1


async def test_a_replayed_event_bypassing_the_cursor_changes_nothing(svc, feed):
    """Even handed straight to the handler twice, the evidence table's unique event id holds."""
    from alerts.raising import service
    from alerts.raising.schemas import AssessmentUpdated
    from servicekit.db import unit_of_work

    a = assessment(level=2, previous_level=2, triggers=["member_born"])
    obs = [service.Observation(str(uuid.uuid4()), AssessmentUpdated.model_validate(a))]
    profile = svc.app.state.profile
    async with unit_of_work(svc.db) as s:
        first = await service.apply(s, profile, obs)
    async with unit_of_work(svc.db) as s:
        second = await service.apply(s, profile, obs)
    assert len(first.raised) == 1 and second.raised == [] and second.skipped == 1
    [alert] = await alerts_of(svc, a["household_id"])
    assert alert.version == 1 and await evidence_count(svc, alert.id) == 1


async def test_new_trigger_joins_the_open_alert_as_evidence(svc, feed):
    hh = str(uuid.uuid4())
    await feed.publish(assessment(household_id=hh, level=2, previous_level=2, triggers=["member_born"]))
    await feed.publish(assessment(household_id=hh, level=2, previous_level=2, triggers=["job_lost"]))
    [alert] = await alerts_of(svc, hh)
    assert alert.rules == ["member_born", "job_lost"]
    assert await evidence_count(svc, alert.id) == 2
    assert alert.version == 2
    assert len(await outbox_events(svc, "alert.raised", alert.id)) == 1


async def test_worsening_makes_it_important_and_moves_the_deadline_earlier(svc, feed):
    hh = str(uuid.uuid4())
    await feed.publish(assessment(household_id=hh, level=2, previous_level=2, triggers=["member_born"]))
    [general] = await alerts_of(svc, hh)
    assert general.alert_class == "general"
    await feed.publish(assessment(household_id=hh, level=1, previous_level=2, triggers=["major_illness_diagnosed"]))
    [alert] = await alerts_of(svc, hh)
    assert alert.id == general.id
    assert alert.alert_class == "important"
    assert alert.deadline_at < general.deadline_at
    assert alert.deadline_at <= alert.raised_at + timedelta(days=4)  # 3 days, to the end of the day
    assert set(alert.rules) == {"member_born", "major_illness", "level_entered_1", "level_dropped"}


async def test_the_deadline_never_moves_later(svc, feed):
    hh = str(uuid.uuid4())
    await feed.publish(assessment(household_id=hh, level=1, previous_level=1, triggers=["major_illness_diagnosed"]))
    [first] = await alerts_of(svc, hh)
    await feed.publish(assessment(household_id=hh, level=3, previous_level=1, triggers=["member_born"]))
    [alert] = await alerts_of(svc, hh)
    assert alert.alert_class == "important" and alert.deadline_at == first.deadline_at
    assert alert.level == 3  # the worker sees the latest level; class and deadline stay strict


async def test_a_disposed_case_does_not_absorb_new_triggers(svc, feed):
    from helpers import set_alert

    hh = str(uuid.uuid4())
    await feed.publish(assessment(household_id=hh, level=2, previous_level=2, triggers=["member_born"]))
    [old] = await alerts_of(svc, hh)
    await set_alert(svc, old.id, status="disposed", disposition="no_need")
    await feed.publish(assessment(household_id=hh, level=2, previous_level=2, triggers=["job_lost"]))
    alerts = await alerts_of(svc, hh)
    assert len(alerts) == 2 and alerts[1].rules == ["job_lost"] and alerts[1].status == "raised"


async def test_one_open_case_per_household_is_a_database_constraint(svc, feed):
    import pytest
    from sqlalchemy.exc import IntegrityError

    from alerts.alert.tables import Alert

    hh = str(uuid.uuid4())
    await feed.publish(assessment(household_id=hh, level=2, previous_level=2, triggers=["member_born"]))
    [alert] = await alerts_of(svc, hh)
    copy = Alert(**{**alert.model_dump(), "id": str(uuid.uuid4()), "raised_by_event": str(uuid.uuid4())})
    async with svc.db.sessionmaker() as s:
        s.add(copy)
        with pytest.raises(IntegrityError):
            await s.commit()


async def test_malformed_events_are_skipped_not_fatal(svc, feed, scoring, consumer):
    good = assessment(level=1, previous_level=1, triggers=["major_illness_diagnosed"])
    bad = {"household_id": "x", "level": "not a level"}
    scoring.add(bad)
    await feed.publish(good)
    assert len(await alerts_of(svc, good["household_id"])) == 1


async def test_other_event_types_are_ignored(svc, feed, scoring):
    a = assessment(level=1, previous_level=1, triggers=["major_illness_diagnosed"])
    scoring.add(a, type="model.activated")
    await feed.publish(assessment(level=3, previous_level=3))
    assert await alerts_of(svc, a["household_id"]) == []


async def test_resync_from_the_snapshot_compares_with_known_levels(svc, feed, scoring, consumer):
    known = str(uuid.uuid4())
    await feed.publish(assessment(household_id=known, level=2, previous_level=None))  # first seen at 2
    fell = assessment(household_id=known, level=1, previous_level=None)
    fresh = assessment(level=3, previous_level=None)
    scoring.snapshot = [fell, fresh]
    scoring.pruned_through = scoring.head + 5  # our cursor is now behind the retention
    try:
        await consumer.step()
        [alert] = await alerts_of(svc, known)
        assert alert.rules == ["level_entered_1", "level_dropped"]
        assert await alerts_of(svc, fresh["household_id"]) == []
        assert await consumer.cursor() == scoring.head
        await consumer.resync()  # replaying the snapshot changes nothing
        assert len(await alerts_of(svc, known)) == 1 and await evidence_count(svc, alert.id) == 1
    finally:
        scoring.snapshot, scoring.pruned_through = [], 0


async def test_a_household_closed_in_the_registry_has_its_open_alert_disposed_by_the_system(
        svc, feed, consumer, scoring):
    """scoring's assessment.withdrawn (the registry closed the household): the open alert is
    disposed of as household_closed -- no deadline, no overdue -- and announced as alert.disposed;
    a withdrawal of a household without an open alert, or a malformed one, changes nothing."""
    a = assessment(level=1, previous_level=1, triggers=["major_illness_diagnosed"])
    calm = assessment(level=3, previous_level=3)
    await feed.publish(a, calm)
    [alert] = await alerts_of(svc, a["household_id"])
    assert alert.status == "raised" and await alerts_of(svc, calm["household_id"]) == []
    for data in (withdrawal(a), withdrawal(calm), {"cause": "household_closed"}):  # the last malformed: skipped
        scoring.add(data, type="assessment.withdrawn")
    while await consumer.step() > 0:
        pass
    [alert] = await alerts_of(svc, a["household_id"])
    assert (alert.status, alert.disposition, alert.disposed_by) == ("disposed", "household_closed", "system:rules")
    assert alert.version == 2 and await alerts_of(svc, calm["household_id"]) == []
    [announced] = await outbox_events(svc, "alert.disposed", alert.id)
    assert announced.payload["disposition"] == "household_closed" and announced.payload["services"] == []
    async with svc.client("town_worker", area=alert.township_code) as worker:
        shown = (await worker.get(f"/api/v1/alerts/{alert.id}")).json()
    assert shown["status"] == "disposed" and shown["disposition"]["kind"] == "household_closed"


async def test_resync_disposes_of_the_alerts_of_households_closed_meanwhile(svc, feed, consumer, scoring):
    """Behind the feed's retention, the withdrawals it held are gone: the resync reads scoring's
    snapshot of withdrawals too, and disposes of those households' open alerts. An open alert of a
    household merely absent from the assessments snapshot is left alone (absence proves nothing)."""
    closed = assessment(level=1, previous_level=1, triggers=["major_illness_diagnosed"])
    absent = assessment(level=1, previous_level=1, triggers=["major_illness_diagnosed"])
    calm = assessment(level=3, previous_level=3)
    await feed.publish(closed, absent, calm)
    scoring.snapshot = [calm]
    scoring.withdrawn = [withdrawal(closed), {"cause": "household_closed"}]  # the second malformed: skipped
    scoring.pruned_through = scoring.head + 5
    try:
        await consumer.step()
        [alert] = await alerts_of(svc, closed["household_id"])
        assert (alert.status, alert.disposition, alert.disposed_by) == ("disposed", "household_closed", "system:rules")
        [kept] = await alerts_of(svc, absent["household_id"])
        assert kept.status == "raised" and await alerts_of(svc, calm["household_id"]) == []
        assert await consumer.cursor() == scoring.head
        [announced] = await outbox_events(svc, "alert.disposed", alert.id)
        assert announced.payload["disposition"] == "household_closed"
        await consumer.resync()  # replaying changes nothing
        [again] = await alerts_of(svc, closed["household_id"])
        assert again.version == alert.version and len(await outbox_events(svc, "alert.disposed", alert.id)) == 1
    finally:
        scoring.snapshot, scoring.withdrawn, scoring.pruned_through = [], [], 0


async def test_resync_from_a_scoring_without_the_snapshot_of_withdrawals_applies_the_rest(svc, feed, consumer, scoring):
    """A scoring older than the snapshot of withdrawals (404, a rolling upgrade): the assessments
    are applied and the feed goes on; a closed household's alert stays open, as it did before."""
    closed = assessment(level=1, previous_level=1, triggers=["major_illness_diagnosed"])
    await feed.publish(closed)
    fell = assessment(level=1, previous_level=None)
    scoring.snapshot, scoring.withdrawn = [fell], None
    scoring.pruned_through = scoring.head + 5
    try:
        await consumer.step()
        assert [a.rules for a in await alerts_of(svc, fell["household_id"])] == [["level_entered_1"]]
        [kept] = await alerts_of(svc, closed["household_id"])
        assert kept.status == "raised" and await consumer.cursor() == scoring.head
    finally:
        scoring.snapshot, scoring.withdrawn, scoring.pruned_through = [], [], 0
