"""Factories per domain: each makes a fresh, valid thing through the API, as a user would."""

from __future__ import annotations

import uuid

from helpers import DISTRICT, TOWNSHIP, client, key


def new_org_id() -> str:
    return f"org-t-{uuid.uuid4().hex[:10]}"


async def approved_partner(svc, area: str = DISTRICT) -> str:
    """A partner organisation that applied and was approved by the district officer."""
    org = new_org_id()
    async with client(svc, "partner", org=org) as c:
        r = await c.post("/api/v1/organisations", json={
            "name": "测试公益服务中心", "kind": "social_organisation", "area_code": area,
            "description": "为困难家庭提供服务（测试）"}, headers=key())
        assert r.status_code == 201, r.text
    async with client(svc, "city_admin") as c:
        r = await c.post(f"/api/v1/organisations/{org}/approve", json={"reason": "资质齐全"}, headers=key())
        assert r.status_code == 200, r.text
    return org


def offer_body(**overrides) -> dict:
    body = {
        "title": "长者助餐", "description": "午餐送餐上门", "services": ["meal_assistance"], "areas": [TOWNSHIP],
        "site_code": "TS330106001", "capacity": 5, "period": "month",
    }
    body.update(overrides)
    return body


async def published_offer(svc, org: str, **overrides) -> dict:
    async with client(svc, "partner", org=org) as c:
        r = await c.post("/api/v1/offers", json=offer_body(**overrides), headers=key())
        assert r.status_code == 201, r.text
        offer = r.json()
        r = await c.post(f"/api/v1/offers/{offer['id']}/publish", headers=key())
        assert r.status_code == 200, r.text
        return r.json()


async def need(svc, service: str, *, area: str = "330106001001", urgency: str = "normal", level: int | None = 2,
               **fields) -> dict:
    async with client(svc, "village_worker", area=area) as c:
        body = {"service_code": service, "area_code": area, "urgency": urgency, "level": level,
                "label_masked": "张*明户", "household_type": "dibao", "member_ages": [8, 41, 67], **fields}
        r = await c.post("/api/v1/needs", json=body, headers=key())
        assert r.status_code == 201, r.text
        return r.json()


async def run(svc, mode: str = "incremental") -> dict:
    async with client(svc, "city_admin") as c:
        r = await c.post("/api/v1/matches/runs", json={"mode": mode})
        assert r.status_code == 201, r.text
        return r.json()


async def match_of(svc, org: str, need_id: str) -> dict | None:
    async with client(svc, "partner", org=org) as c:
        cursor = None
        while True:
            r = await c.get("/api/v1/matches", params={"limit": 100, **({"cursor": cursor} if cursor else {})})
            for m in r.json()["items"]:
                if m["need"]["id"] == need_id and m["status"] in ("proposed", "accepted", "delivered"):
                    return m
            cursor = r.json()["next_cursor"]
            if not cursor:
                return None
