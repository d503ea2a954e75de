"""Births delivered by the health commission (出生医学证明): a newborn whose parent is a member of
an open household joins it; otherwise a lead; never placed twice."""

import asyncio
import itertools
from datetime import date, timedelta

from sqlalchemy import func, select, text

from factories import (
    VILLAGE, create, deliver, events_since, feed_record, head_position, household, member, resident_id,
    until_waiting_for_a_lock,
)
from registry.leads.tables import Lead
from servicekit.audit import AuditAction
from servicekit.tables import AuditRecord
from registry.members.tables import Member

_ids = itertools.count(1)
BIRTH = "birth_medical_certificate"


def rid() -> str:
    return f"BIRTH-{next(_ids):08d}"


def newborn(days_old: int = 30) -> tuple[str, date]:
    born = date.today() - timedelta(days=days_old)
    return resident_id(born, sex="male"), born


def birth(number: str, born: date, parent: str | None, **kw) -> dict:
    record = feed_record(rid(), BIRTH, number, born.isoformat(), born.isoformat(), **kw)
    if parent is not None:
        record["parent_resident_id"] = parent
    return record


async def _family(worker, *relations: str) -> tuple[dict, list[str]]:
    """A household with a member per relation (the first is the head); their ID numbers."""
    numbers = [resident_id(date(1990, 1, 1) + timedelta(days=k)) for k in range(len(relations))]
    created = await create(worker, household(members=[member(rel, resident_id=n) for rel, n in zip(relations, numbers)]))
    return created, numbers


async def _members(worker, household_id: str) -> list[dict]:
    return (await worker.get(f"/api/v1/households/{household_id}")).json()["members"]


async def _rejections(dept, report: dict) -> list[dict]:
    return (await dept.get(f"/api/v1/feeds/batches/{report['id']}/rejections")).json()["items"]


async def _count(svc, table, *where) -> int:
    async with svc.db.sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(table).where(*where))).scalar_one()


async def test_a_birth_in_the_middle_of_a_batch_joins_the_parents_household(registry, worker, health_dept):
    family, (head, spouse) = await _family(worker, "head", "spouse")
    other, (someone,) = await _family(worker, "head")
    baby, born = newborn()
    before = await head_position(registry)
    records = [
        feed_record(rid(), "chronic_disease_registration", someone, "asthma"),
        feed_record(rid(), "pregnancy_registration", spouse, True, "2026-01-01"),
        birth(baby, born, spouse, name="张小宝"),
        feed_record(rid(), "chronic_disease_registration", head, "diabetes"),
    ]
    report = await deliver(health_dept, records)
    assert (report["lines"], report["applied"], report["unchanged"], report["rejected"], report["leads"]) == (4, 4, 0, 0, 0)
    assert report["households_changed"] == 2

    events = await events_since(registry, before)
    assert sorted(e.subject for e in events) == sorted([family["id"], other["id"]])  # one per household
    event = next(e for e in events if e.subject == family["id"]).payload
    added = next(m for m in await _members(worker, family["id"]) if m["resident_id_masked"] not in
                 {m0["resident_id_masked"] for m0 in family["members"]})
    born_trigger = next(t for t in event["triggers"] if t["code"] == "member_born")
    assert born_trigger == {"code": "member_born", "member_ref": added["id"], "effective_date": born.isoformat(),
                            "source": "health", "detail": {}}
    assert {t["code"] for t in event["triggers"]} == {"member_born"}  # pregnancy and diabetes fire nothing
    assert event["change"] == "members_changed" and event["version"] == family["version"] + 1
    assert event["view"]["members_born_12m"] == 1 and event["view"]["chronic_conditions_total"] == 1
    assert added["relation"] == "child" and added["name_masked"] == "张*宝" and added["age"] == 0

    # Sealed and indexed as a worker-added member: found by ID number, opened by a reveal.
    found = await worker.post("/api/v1/members/lookup", json={"resident_id": baby})
    assert found.status_code == 200 and found.json()["id"] == added["id"]
    revealed = (await worker.post(f"/api/v1/members/{added['id']}/reveal", json={"purpose": "verification"})).json()
    assert (revealed["resident_id"], revealed["name"], revealed["birth_date"]) == (baby, "张小宝", born.isoformat())

    history = (await worker.get(f"/api/v1/households/{family['id']}/fact-history")).json()["items"]
    entry = next(h for h in history if h["record_id"] == records[2]["record_id"])
    assert (entry["fact"], entry["source"], entry["effective_date"]) == ("born_on", "health", born.isoformat())

    # The department wrote a person's ID number and name: audited, as a worker adding a member is.
    async with registry.db.sessionmaker() as s:
        written = (await s.execute(select(AuditRecord).where(
            AuditRecord.resource_id == added["id"], AuditRecord.action == AuditAction.write.value))).scalars().all()
    assert [(w.role, w.resource_type, w.area_code) for w in written] == [("department", "member", VILLAGE)]
    assert {"resident_id", "name"} <= set(written[0].fields)


