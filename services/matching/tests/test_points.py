"""春风点数: enrolment, credits, redemptions that never go below zero and apply once per
Idempotency-Key, the monthly allowance, statements, the family's own view."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from servicekit.resident_id import generate
from servicekit.tables import AuditRecord

from helpers import CITIZEN_ID, OTHER_DISTRICT_VILLAGE, VILLAGE, assert_problem, client, key
from matching.points import repository
from matching.points.tables import PointsEntry

SUPERMARKET = "DC330106"  # the fixture's district centre runs a charity supermarket
NOT_SUPERMARKET = "TS330106001"


async def enrol(svc, *, level=1, holder: str | None = None, area=VILLAGE) -> dict:
    async with client(svc, "village_worker", area=area) as c:
        body = {"household_id": str(uuid.uuid4()), "area_code": area, "level": level}
        if holder:
            body["holder_resident_id"] = holder
        r = await c.post("/api/v1/points/accounts", json=body, headers=key())
        assert r.status_code == 201, r.text
        return r.json()


async def credit(svc, account_id: str, amount: int) -> None:
    async with client(svc, "town_worker") as c:
        r = await c.post(f"/api/v1/points/accounts/{account_id}/credits", json={"amount": amount, "note": "慰问"})
        assert r.status_code == 201, r.text


async def balance(svc, account_id: str) -> int:
    async with client(svc, "city_admin") as c:
        return (await c.get(f"/api/v1/points/accounts/{account_id}")).json()["balance"]


async def ledger_matches_balance(svc, account_id: str) -> bool:
    current = await balance(svc, account_id)
    async with svc.db.sessionmaker() as s:  # SQLite: one writer, so ask the API first, then read
        return await repository.ledger_sum(s, account_id) == current


def basket(**items: int) -> list[dict]:
    return [{"good": g, "quantity": q} for g, q in items.items()]


async def test_redemption_bigger_than_the_balance_changes_nothing(svc):
    account = await enrol(svc)
    await credit(svc, account["id"], 50)
    async with client(svc, "town_worker") as c:
        r = await c.post(f"/api/v1/points/accounts/{account['id']}/redemptions", headers=key(),
                         json={"site_code": SUPERMARKET, "items": basket(rice_5kg=1, oil_5l=1)})  # 100 > 50
        body = assert_problem(r, 409, "insufficient-points")
        assert "50" not in body["detail"]
    assert await balance(svc, account["id"]) == 50
    assert await ledger_matches_balance(svc, account["id"])


async def test_a_retried_redemption_is_applied_once(svc):
    account = await enrol(svc)
    await credit(svc, account["id"], 200)
    headers = key()
    body = {"site_code": SUPERMARKET, "items": basket(rice_5kg=2)}
    async with client(svc, "village_worker") as c:
        first = await c.post(f"/api/v1/points/accounts/{account['id']}/redemptions", json=body, headers=headers)
        again = await c.post(f"/api/v1/points/accounts/{account['id']}/redemptions", json=body, headers=headers)
        assert first.status_code == 201 and again.status_code == 201
        assert again.json() == first.json() and again.headers.get("idempotent-replayed") == "true"
        other = await c.post(f"/api/v1/points/accounts/{account['id']}/redemptions", headers=headers,
                             json={**body, "items": basket(rice_5kg=1)})
        assert_problem(other, 422)  # the same key with another body
        assert_problem(await c.post(f"/api/v1/points/accounts/{account['id']}/redemptions", json=body), 400,
                       "idempotency-key-required")
    assert await balance(svc, account["id"]) == 120
    assert await ledger_matches_balance(svc, account["id"])


async def test_concurrent_redemptions_never_go_below_zero(svc):
    account = await enrol(svc)
    await credit(svc, account["id"], 100)

    async def spend(i: int):
        async with client(svc, "village_worker", subject=f"counter-{i}") as c:
            return await c.post(f"/api/v1/points/accounts/{account['id']}/redemptions", headers=key(),
                                json={"site_code": SUPERMARKET, "items": basket(rice_5kg=1)})  # 40 each

    answers = await asyncio.gather(*(spend(i) for i in range(4)))
    assert sorted(a.status_code for a in answers) == [201, 201, 409, 409]
    assert await balance(svc, account["id"]) == 20
    assert await ledger_matches_balance(svc, account["id"])


async def test_redemption_bad_input(svc):
    account = await enrol(svc)
    await credit(svc, account["id"], 100)
    url = f"/api/v1/points/accounts/{account['id']}/redemptions"
    async with client(svc, "town_worker") as c:
        assert_problem(await c.post(url, headers=key(), json={"site_code": NOT_SUPERMARKET, "items": basket(rice_5kg=1)}),
                       422, "unknown-reference")
        assert_problem(await c.post(url, headers=key(), json={"site_code": SUPERMARKET, "items": basket(caviar=1)}),
                       422, "unknown-reference")
        assert_problem(await c.post(url, headers=key(), json={"site_code": SUPERMARKET, "items": []}), 422)
        assert_problem(await c.post(url, headers=key(), json={"site_code": SUPERMARKET,
                                                              "items": [{"good": "rice_5kg", "quantity": 0}]}), 422)
        assert_problem(await c.post(url, headers=key(), json={"site_code": SUPERMARKET, "items": basket(rice_5kg=1),
                                                              "points": -500}), 422)
    async with client(svc, "town_worker", area="330106002000") as c:
        assert_problem(await c.post(url, headers=key(), json={"site_code": SUPERMARKET, "items": basket(rice_5kg=1)}),
                       404)
    assert await balance(svc, account["id"]) == 100


async def test_the_ledger_is_append_only(svc):
    account = await enrol(svc)
    await credit(svc, account["id"], 10)
    async with svc.db.sessionmaker() as s:
        entry = (await s.execute(select(PointsEntry).where(PointsEntry.account_id == account["id"]))).scalar_one()
        for statement in (f"UPDATE points_entries SET amount = 1000 WHERE id = {entry.id}",
                          f"DELETE FROM points_entries WHERE id = {entry.id}"):
            with pytest.raises(DBAPIError):  # the database's trigger refuses it
                await s.execute(text(statement))
            await s.rollback()
    assert await ledger_matches_balance(svc, account["id"])


async def test_monthly_allowance_once_per_month_by_level(svc, profile, city_today):
    accounts = [await enrol(svc, level=level, area="330106002002") for level in (1, 2, 3, None)]
    this_month = city_today.strftime("%Y-%m")
    async with client(svc, "district_officer") as c:
        first = await c.post("/api/v1/points/allowances", json={"period": this_month})
        assert first.status_code == 200 and first.json()["credited"] >= 4
        again = (await c.post("/api/v1/points/allowances", json={"period": this_month})).json()
        assert again["credited"] == 0 and again["already"] >= 4
        assert_problem(await c.post("/api/v1/points/allowances", json={"period": "2999-01"}), 422)
        assert_problem(await c.post("/api/v1/points/allowances", json={"period": "2026-13"}), 422)
        assert_problem(await c.post("/api/v1/points/allowances", json={"period": "0000-01"}), 422)  # was a 500
    rule = profile.points.monthly_allowance
    assert [await balance(svc, a["id"]) for a in accounts] == [rule.amount(x) for x in (1, 2, 3, None)]
    async with client(svc, "village_worker") as c:
        assert_problem(await c.post("/api/v1/points/allowances", json={"period": this_month}), 403)


async def test_rewards_and_officer_credits_follow_the_rules(svc, profile):
    account = await enrol(svc)
    url = f"/api/v1/points/accounts/{account['id']}/credits"
    async with client(svc, "town_worker") as c:
        r = await c.post(url, json={"rule_code": "volunteer_service"})
        assert r.status_code == 201 and r.json()["amount"] == profile.points.reward("volunteer_service").points
        assert_problem(await c.post(url, json={"rule_code": "lottery"}), 422, "unknown-reference")
        assert_problem(await c.post(url, json={"amount": profile.points.officer_credit_max + 1}), 422)
        assert_problem(await c.post(url, json={"amount": 5, "rule_code": "volunteer_service"}), 422)
        assert_problem(await c.post(url, json={"amount": -5}), 422)
        for not_points in (True, "5", 5.0):  # true was credited as 1 point
            body = assert_problem(await c.post(url, json={"amount": not_points}), 422)
            assert body["errors"][0]["issue"] == "int_type"
    async with client(svc, "partner", org="org-x") as c:
        assert_problem(await c.post(url, json={"amount": 5}), 403)


async def test_a_family_sees_and_spends_its_own_points(svc, city_today):
    holder = generate("330106", date(1988, 5, 17), 123, "male")
    account = await enrol(svc, holder=holder)
    assert account["zheliban_linked"] is True and holder not in str(account)
    await credit(svc, account["id"], 100)
    async with client(svc, "citizen", resident_id=holder) as c:
        mine = (await c.get("/api/v1/points/me")).json()
        assert mine == {"id": account["id"], "programme": "春风点数", "balance": 100, "status": "active"}
        r = await c.post("/api/v1/points/me/redemptions", headers=key(),
                         json={"site_code": SUPERMARKET, "items": basket(rice_5kg=1, towel_set=2)})
        assert r.status_code == 201 and r.json()["amount"] == -64
        today = city_today.isoformat()
        statement = (await c.get("/api/v1/points/me/statement", params={"from": today, "to": today})).json()
        assert statement["credits"] == 100 and statement["debits"] == 64 and statement["closing_balance"] == 36
        assert [e["kind"] for e in statement["entries"]] == ["officer_credit", "redemption"]
        # the day after 9999-12-31 does not exist: a 500 once, a 422 now (years 1800 to 2999)
        r = await c.get("/api/v1/points/me/statement", params={"from": today, "to": "9999-12-31"})
        assert r.status_code == 422 and r.json()["errors"][0]["issue"] == "day_format", r.text
    async with client(svc, "citizen", resident_id=CITIZEN_ID) as c:
        r = await c.get("/api/v1/points/me")
        assert r.status_code == 404 or r.json()["id"] != account["id"]
    async with client(svc, "village_worker") as c:
        found = await c.post("/api/v1/points/accounts/lookup", json={"resident_id": holder})
        assert found.status_code == 200 and found.json()["id"] == account["id"]
        assert_problem(await c.post("/api/v1/points/accounts/lookup", json={"resident_id": "330106198805171230"}), 422)
    async with svc.db.sessionmaker() as s:
        audit = (await s.execute(select(AuditRecord).where(AuditRecord.resource_id == account["id"]))).scalars().all()
        assert [a.action for a in audit] == ["lookup"] and holder not in str([a.fields for a in audit])


async def test_enrolment_bad_input(svc):
    household = str(uuid.uuid4())
    async with client(svc, "village_worker") as c:
        body = {"household_id": household, "area_code": VILLAGE, "level": 1}
        assert (await c.post("/api/v1/points/accounts", json=body)).status_code == 201
        assert_problem(await c.post("/api/v1/points/accounts", json=body), 409, "already-exists")
        assert_problem(await c.post("/api/v1/points/accounts", json={**body, "household_id": "x"}), 422)
        assert_problem(await c.post("/api/v1/points/accounts",
                                    json={**body, "household_id": str(uuid.uuid4()), "area_code": OTHER_DISTRICT_VILLAGE}),
                       404)
        bad_id = {**body, "household_id": str(uuid.uuid4()), "holder_resident_id": "330106199003070015"}
        r = await c.post("/api/v1/points/accounts", json=bad_id)
        assert_problem(r, 422) and "330106199003070015" not in r.text
