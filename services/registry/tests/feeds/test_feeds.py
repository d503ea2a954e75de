"""Department feeds: per-record outcomes, idempotency by record id, leads, bad lines, crashes."""

import asyncio
import itertools
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from factories import (
    VILLAGE, create, deliver, events_since, feed_record, head_position, household, jsonl, member, resident_id,
)
from registry.app import create_app
from registry.facts.tables import FactRecord
from registry.leads.tables import Lead
from servicekit.testing import running_service

_ids = itertools.count(1)


def rid(prefix: str = "H") -> str:
    return f"{prefix}-{next(_ids):08d}"


async def _person(worker) -> tuple[str, dict]:
    number = resident_id()
    created = await create(worker, household(members=[member("head", resident_id=number)]))
    return number, created


async def _history_count(svc, source: str) -> int:
    async with svc.db.sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(FactRecord).where(FactRecord.source == source))).scalar_one()


async def test_catalogue_has_17_departments_and_54_items(registry, health_dept):
    body = (await health_dept.get("/api/v1/feeds/catalogue")).json()
    assert len(body["departments"]) == 17 and sum(len(d["items"]) for d in body["departments"]) == 54


async def test_batch_outcomes_and_one_event_per_household(registry, worker, health_dept):
    n1, h1 = await _person(worker)
    n2, h2 = await _person(worker)
    stranger = resident_id()
    before = await head_position(registry)
    records = [
        feed_record(rid(), "major_illness_diagnosis", n1, "cancer"),
        feed_record(rid(), "chronic_disease_registration", n1, "diabetes"),
        feed_record(rid(), "severe_mental_disorder_management", n2, True),
        feed_record(rid(), "major_illness_diagnosis", stranger, "leukemia", area_code=VILLAGE),
        feed_record(rid(), "wage_income", n1, 3000),  # the tax bureau's item
        feed_record(rid(), "pregnancy_registration", n2, "perhaps"),
    ]
    report = await deliver(health_dept, records)
    assert (report["lines"], report["applied"], report["unchanged"], report["rejected"], report["leads"]) == (6, 3, 0, 2, 1)
    assert report["households_changed"] == 2 and report["status"] == "completed"
    events = await events_since(registry, before)
    assert sorted(e.subject for e in events) == sorted([h1["id"], h2["id"]])
    assert {uuid.UUID(e.event_id).version for e in events} == {7}  # time-ordered, made for the chunk at once
    first = next(e for e in events if e.subject == h1["id"]).payload
    assert [t["code"] for t in first["triggers"]] == ["major_illness_diagnosed"]
    assert first["triggers"][0]["source"] == "health" and first["view"]["chronic_conditions_total"] == 1
    rejected = (await health_dept.get(f"/api/v1/feeds/batches/{report['id']}/rejections")).json()["items"]
    assert [(r["line"], r["reason_code"]) for r in rejected] == [(5, "item_of_another_department"), (6, "invalid_value")]
    assert n1 not in str(rejected) and "perhaps" not in str(rejected)


async def test_resending_a_batch_changes_nothing(registry, worker, health_dept):
    number, _ = await _person(worker)
    records = [feed_record(rid(), "major_illness_diagnosis", number, "uremia"),
               feed_record(rid(), "chronic_disease_registration", number, "asthma", "2026-01-10"),
               feed_record(rid(), "major_illness_diagnosis", resident_id(), "cancer")]
    await deliver(health_dept, records)
    history = await _history_count(registry, "health")
    before = await head_position(registry)
    again = await deliver(health_dept, records)
    assert (again["applied"], again["unchanged"], again["leads"]) == (0, 2, 1)
    assert await events_since(registry, before) == []
    assert await _history_count(registry, "health") == history
    async with registry.db.sessionmaker() as s:
        leads = (await s.execute(select(func.count()).select_from(Lead).where(Lead.record_id == records[2]["record_id"]))).scalar_one()
    assert leads == 1