async def test_the_trigger_has_the_shape_of_a_worker_added_newborn(registry, worker, health_dept):
    by_worker, _ = await _family(worker, "head")
    baby, born = newborn()
    before = await head_position(registry)
    r = await worker.post(f"/api/v1/households/{by_worker['id']}/members", headers={"If-Match": '"v1"'},
                          json=member("child", resident_id=baby))
    assert r.status_code == 201, r.text
    [worker_event] = await events_since(registry, before)
    by_feed, (parent,) = await _family(worker, "head")
    baby2, born2 = newborn(40)
    before = await head_position(registry)
    await deliver(health_dept, [birth(baby2, born2, parent)])
    [feed_event] = await events_since(registry, before)
    w = next(t for t in worker_event.payload["triggers"] if t["code"] == "member_born")
    f = next(t for t in feed_event.payload["triggers"] if t["code"] == "member_born")
    assert w.keys() == f.keys() and (w["source"], f["source"]) == ("worker", "health")
    assert worker_event.payload["change"] == feed_event.payload["change"] == "members_changed"
    assert worker_event.payload.keys() == feed_event.payload.keys()


async def test_resending_a_birth_changes_nothing(registry, worker, health_dept):
    family, (head,) = await _family(worker, "head")
    baby, born = newborn()
    records = [feed_record(rid(), "pregnancy_registration", head, False), birth(baby, born, head, name="李小宝")]
    first = await deliver(health_dept, records)
    assert (first["applied"], first["households_changed"]) == (2, 1)
    members = await _members(worker, family["id"])
    before = await head_position(registry)
    again = await deliver(health_dept, records)
    assert (again["applied"], again["unchanged"], again["rejected"], again["households_changed"]) == (0, 2, 0, 0)
    # The same birth under another record id, or without its parent, changes nothing either.
    other = await deliver(health_dept, [birth(baby, born, head), birth(baby, born, None)])
    assert (other["applied"], other["unchanged"], other["leads"]) == (0, 2, 0)
    assert await events_since(registry, before) == []
    assert await _members(worker, family["id"]) == members
    index = registry.app.state.vault.resident_index(baby)
    assert await _count(registry, Member, Member.resident_bidx == index) == 1


async def test_the_newborns_relation_follows_the_parents(worker, health_dept):
    family, numbers = await _family(worker, "head", "spouse", "child", "child_in_law", "parent", "sibling")
    expected = {"head": "child", "spouse": "child", "child": "grandchild", "child_in_law": "grandchild",
                "parent": "other", "sibling": "other"}
    babies = {}
    for k, (relation, parent) in enumerate(zip(expected, numbers, strict=True)):
        baby, born = newborn(10 + k)
        babies[relation] = baby
        r = await health_dept.post("/api/v1/feeds/records", json=birth(baby, born, parent))
        assert r.status_code == 200 and r.json()["outcome"] == "applied" and r.json()["household_id"] == family["id"], r.text
    for relation, baby in babies.items():
        found = (await worker.post("/api/v1/members/lookup", json={"resident_id": baby})).json()
        assert found["relation"] == expected[relation], relation


async def test_a_newborn_without_a_known_parent_in_an_open_household_is_a_lead(registry, worker, health_dept):
    closed, (closed_parent,) = await _family(worker, "head")
    r = await worker.post(f"/api/v1/households/{closed['id']}/close", headers={"If-Match": '"v1"'},
                          json={"reason": "全户迁出本市"})
    assert r.status_code == 200, r.text
    stranger = resident_id()
    babies = [newborn(5 + k) for k in range(3)]
    records = [birth(*babies[0], stranger, area_code=VILLAGE), birth(*babies[1], None), birth(*babies[2], closed_parent)]
    before = await head_position(registry)
    report = await deliver(health_dept, records)
    assert (report["applied"], report["leads"], report["rejected"], report["households_changed"]) == (0, 3, 0, 0)
    assert await events_since(registry, before) == []
    leads = await _count(registry, Lead, Lead.record_id.in_([x["record_id"] for x in records]), Lead.item == BIRTH)
    assert leads == 3
    again = await deliver(health_dept, records)
    assert again["leads"] == 3
    assert await _count(registry, Lead, Lead.record_id.in_([x["record_id"] for x in records])) == 3  # once per record
    for baby, _ in babies:
        assert (await worker.post("/api/v1/members/lookup", json={"resident_id": baby})).status_code == 404


