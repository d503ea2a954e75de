"""The consumer of the alerts feed: one need per referred service, in batches, exactly once,
and a rebuild from the snapshot after the feed was pruned past us."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import event, func, select, update

from servicekit.tables import ConsumerCursor

from factories import approved_partner, match_of, published_offer, run
from fakes import FakeAlerts, disposed
from matching.needs.tables import Need
from matching.referrals.consumer import AlertsClient, make_consumer


def consumer_for(svc, fake: FakeAlerts):
    client = AlertsClient("http://alerts", token=svc.identity.token_source,
                          transport=httpx.ASGITransport(app=fake.app))
    c = make_consumer(svc.app, client)
    c.name = f"alerts-{uuid.uuid4().hex[:6]}"  # a cursor of its own for each test
    return c


async def needs_of(svc, alert_id: str) -> list[Need]:
    async with svc.db.sessionmaker() as s:
        rows = await s.execute(select(Need).where(Need.alert_id == alert_id).order_by(Need.service_code))
        return list(rows.scalars())


async def test_a_service_referral_becomes_one_need_per_service(svc):
    fake = FakeAlerts()
    referral = disposed(services=[("home_nursing", "urgent"), ("meal_assistance", "low")], level=1)
    fake.publish(disposed(services=[], disposition="no_need"))
    fake.publish({"alert_id": "x"}, event_type="alert.raised")
    fake.publish(referral)
    consumer = consumer_for(svc, fake)
    assert await consumer.step() == 3
    nursing, meals = await needs_of(svc, referral["alert_id"])
    assert (nursing.service_code, nursing.priority, nursing.urgency) == ("home_nursing", 9, "urgent")
    assert (meals.service_code, meals.priority) == ("meal_assistance", 3)
    assert nursing.source == "alert_referral" and nursing.label_masked == "李*华户"
    assert nursing.household_type == "tekun" and nursing.member_ages == [79] and nursing.need_types == ["care"]
    assert nursing.household_id == referral["household_id"] and nursing.status == "open"


async def test_a_large_family_or_an_implausible_age_never_costs_the_referral(svc):
    fake = FakeAlerts()
    ages = [142, *range(60, 26, -1)]  # 35 living members, one never reported dead
    referral = disposed(services=[("home_nursing", "urgent")], member_ages=ages)
    fake.publish(referral)
    assert await consumer_for(svc, fake).step() == 1
    [need] = await needs_of(svc, referral["alert_id"])
    assert need.member_ages == [130, *range(60, 26, -1)]


async def test_replays_and_re_dispositions_create_nothing_twice(svc):
    fake = FakeAlerts()
    referral = disposed(services=[("counselling", "normal")])
    fake.publish(referral)
    consumer = consumer_for(svc, fake)
    await consumer.step()
    async with svc.db.sessionmaker() as s:
        await s.execute(update(ConsumerCursor).where(ConsumerCursor.feed == consumer.name).values(position=0))
        await s.commit()
    assert await consumer.step() == 0  # the same event ids: skipped
    fake.publish({**referral, "services": [{"code": "counselling", "urgency": "urgent"},
                                           {"code": "grief_support", "urgency": "normal"}]})
    await consumer.step()
    assert [n.service_code for n in await needs_of(svc, referral["alert_id"])] == ["counselling", "grief_support"]


async def test_malformed_events_and_unknown_services_are_skipped_not_stuck(svc):
    fake = FakeAlerts()
    broken = disposed(services=[("tutoring", "normal")])
    del broken["area_code"]
    fake.publish(broken)
    unknown = disposed(services=[("space_travel", "urgent"), ("tutoring", "normal")])
    fake.publish(unknown)
    outside = disposed(services=[("tutoring", "normal")], village="310101001001")
    fake.publish(outside)
    consumer = consumer_for(svc, fake)
    assert await consumer.step() == 3
    assert [n.service_code for n in await needs_of(svc, unknown["alert_id"])] == ["tutoring"]
    assert await needs_of(svc, broken["alert_id"]) == [] and await needs_of(svc, outside["alert_id"]) == []
    assert await consumer.cursor() == fake.head


async def test_a_batch_is_one_insert(svc):
    fake = FakeAlerts()
    for _ in range(300):
        fake.publish(disposed(services=[("festival_care", "low"), ("clothing_bedding", "normal")]))
    consumer = consumer_for(svc, fake)
    consumer.batch_size = 500
    inserts = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("INSERT INTO NEEDS"):
            inserts.append(statement)

    event.listen(svc.db.engine.sync_engine, "before_cursor_execute", count)
    try:
        assert await consumer.step() == 300
    finally:
        event.remove(svc.db.engine.sync_engine, "before_cursor_execute", count)
    assert len(inserts) == 1
    async with svc.db.sessionmaker() as s:
        made = await s.execute(select(func.count()).select_from(Need).where(
            Need.alert_id.in_([e["data"]["alert_id"] for e in fake.events])))
        assert made.scalar_one() == 600


async def test_resync_from_the_snapshot_after_pruning(svc):
    fake = FakeAlerts()
    fake.publish(disposed(services=[("skills_training", "normal")]))
    fake.events.clear()
    fake.pruned_through = 50
    lost = disposed(services=[("skills_training", "urgent")])
    fake.snapshot = [{**lost, "status": "disposed", "version": 3},
                     {**disposed(services=[]), "status": "open", "disposition": None}]
    consumer = consumer_for(svc, fake)
    assert await consumer.step() == 0
    assert await consumer.cursor() == 50
    assert [n.urgency for n in await needs_of(svc, lost["alert_id"])] == ["urgent"]


async def test_resync_cancels_the_needs_of_a_household_closed_meanwhile(svc):
    """Behind alerts' retention, an alert.disposed "household_closed" may be gone from the feed: the
    snapshot of every alert still shows that alert as disposed so, and the resync cancels the
    household's open needs as the event would have; another household's needs stay open."""
    fake = FakeAlerts()
    referral = disposed(services=[("skills_training", "normal")], village="330106002001")
    other = disposed(services=[("tutoring", "normal")], village="330106002001")
    fake.publish(referral)
    fake.publish(other)
    consumer = consumer_for(svc, fake)
    await consumer.step()
    fake.events.clear()
    fake.pruned_through = 80
    closing = disposed(services=[], disposition="household_closed", household_id=referral["household_id"],
                       village="330106002001")
    fake.snapshot = [{**referral, "status": "disposed"}, {**other, "status": "disposed"},
                     {**closing, "status": "disposed", "version": 2}]
    assert await consumer.step() == 0
    assert await consumer.cursor() == 80
    assert [n.status for n in await needs_of(svc, referral["alert_id"])] == ["cancelled"]
    assert [n.status for n in await needs_of(svc, other["alert_id"])] == ["open"]


async def test_a_referred_family_is_matched_to_a_partner(svc):
    org = await approved_partner(svc)
    offer = await published_offer(svc, org, services=["job_referral"], areas=["330106000000"], capacity=3,
                                  site_code="DC330106")
    fake = FakeAlerts()
    referral = disposed(services=[("job_referral", "urgent")], village="330106002001")
    fake.publish(referral)
    await consumer_for(svc, fake).step()
    await run(svc)
    (need,) = await needs_of(svc, referral["alert_id"])
    match = await match_of(svc, org, need.id)
    assert match is not None and match["offer_id"] == offer["id"] and match["need"]["label_masked"] == "李*华户"


async def test_the_youngest_of_a_large_family_counts_for_an_age_limited_offer(svc):
    # Ages come oldest first: a family of ten whose only child is the tenth member still
    # qualifies for an offer for small children (the engine once kept the first eight ages).
    org = await approved_partner(svc)
    offer = await published_offer(svc, org, services=["job_referral"], areas=["330106000000"], capacity=3,
                                  site_code="DC330106", eligibility={"min_age": 0, "max_age": 6})
    fake = FakeAlerts()
    big = disposed(services=[("job_referral", "normal")], village="330106002001",
                   member_ages=[88, 86, 61, 60, 40, 38, 35, 33, 30, 4])
    grown = disposed(services=[("job_referral", "normal")], village="330106002001",
                     member_ages=[88, 86, 61, 60, 40, 38, 35, 33, 30, 29])
    fake.publish(big)
    fake.publish(grown)
    await consumer_for(svc, fake).step()
    await run(svc)
    ((with_child,), (without,)) = [await needs_of(svc, r["alert_id"]) for r in (big, grown)]
    match = await match_of(svc, org, with_child.id)
    assert match is not None and match["offer_id"] == offer["id"]
    assert await match_of(svc, org, without.id) is None


async def test_a_household_closed_in_the_registry_has_its_open_needs_cancelled(svc):
    """alert.disposed "household_closed": the household's needs still open are cancelled and the
    proposal waiting on one is withdrawn; a need a partner accepted and other households' needs
    are left as they are."""
    from matching.matches.tables import Match

    org = await approved_partner(svc)
    await published_offer(svc, org, services=["job_referral"], areas=["330106000000"], capacity=3, site_code="DC330106")
    fake = FakeAlerts()
    referral = disposed(services=[("job_referral", "urgent"), ("tutoring", "normal"), ("counselling", "low")],
                        village="330106002001")
    other = disposed(services=[("tutoring", "normal")], village="330106002001")
    fake.publish(referral)
    fake.publish(other)
    consumer = consumer_for(svc, fake)
    await consumer.step()
    await run(svc)
    made = {n.service_code: n for n in await needs_of(svc, referral["alert_id"])}
    job, counselling = made["job_referral"], made["counselling"]
    async with svc.db.sessionmaker() as s:  # proposed to this partner or to another's offer
        proposed = (await s.execute(select(Match.status).where(Match.need_id == job.id))).scalars().all()
    assert proposed == ["proposed"], proposed
    async with svc.db.sessionmaker() as s:  # as if a partner had accepted the counselling need
        await s.execute(update(Need).where(Need.id == counselling.id).values(status="accepted"))
        await s.commit()
    fake.publish(disposed(services=[], disposition="household_closed", household_id=referral["household_id"],
                          alert_id=str(uuid.uuid4())))
    fake.publish(disposed(services=[], disposition="household_closed"))  # a household with no needs
    await consumer.step()
    after = {n.service_code: n for n in await needs_of(svc, referral["alert_id"])}
    assert (after["job_referral"].status, after["tutoring"].status, after["counselling"].status) == (
        "cancelled", "cancelled", "accepted")
    assert after["job_referral"].version == job.version + 1
    async with svc.db.sessionmaker() as s:
        withdrawn = (await s.execute(select(Match.status, Match.close_reason).where(Match.need_id == job.id))).one()
    assert tuple(withdrawn) == ("withdrawn", "household_closed")
    assert [n.status for n in await needs_of(svc, other["alert_id"])] == ["open"]
