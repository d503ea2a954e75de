"""The synthetic city: deterministic, shaped like the brief, loadable twice without duplicates."""

from collections import Counter

from sqlalchemy import func, select

from registry.bulk import load
from registry.households.tables import Household
from registry.members.tables import Member
from registry.synthetic import CityGenerator
from registry.synthetic_feeds import records
from servicekit.resident_id import is_valid
from servicekit.tables import OutboxEvent


def _generator(registry) -> CityGenerator:
    profile = registry.app.state.profile
    return CityGenerator(profile.areas, profile.catalogue.code_lists, seed=99)


def test_deterministic_and_a_larger_scale_is_a_superset(registry):
    small = list(_generator(registry).households(0.002))
    large = list(_generator(registry).households(0.004))
    assert [h.id for h in small] == [h.id for h in large[: len(small)]]
    assert [m.resident_id for h in small for m in h.members] == [m.resident_id for h in large[: len(small)] for m in h.members]


def test_shape_follows_the_brief(registry):
    households = list(_generator(registry).households(0.01))
    statuses = Counter(h.register_status for h in households)
    on = statuses["dibao"] + statuses["dibian"] + statuses["tekun"]
    assert on == 830 and statuses["off_register"] == 1400
    people = [m for h in households for m in h.members]
    assert 3800 <= len(people) <= 4600  # 400,000+ people at scale 1.0
    assert all(is_valid(m.resident_id) for m in people)
    assert len({m.resident_id for m in people}) == len(people)
    profile = registry.app.state.profile
    assert all(profile.areas.is_village(h.area_code) for h in households)
    sources = Counter(h.off_register_source for h in households if h.off_register_source)
    assert set(sources) == {"assistance_exit", "application_refused", "temporary_assistance", "proactive_discovery",
                            "other_department"}


async def test_load_twice_adds_nothing_and_marks_everything_synthetic(registry):
    generator = _generator(registry)
    profile, vault = registry.app.state.profile, registry.app.state.vault
    households = list(generator.households(0.002))
    async with registry.db.sessionmaker() as s:
        events_before = (await s.execute(select(func.count()).select_from(OutboxEvent))).scalar_one()
    first = await load(registry.db, profile, vault, households, today=generator.today, chunk=200)
    second = await load(registry.db, profile, vault, households, today=generator.today, chunk=200)
    assert first.households == len(households) and first.events == len(households)
    assert second.households == 0 and second.skipped == len(households) and second.events == 0
    ids = [h.id for h in households]
    async with registry.db.sessionmaker() as s:
        loaded = (await s.execute(select(Household).where(Household.id.in_(ids)))).scalars().all()
        members = (await s.execute(select(Member).where(Member.household_id.in_(ids)))).scalars().all()
        events = (await s.execute(select(func.count()).select_from(OutboxEvent))).scalar_one()
    assert len(loaded) == len(households) and all(h.synthetic and h.view for h in loaded)
    assert len(members) == sum(len(h.members) for h in households) and all(m.synthetic for m in members)
    assert events == events_before + len(households)
    sample = households[0]
    stored = next(h for h in loaded if h.id == sample.id)
    assert vault.open(stored.address_enc, table="households", column="address", row_id=sample.id) == sample.address


async def test_a_loaded_household_reads_like_any_other(registry):
    generator = _generator(registry)
    households = list(generator.households(0.002))
    await load(registry.db, registry.app.state.profile, registry.app.state.vault, households, today=generator.today)
    h = households[3]
    async with registry.client("city_admin") as admin:
        r = await admin.get(f"/api/v1/households/{h.id}")
        assert r.status_code == 200 and r.json()["synthetic"] is True
        assert r.json()["label_masked"].endswith("户")
    async with registry.client("town_worker", area=h.area_code[:9] + "000") as town:
        found = await town.post("/api/v1/members/lookup", json={"resident_id": h.members[0].resident_id})
    assert found.status_code == 200 and found.json()["household_id"] == h.id


def test_batch_records_mix(registry):
    generator = _generator(registry)
    batch = list(records(generator, 0.002, 2000))
    assert len({r["record_id"] for r in batch}) == 2000
    unchanged = sum(1 for r in batch if r["item"] == "basic_medical_insurance_enrolment")
    assert 1700 <= unchanged <= 1900


async def test_sealing_in_a_worker_process_loads_the_same(registry):
    generator = CityGenerator(registry.app.state.profile.areas, registry.app.state.profile.catalogue.code_lists, seed=7)
    households = list(generator.households(0.001))
    report = await load(registry.db, registry.app.state.profile, registry.app.state.vault, households,
                        today=generator.today, chunk=50, workers=1, settings=registry.settings)
    assert report.households == len(households) and report.events == len(households)
    async with registry.db.sessionmaker() as s:
        count = (await s.execute(select(func.count()).select_from(Member)
                                 .where(Member.household_id.in_([h.id for h in households])))).scalar_one()
    assert count == sum(len(h.members) for h in households)


async def test_the_demo_families_load_with_the_people_the_walkthroughs_name(registry):
    from pathlib import Path

    import pytest

    from registry.seed import _demo_households

    generator = _generator(registry)
    config = Path(__file__).resolve().parents[4] / "config" / "registry" / "demo-households.yaml"
    [family] = _demo_households(config, generator)
    assert family.area_code == "330106001001" and family.register_status == "dibao"
    assert [(m.resident_id, m.relation, m.sex) for m in family.members] == [
        ("330106199003070014", "head", "male"),
        ("330106199003070022", "spouse", "female"),
        ("330106201506010048", "child", "female"),
    ]
    assert family.facts and all(m.facts for m in family.members)
    # The generated city never hands a demo number to someone else.
    city = [m.resident_id for h in generator.households(0.002) for m in h.members]
    assert not set(city) & {m.resident_id for m in family.members}
    report = await load(registry.db, registry.app.state.profile, registry.app.state.vault, [family],
                        today=generator.today)
    assert report.households == 1 and report.members == 3
    with pytest.raises(ValueError, match="not a village"):
        generator.demo_household({"key": "x", "area_code": "330106001000", "register_status": "dibao",
                                  "address": "x", "members": []})