async def test_a_newborn_already_in_another_household_is_rejected_without_saying_where(registry, worker, health_dept):
    baby, born = newborn()
    elsewhere, _ = await _family(worker, "head")
    r = await worker.post(f"/api/v1/households/{elsewhere['id']}/members", headers={"If-Match": '"v1"'},
                          json=member("child", resident_id=baby))
    assert r.status_code == 201, r.text
    family, (parent,) = await _family(worker, "head")
    before = await head_position(registry)
    report = await deliver(health_dept, [birth(baby, born, parent)])
    assert (report["applied"], report["rejected"], report["households_changed"]) == (0, 1, 0)
    [rejected] = await _rejections(health_dept, report)
    assert rejected["reason_code"] == "newborn_placed_elsewhere"
    assert elsewhere["id"] not in str(rejected) and baby not in str(rejected) and parent not in str(rejected)
    assert await events_since(registry, before) == []
    assert len(await _members(worker, family["id"])) == 1
    single = await health_dept.post("/api/v1/feeds/records", json=birth(baby, born, parent))
    assert single.status_code == 422 and single.json()["reason_code"] == "newborn_placed_elsewhere"
    assert elsewhere["id"] not in single.text and baby not in single.text


async def test_birth_records_are_checked_without_quoting_them(worker, health_dept):
    family, (parent,) = await _family(worker, "head")
    baby, born = newborn()
    bad_parent = parent[:17] + ("0" if parent[17] != "0" else "1")
    records = [
        birth(baby, born + timedelta(days=1), parent),  # disagrees with the ID number
        birth(baby, born, bad_parent),
        birth(baby, born, baby),
        birth(baby, born, parent, name=""),  # an empty name is no name
        feed_record(rid(), "pregnancy_registration", parent, True, parent_resident_id=parent),
        feed_record(rid(), "pregnancy_registration", parent, True, name="王五"),
        feed_record(rid(), BIRTH, baby, "yesterday", born.isoformat(), parent_resident_id=parent),
    ]
    report = await deliver(health_dept, records)
    assert (report["applied"], report["rejected"]) == (1, 6)
    rejected = await _rejections(health_dept, report)
    assert [(r["line"], r["reason_code"]) for r in rejected] == [
        (1, "birth_date_mismatch"), (2, "parent_resident_id.check_character"), (3, "parent_is_newborn"),
        (5, "unknown_field"), (6, "unknown_field"), (7, "invalid_value")]
    text = str(rejected)
    assert baby not in text and parent not in text and bad_parent not in text and born.isoformat() not in text
    single = await health_dept.post("/api/v1/feeds/records", json=birth(resident_id(born), born - timedelta(days=2), parent))
    assert single.status_code == 422 and single.json()["reason_code"] == "birth_date_mismatch"
    assert born.isoformat() not in single.text


async def test_a_birth_in_csv(worker, health_dept):
    family, (parent,) = await _family(worker, "head")
    baby, born = newborn()
    body = ("record_id,item,resident_id,value,effective_date,parent_resident_id,name\n"
            f"{rid()},{BIRTH},{baby},{born},{born},{parent},陈小宝\n"
            f"{rid()},pregnancy_registration,{parent},false,2026-02-01,,\n").encode()
    r = await health_dept.post("/api/v1/feeds/batches", content=body, headers={"Content-Type": "text/csv"})
    assert r.status_code == 201 and (r.json()["applied"], r.json()["rejected"]) == (2, 0), r.text
    assert len(await _members(worker, family["id"])) == 2


async def test_a_birth_lead_opens_a_household_like_any_lead(registry, worker, health_dept):
    """A newborn whose parent is unknown waits as a lead; a worker opening a household from it
    gets the newborn as its member, the birth record kept as a fact with its provenance."""
    baby, born = newborn()
    record = birth(baby, born, resident_id(), area_code=VILLAGE)
    assert (await deliver(health_dept, [record]))["leads"] == 1
    leads = (await worker.get("/api/v1/leads", params={"limit": 100})).json()["items"]
    [lead] = [x for x in leads if x["record_id"] == record["record_id"]]
    assert lead["item"] == BIRTH and baby not in str(lead)
    r = await worker.post(f"/api/v1/leads/{lead['id']}/open", headers={"If-Match": '"v1"'},
                          json={"address": "合成路 9 号", "name": "周小宝"})
    assert r.status_code == 201, r.text
    [added] = r.json()["household"]["members"]
    assert added["age"] == 0
    assert [(f["fact"], f["value"], f["source"], f["record_id"]) for f in added["facts"]] == [
        ("born_on", born.isoformat(), "health", record["record_id"])]


