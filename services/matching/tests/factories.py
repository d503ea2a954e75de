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