async def test_an_older_record_resent_after_a_newer_one_does_not_revert(registry, worker, health_dept):
    number, created = await _person(worker)
    old = feed_record(rid(), "severe_mental_disorder_management", number, True, "2026-01-10")
    new = feed_record(rid(), "severe_mental_disorder_management", number, False, "2026-01-10")
    await deliver(health_dept, [old])
    await deliver(health_dept, [new])
    again = await deliver(health_dept, [old])
    assert again["unchanged"] == 1
    view = (await worker.get(f"/api/v1/households/{created['id']}")).json()["view"]
    assert view["severe_mental_illness"] is False


async def test_new_illness_after_death_is_rejected(worker, health_dept, police):
    number, _ = await _person(worker)
    died = date(2026, 1, 10)
    death = await deliver(police, [feed_record(rid(), "death_registration", number, str(died), str(died))])
    assert death["applied"] == 1
    report = await deliver(health_dept, [
        feed_record(rid(), "major_illness_diagnosis", number, "cancer", str(died + timedelta(days=3))),
        feed_record(rid(), "chronic_disease_registration", number, "asthma", str(died - timedelta(days=3))),
    ])
    assert (report["applied"], report["rejected"]) == (1, 1)
    rejected = (await health_dept.get(f"/api/v1/feeds/batches/{report['id']}/rejections")).json()["items"]
    assert [(r["line"], r["reason_code"]) for r in rejected] == [(1, "after_death")]


async def test_one_bad_line_in_the_middle(registry, worker, health_dept):
    people = [(await _person(worker))[0] for _ in range(4)]
    lines = [feed_record(rid(), "pregnancy_registration", n, True) for n in people[:2]]
    lines += ['{"record_id": "broken', feed_record(rid(), "pregnancy_registration", "330106199003070015", True)]
    lines += [feed_record(rid(), "pregnancy_registration", n, True) for n in people[2:]]
    report = await deliver(health_dept, lines)
    assert (report["lines"], report["applied"], report["rejected"]) == (6, 4, 2)
    rejected = (await health_dept.get(f"/api/v1/feeds/batches/{report['id']}/rejections")).json()["items"]
    assert [(r["line"], r["reason_code"]) for r in rejected] == [(3, "malformed"), (4, "resident_id.check_character")]


async def test_control_characters_in_a_line_are_that_line_rejected(registry, worker, health_dept):
    """A NUL in a record id (PostgreSQL stores none in text) or a bare carriage return in an
    unquoted CSV field failed the whole batch with a 500; now each is its own line's rejection and
    the lines around it are applied."""
    people = [(await _person(worker))[0] for _ in range(3)]
    lines = [feed_record(rid(), "pregnancy_registration", people[0], True),
             feed_record("H-\u0000-1", "pregnancy_registration", people[1], True),
             feed_record(rid(), "pregnancy_registration", people[2], True)]
    report = await deliver(health_dept, lines)
    assert (report["lines"], report["applied"], report["rejected"]) == (3, 2, 1), report
    rejected = (await health_dept.get(f"/api/v1/feeds/batches/{report['id']}/rejections")).json()["items"]
    assert [(r["line"], r["reason_code"], r["record_id"]) for r in rejected] == [(2, "invalid_record_id", None)]

    people = [(await _person(worker))[0] for _ in range(3)]
    body = ("record_id,item,resident_id,value,effective_date\n"
            f"{rid()},pregnancy_registration,{people[0]},true,2026-02-01\n"
            f"{rid()},pregnancy_registration,{people[1]}\r,true,2026-02-01\n"
            f"{rid()},pregnancy_registration,{people[2]},true,2026-02-01\n").encode()
    r = await health_dept.post("/api/v1/feeds/batches", content=body, headers={"Content-Type": "text/csv"})
    report = r.json()
    assert r.status_code == 201 and (report["lines"], report["applied"], report["rejected"]) == (3, 2, 1), r.text
    rejected = (await health_dept.get(f"/api/v1/feeds/batches/{report['id']}/rejections")).json()["items"]
    assert [(x["line"], x["reason_code"]) for x in rejected] == [(3, "malformed")]
    bad = await health_dept.post("/api/v1/feeds/batches", content=b"record_id,item\r,resident_id\n1,2,3\n",
                                 headers={"Content-Type": "text/csv"})
    assert bad.status_code == 422 and "header" in bad.json()["detail"]