async def test_a_newborn_placed_meanwhile_is_not_inserted_twice(registry, worker):
    """The unique blind index is the last guard (a worker adding the newborn elsewhere between
    the feed's read and its insert): the insert is refused, the transaction goes on."""
    from registry.feeds import repository
    from registry.members.service import sealed_member
    from servicekit.resident_id import validate
    from servicekit.tables import utcnow

    family, (parent,) = await _family(worker, "head")
    baby, _ = newborn()
    r = await worker.post(f"/api/v1/households/{family['id']}/members", headers={"If-Match": '"v1"'},
                          json=member("child", resident_id=baby))
    assert r.status_code == 201, r.text
    vault = registry.app.state.vault
    index = vault.resident_index(baby)
    async with registry.db.sessionmaker() as s:
        again = sealed_member(vault, utcnow(), family["id"], validate(baby), index, None, None, "child", {})
        assert await repository.add_member(s, again) is False
        assert set(await repository.placed(s, [index, vault.resident_index(parent)])) == {
            index, vault.resident_index(parent)}
        await s.rollback()
    assert await _count(registry, Member, Member.resident_bidx == index) == 1


async def test_records_about_the_newborn_in_the_same_batch_are_not_leads(registry, identity, worker, health_dept):
    """In the birth's chunk, and in the chunks after it (chunks of one record: on PostgreSQL the
    lookup of a chunk overlaps with the writes of the one before)."""
    from registry.app import create_app
    from servicekit.testing import running_service

    family, (parent,) = await _family(worker, "head")
    baby, born = newborn()
    before = await head_position(registry)
    report = await deliver(health_dept, [feed_record(rid(), "chronic_disease_registration", baby, "asthma"),
                                         birth(baby, born, parent)])
    assert (report["applied"], report["leads"], report["households_changed"]) == (2, 0, 1)
    [event] = await events_since(registry, before)
    assert event.payload["view"]["chronic_conditions_total"] == 1
    assert [t["code"] for t in event.payload["triggers"]] == ["member_born"]

    other, (parent2,) = await _family(worker, "head")
    baby2, born2 = newborn(50)
    settings = registry.settings.model_copy(update={"feed_chunk_records": 1})
    async with running_service(create_app, settings, identity) as svc:
        async with svc.client("department", dept="health", subject="dept-health") as dept:
            report = await deliver(dept, [birth(baby2, born2, parent2),
                                          feed_record(rid(), "chronic_disease_registration", baby2, "asthma"),
                                          feed_record(rid(), "major_illness_diagnosis", baby2, "leukemia")])
    assert (report["applied"], report["leads"], report["rejected"]) == (3, 0, 0)
    view = (await worker.get(f"/api/v1/households/{other['id']}")).json()["view"]
    assert view["chronic_conditions_total"] == 1 and view["major_illness_members"] == 1


async def test_a_birth_and_a_close_of_its_household_wait_for_each_other_without_deadlock(registry, worker, health_dept):
    """A birth locks its household's members before the household, as a close does (it releases
    them) and as the rest of the chunk does: a chunk with a birth and a record about another
    member of that household, and a close of it meanwhile, go one after the other. (Until the
    twelfth session the birth locked the household first: the chunk then waited for the member
    the close held while the close waited for the household, and PostgreSQL aborted one.)"""
    if not registry.db.is_postgres:  # SQLite: one writer at a time, no row locks to order
        return
    family, (head, spouse) = await _family(worker, "head", "spouse")
    hid = family["id"]
    baby, born = newborn()
    async with registry.db.engine.connect() as closing:  # what a close does, step by step
        await closing.execute(text("BEGIN"))
        await closing.execute(text("SELECT id FROM members WHERE household_id = :h ORDER BY id FOR UPDATE"), {"h": hid})
        delivery = asyncio.create_task(deliver(health_dept, [
            birth(baby, born, spouse), feed_record(rid(), "chronic_disease_registration", head, "diabetes")]))
        await until_waiting_for_a_lock(registry, delivery)
        # The chunk waits for the members holding nothing of the household: the close takes it
        # at once (NOWAIT: no waiting for PostgreSQL to find a deadlock and abort the chunk,
        # which its retry would then heal).
        await closing.execute(text("SELECT id FROM households WHERE id = :h FOR UPDATE NOWAIT"), {"h": hid})
        await closing.execute(text("COMMIT"))  # (a real close would have released the members)
    report = await delivery
    assert (report["status"], report["applied"], report["rejected"]) == ("completed", 2, 0), report
    assert len(await _members(worker, hid)) == 3