async def test_csv_batch(worker, health_dept):
    number, created = await _person(worker)
    body = ("record_id,item,resident_id,value,effective_date\n"
            f"{rid()},chronic_disease_registration,{number},hypertension,2026-02-01\r\n"
            f"{rid()},pregnancy_registration,{number},true,2026-02-01\n").encode()
    r = await health_dept.post("/api/v1/feeds/batches", content=body, headers={"Content-Type": "text/csv"})
    assert r.status_code == 201 and r.json()["applied"] == 2, r.text
    bad = await health_dept.post("/api/v1/feeds/batches", content=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"})
    assert bad.status_code == 422


async def test_csv_quoted_fields_may_hold_line_breaks(registry, worker, health_dept):
    """A quoted field with a line break is one record, reported by its first line; the lines after
    it keep their numbers."""
    number, created = await _person(worker)
    before = await head_position(registry)
    body = ("record_id,item,resident_id,value,effective_date\n"
            f"{rid()},chronic_disease_registration,{number},hypertension,2026-02-01\n"
            f'"{rid()}",chronic_disease_registration,{number},"hyper\r\ntension, ""acute""",2026-02-01\n'
            f"{rid()},pregnancy_registration,{number},true,2026-02-01\n"
            f'"{rid()}",major_illness_diagnosis,{number},"cancer\n').encode()  # never closed
    r = await health_dept.post("/api/v1/feeds/batches", content=body, headers={"Content-Type": "text/csv"})
    report = r.json()
    assert r.status_code == 201 and (report["lines"], report["applied"], report["rejected"]) == (4, 2, 2), r.text
    rejected = (await health_dept.get(f"/api/v1/feeds/batches/{report['id']}/rejections")).json()["items"]
    assert [(x["line"], x["reason_code"]) for x in rejected] == [(3, "invalid_value"), (6, "malformed")]
    events = await events_since(registry, before)
    assert [e.subject for e in events] == [created["id"]]
    assert events[0].payload["view"]["pregnant_members"] == 1


async def test_only_departments_deliver_and_only_their_own_items(registry, worker, health_dept):
    number, _ = await _person(worker)
    body = jsonl([feed_record(rid(), "pregnancy_registration", number, True)])
    assert (await worker.post("/api/v1/feeds/batches", content=body,
                              headers={"Content-Type": "application/x-ndjson"})).status_code == 403
    async with registry.client("department", subject="no-dept") as nodept:
        assert (await nodept.post("/api/v1/feeds/batches", content=body,
                                  headers={"Content-Type": "application/x-ndjson"})).status_code == 403
    r = await health_dept.post("/api/v1/feeds/records", json=feed_record(rid(), "wage_income", number, 100))
    assert r.status_code == 403
    r = await health_dept.post("/api/v1/feeds/batches", content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


async def test_single_record(registry, worker, health_dept):
    number, created = await _person(worker)
    record = feed_record(rid(), "major_illness_diagnosis", number, "hemophilia")
    r = await health_dept.post("/api/v1/feeds/records", json=record)
    assert r.status_code == 200 and r.json() == {"record_id": record["record_id"], "outcome": "applied",
                                                 "household_id": created["id"]}
    assert (await health_dept.post("/api/v1/feeds/records", json=record)).json()["outcome"] == "unchanged"
    bad = await health_dept.post("/api/v1/feeds/records", json=record | {"resident_id": "330106199003070015"})
    assert bad.status_code == 422 and bad.json()["reason_code"] == "resident_id.check_character"
    extra = await health_dept.post("/api/v1/feeds/records", json=record | {"name": "x"})
    assert extra.status_code == 422


async def test_batch_resent_after_a_crash_half_way(registry, identity, worker):
    """Chunks of 2; the third chunk fails. Re-sending the whole batch applies the rest exactly once."""
    import registry.feeds.service as feed_service

    people = [(await _person(worker))[0] for _ in range(5)]
    records = [feed_record(rid("C"), "chronic_disease_registration", n, "asthma") for n in people]
    records += [feed_record(rid("C"), "pregnancy_registration", n, True) for n in people]
    records += [feed_record(rid("C"), "major_illness_diagnosis", resident_id(), "cancer")]
    settings = registry.settings.model_copy(update={"feed_chunk_records": 2})
    real = feed_service.apply_chunk
    calls = itertools.count(1)

    async def crash_on_third(*args, **kw):
        if next(calls) == 3:
            raise RuntimeError("the process died")
        return await real(*args, **kw)

    async with running_service(create_app, settings, identity) as svc:
        async with svc.client("department", dept="health", subject="dept-health") as dept:
            before_history = await _history_count(svc, "health")
            before = await head_position(svc)
            feed_service.apply_chunk = crash_on_third
            try:
                with pytest.raises(RuntimeError, match="the process died"):  # the in-process transport re-raises
                    await dept.post("/api/v1/feeds/batches", content=jsonl(records),
                                    headers={"Content-Type": "application/x-ndjson"})
            finally:
                feed_service.apply_chunk = real
            assert await _history_count(svc, "health") == before_history + 4  # two chunks committed
            report = await deliver(dept, records)
            assert (report["applied"], report["unchanged"], report["leads"]) == (6, 4, 1)
            assert await _history_count(svc, "health") == before_history + 10
            events = await events_since(svc, before)
            batches = (await dept.get("/api/v1/feeds/batches")).json()["items"]
    assert [b["status"] for b in batches[:2]] == ["completed", "failed"]
    assert len(events) == len({(e.subject, e.position) for e in events})
    views = {e.subject: e.payload["view"] for e in events}
    assert all(v["chronic_conditions_total"] == 1 and v["pregnant_members"] == 1 for v in views.values())
    assert len(views) == 5


async def test_a_chunk_whose_predecessor_failed_writes_nothing(registry, identity, worker, monkeypatch):
    """PostgreSQL: the chunk before fails while it is written, before this chunk (slow to be looked
    up) has started: this chunk must not write either, and the batch fails. Re-sent, both apply."""
    import registry.feeds.service as feed_service
    from registry.feeds import repository as feed_repository

    first, second = (await _person(worker))[0], (await _person(worker))[0]
    records = [feed_record(rid("F"), "pregnancy_registration", n, True) for n in (first, second)]
    real_members, real_look_up = feed_repository.update_members, feed_service.look_up
    failures = itertools.count()

    async def failing_once(session, rows):
        if next(failures) == 0:
            raise RuntimeError("the chunk's writes failed")
        return await real_members(session, rows)

    async def slow_look_up(session, fc, items, *args, **kw):
        if any(getattr(i, "number", None) == second for i in items):
            await asyncio.sleep(0.3)
        return await real_look_up(session, fc, items, *args, **kw)

    settings = registry.settings.model_copy(update={"feed_chunk_records": 1})
    async with running_service(create_app, settings, identity) as svc:
        async with svc.client("department", dept="health", subject="dept-health") as dept:
            before = await _history_count(svc, "health")
            monkeypatch.setattr(feed_repository, "update_members", failing_once)
            monkeypatch.setattr(feed_service, "look_up", slow_look_up)
            with pytest.raises(RuntimeError, match="the chunk's writes failed"):
                await dept.post("/api/v1/feeds/batches", content=jsonl(records),
                                headers={"Content-Type": "application/x-ndjson"})
            assert await _history_count(svc, "health") == before
            report = await deliver(dept, records)
    assert report["applied"] == 2


async def test_each_chunk_sees_the_chunks_before_it(registry, identity, worker):
    """Chunks of one record: on PostgreSQL the lookup of a chunk overlaps with the writes of the
    one before, and what that one changed must still decide the next (a death, then a report
    after it; a value set, then set back)."""
    dying, _ = await _person(worker)
    flipping, created = await _person(worker)
    died = date(2026, 1, 10)
    settings = registry.settings.model_copy(update={"feed_chunk_records": 1})
    async with running_service(create_app, settings, identity) as svc:
        async with svc.client("department", dept="public_security", subject="dept-police") as dept:
            first = await deliver(dept, [feed_record(rid(), "missing_person_report", flipping, False, "2026-01-01")])
            assert first["applied"] == 1
            report = await deliver(dept, [
                feed_record(rid(), "death_registration", dying, str(died), str(died)),
                feed_record(rid(), "missing_person_report", dying, True, str(died + timedelta(days=3))),
                feed_record(rid(), "missing_person_report", flipping, True, "2026-01-05"),
                feed_record(rid(), "missing_person_report", flipping, False, "2026-01-09"),
            ])
            rejected = (await dept.get(f"/api/v1/feeds/batches/{report['id']}/rejections")).json()["items"]
    assert (report["applied"], report["unchanged"], report["rejected"]) == (3, 0, 1)
    assert [(r["line"], r["reason_code"]) for r in rejected] == [(2, "after_death")]
    view = (await worker.get(f"/api/v1/households/{created['id']}")).json()["view"]
    assert view["members_missing"] == 0


async def test_the_next_chunk_is_worked_out_while_one_is_written(registry, identity, worker, monkeypatch):
    """PostgreSQL: chunk N+1 is classified, locked and its views made while chunk N is written;
    it writes only after N has committed, and what N locked it works out only then, on N's
    facts. Chunks of one record, the first chunk's writes held up: the second chunk (another
    household) gets its view meanwhile; the third sets back, on the same person, the value the
    second set, so it waits for the second to commit and must see its value. On SQLite the
    chunks go one after the other."""
    from registry.feeds import apply as feed_apply
    from registry.feeds import repository as feed_repository

    missing, first = await _person(worker)
    flipping, second = await _person(worker)
    steps: list[tuple[str, str]] = []
    real_views, real_members, real_households = (feed_apply._views_and_events, feed_repository.update_members,
                                                 feed_repository.update_households)

    async def views(fc, fresh, *args):
        steps.append(("view", ",".join(sorted(fresh.households))))
        return await real_views(fc, fresh, *args)

    async def members(session, rows):
        if not steps or steps[-1][0] == "view" and not any(s[0] == "written" for s in steps):
            await asyncio.sleep(0.5)  # the first chunk's writes take their time
        return await real_members(session, rows)

    async def households(session, rows):
        await real_households(session, rows)
        steps.append(("written", ",".join(sorted(r["_id"] for r in rows))))

    monkeypatch.setattr(feed_apply, "_views_and_events", views)
    monkeypatch.setattr(feed_repository, "update_members", members)
    monkeypatch.setattr(feed_repository, "update_households", households)
    settings = registry.settings.model_copy(update={"feed_chunk_records": 1})
    async with running_service(create_app, settings, identity) as svc:
        async with svc.client("department", dept="public_security", subject="dept-police") as dept:
            report = await deliver(dept, [
                feed_record(rid(), "missing_person_report", missing, True, "2026-01-05"),
                feed_record(rid(), "missing_person_report", flipping, True, "2026-01-05"),
                feed_record(rid(), "missing_person_report", flipping, False, "2026-01-09"),
            ])
    assert (report["applied"], report["unchanged"], report["households_changed"]) == (3, 0, 3)
    a, b = first["id"], second["id"]
    if registry.db.is_postgres:
        assert steps == [("view", a), ("view", b), ("written", a), ("written", b), ("view", b), ("written", b)]
    else:
        assert steps == [("view", a), ("written", a), ("view", b), ("written", b), ("view", b), ("written", b)]
    assert (await worker.get(f"/api/v1/households/{a}")).json()["view"]["members_missing"] == 1
    assert (await worker.get(f"/api/v1/households/{b}")).json()["view"]["members_missing"] == 0


async def test_a_record_taken_before_stays_unchanged_after_a_newer_value_in_the_chunk_before(
        registry, identity, worker, monkeypatch):
    """A re-sent record is unchanged even when the chunk before set another value (same effective
    date: the later record wins, so by its value alone it would apply again). Its chunk was
    looked up (and looked for in the fact history) before that chunk committed, when the record
    still repeated the value held, so the lookup settled it; read again from what the chunk before
    wrote, it would change something, and is looked for in the history then."""
    from registry.feeds import repository as feed_repository

    number, created = await _person(worker)
    taken = feed_record(rid(), "missing_person_report", number, True, "2026-01-05")
    real_members = feed_repository.update_members

    async def slow(session, rows):
        await asyncio.sleep(0.3)  # the next chunk's lookup runs before this one commits
        return await real_members(session, rows)

    settings = registry.settings.model_copy(update={"feed_chunk_records": 1})
    async with running_service(create_app, settings, identity) as svc:
        async with svc.client("department", dept="public_security", subject="dept-police") as dept:
            assert (await deliver(dept, [taken]))["applied"] == 1
            monkeypatch.setattr(feed_repository, "update_members", slow)
            report = await deliver(dept, [feed_record(rid(), "missing_person_report", number, False, "2026-01-05"),
                                          taken])
    assert (report["applied"], report["unchanged"]) == (1, 1)
    assert (await worker.get(f"/api/v1/households/{created['id']}")).json()["view"]["members_missing"] == 0


async def test_a_batch_wakes_the_readers_waiting_on_the_feed(registry, worker, health_dept):
    """The batch's events are written by COPY, not by the kit's publish: the feed's long-poll
    waiters are still woken when a chunk with events commits."""
    number, _ = await _person(worker)
    waiting = asyncio.create_task(registry.app.state.feed_notifier.wait(30))
    await asyncio.sleep(0)
    before = await head_position(registry)
    report = await deliver(health_dept, [feed_record(rid(), "pregnancy_registration", number, True)])
    await asyncio.wait_for(waiting, 5)
    assert report["households_changed"] == 1
    [event] = await events_since(registry, before)
    assert event.type == "household.changed" and event.payload["view"]["pregnant_members"] == 1


async def test_reports_and_health_for_officers(registry, health_dept):
    report = await deliver(health_dept, [feed_record(rid(), "major_illness_diagnosis", resident_id(), "cancer")])
    async with registry.client("department", dept="tax") as tax_dept:
        tax_report = await deliver(tax_dept, [feed_record(rid(), "wage_income", resident_id(), 1200.0)])
    async with registry.client("city_admin") as admin, registry.client("department", dept="tax") as tax_single:
        health = (await admin.get("/api/v1/feeds/health")).json()
        batches = await admin.get("/api/v1/feeds/batches", params={"department": "health"})
        # No department named: every department's deliveries, newest first; a batch by its id alone.
        everyone = (await admin.get("/api/v1/feeds/batches")).json()["items"]
        by_id = await admin.get(f"/api/v1/feeds/batches/{report['id']}")
        rejected = await admin.get(f"/api/v1/feeds/batches/{report['id']}/rejections")
        elsewhere = await admin.get(f"/api/v1/feeds/batches/{report['id']}", params={"department": "tax"})
        one = await tax_single.post("/api/v1/feeds/records", json=feed_record(rid(), "wage_income", resident_id(), 900.0))
        singles = (await admin.get("/api/v1/feeds/batches", params={"format": "single"})).json()["items"]
        streamed = (await admin.get("/api/v1/feeds/batches", params={"format": "jsonl"})).json()["items"]
        unknown = await admin.get("/api/v1/feeds/batches", params={"format": "xml"})
    assert one.status_code == 200 and singles[0]["department"] == "tax" and {b["format"] for b in singles} == {"single"}
    assert {b["id"] for b in streamed} >= {report["id"], tax_report["id"]} and {b["format"] for b in streamed} == {"jsonl"}
    assert unknown.status_code == 422
    assert [b["id"] for b in everyone][:2] == [tax_report["id"], report["id"]]
    assert by_id.status_code == 200 and by_id.json()["department"] == "health"
    assert rejected.status_code == 200 and elsewhere.status_code == 404
    assert {b["department"] for b in batches.json()["items"]} == {"health"}
    by_code = {h["department"]: h for h in health}
    assert len(by_code) == 17 and by_code["health"]["late"] is False and by_code["health"]["leads_30d"] >= 1
    assert by_code["tax"]["late"] is False and by_code["tax"]["deliveries_30d"] == 1
    assert by_code["housing"]["late"] is True and by_code["housing"]["last_delivery"] is None
    assert batches.status_code == 200 and batches.json()["items"]
    async with registry.client("department", dept="tax") as tax:
        assert (await tax.get("/api/v1/feeds/batches", params={"department": "health"})).status_code == 404
    assert (await health_dept.get("/api/v1/feeds/health")).status_code == 403


async def test_chunks_are_applied_with_the_collector_paused(registry, worker, health_dept, monkeypatch):
    """A chunk's objects are acyclic and die with it: the cyclic collector runs between chunks,
    not within them, and is enabled again after the batch, even when a chunk fails."""
    import gc

    import registry.feeds.service as feed_service

    number, _ = await _person(worker)
    real = feed_service.apply_chunk
    seen: list[bool] = []

    async def watching(*args, **kw):
        seen.append(gc.isenabled())
        return await real(*args, **kw)

    monkeypatch.setattr(feed_service, "apply_chunk", watching)
    report = await deliver(health_dept, [feed_record(rid(), "chronic_disease_registration", number, "asthma")])
    assert report["applied"] == 1 and seen == [False] and gc.isenabled()

    async def failing(*args, **kw):
        raise RuntimeError("the chunk failed")

    monkeypatch.setattr(feed_service, "apply_chunk", failing)
    with pytest.raises(RuntimeError, match="the chunk failed"):
        await health_dept.post("/api/v1/feeds/batches", content=jsonl([feed_record(rid(), "pregnancy_registration", number, True)]),
                               headers={"Content-Type": "application/x-ndjson"})
    assert gc.isenabled()


async def test_the_pipeline_collects_the_young_generation_every_so_many_chunks(registry, identity, worker, monkeypatch):
    """PostgreSQL: chunks overlap, so the collector's pause lasts the whole pipeline; its youngest
    generation is collected every ``COLLECT_EVERY`` chunks, after a commit, and the collector is
    enabled again after the batch. On SQLite the chunks go one at a time and the collector runs
    between them as usual (no collection asked for)."""
    import gc

    import registry.feeds.service as feed_service

    people = [(await _person(worker))[0] for _ in range(5)]
    asked: list[int] = []
    real = gc.collect

    def collect(generation: int = 2) -> int:
        asked.append(generation)
        return real(generation)

    monkeypatch.setattr(feed_service, "COLLECT_EVERY", 2)
    monkeypatch.setattr(gc, "collect", collect)
    settings = registry.settings.model_copy(update={"feed_chunk_records": 1})
    async with running_service(create_app, settings, identity) as svc:
        async with svc.client("department", dept="health", subject="dept-health") as dept:
            asked.clear()
            report = await deliver(dept, [feed_record(rid(), "pregnancy_registration", n, True) for n in people])
            during = list(asked)
    assert report["applied"] == 5 and gc.isenabled()
    assert during == ([0, 0] if registry.db.is_postgres else [])


async def test_views_and_payloads_stay_in_the_row(registry):
    """PostgreSQL: a batch rewrites households' views and writes events; their JSON stays in the
    row (compressed) rather than going to the TOAST table (registry_0007); members' pages keep
    room for a new version of a row, so a batch's update of a member is HOT (registry_0009).
    SQLite has no such parameters: there the migrations change nothing and are recorded as
    applied."""
    from sqlalchemy import text

    from servicekit.migrations import VERSION_TABLE

    async with registry.db.sessionmaker() as s:
        if not registry.db.is_postgres:
            version = (await s.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).scalar_one()
            assert version >= "registry_0009"
            return
        options = dict((await s.execute(text(
            "SELECT c.relname, array_to_string(c.reloptions, ',') FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relname IN ('households', 'outbox', 'members')"
        ))).all())
    assert options == {"households": "toast_tuple_target=4080", "outbox": "toast_tuple_target=4080",
                       "members": "fillfactor=85"}


async def test_a_chunk_is_checked_in_slices(registry, worker, health_dept, monkeypatch):
    """Lines are checked a slice at a time (between turns of the chunk being applied): every
    line is still checked once, in order, with its own line number and the person's index."""
    import registry.feeds.service as feed_service

    monkeypatch.setattr(feed_service, "CHECK_SLICE", 2)
    people = [(await _person(worker))[0] for _ in range(3)]
    records = [feed_record(rid(), "chronic_disease_registration", n, "asthma") for n in people]
    records.insert(2, feed_record(rid(), "wage_income", people[0], 3000))  # line 3: another department's item
    records.append(feed_record(rid(), "pregnancy_registration", people[2], True))
    report = await deliver(health_dept, records)
    assert (report["lines"], report["applied"], report["rejected"], report["leads"]) == (5, 4, 1, 0)
    rejected = (await health_dept.get(f"/api/v1/feeds/batches/{report['id']}/rejections")).json()["items"]
    assert [(r["line"], r["reason_code"]) for r in rejected] == [(3, "item_of_another_department")]


async def test_a_batch_merges_the_changed_entries_into_the_stored_documents(registry, worker, police, health_dept):
    """Only the entries a chunk changed travel to PostgreSQL (merged into the stored fact
    documents); every other entry of the member's and the household's documents stays."""
    from registry.households.tables import Household
    from registry.members.tables import Member

    number = resident_id()
    created = await create(worker, household(members=[member("head", resident_id=number)]))
    await deliver(police, [feed_record(rid(), "vehicle_registration", number, 1, "2026-01-01"),
                           feed_record(rid(), "domestic_violence_warning", number, True, "2026-01-01"),
                           feed_record(rid(), "missing_person_report", number, False, "2026-01-01")])
    await deliver(health_dept, [feed_record(rid(), "pregnancy_registration", number, True, "2026-01-01")])
    async with registry.db.sessionmaker() as s:
        before_h = (await s.execute(select(Household.facts).where(Household.id == created["id"]))).scalar_one()
        before_m = (await s.execute(select(Member.facts).where(Member.household_id == created["id"]))).scalar_one()
    report = await deliver(police, [feed_record(rid(), "vehicle_registration", number, 2, "2026-01-05"),
                                    feed_record(rid(), "missing_person_report", number, True, "2026-01-05")])
    assert report["applied"] == 2
    async with registry.db.sessionmaker() as s:
        after_h = (await s.execute(select(Household.facts).where(Household.id == created["id"]))).scalar_one()
        after_m = (await s.execute(select(Member.facts).where(Member.household_id == created["id"]))).scalar_one()
    assert {k: v for k, v in after_h.items() if k != "vehicles"} == {k: v for k, v in before_h.items() if k != "vehicles"}
    assert after_h["vehicles"]["v"] == 2 and after_h["vehicles"]["prev"] == 1
    assert {k: v for k, v in after_m.items() if k != "missing_person"} == {k: v for k, v in before_m.items() if k != "missing_person"}
    assert after_m["pregnant"]["v"] is True and after_m["missing_person"]["prev"] is False
    assert after_m["missing_person"]["v"] is True and after_h["domestic_violence"]["v"] is True
