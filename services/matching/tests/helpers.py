"""Small helpers shared by the tests: callers of every role in the demo city, problem checks."""

from __future__ import annotations

import uuid

import httpx

from servicekit.testing import CITY, DISTRICT, OTHER_TOWNSHIP, TOWNSHIP, VILLAGE

PROBLEM = "application/problem+json"
# (method, path template, status) of every answer the tests saw: test_zz_declared_statuses checks
# each is declared in the OpenAPI document. Here, not in conftest: tests import this module by name.
OBSERVED: set[tuple[str, str, int]] = set()
OTHER_DISTRICT = "330102000000"
OTHER_DISTRICT_VILLAGE = "330102001001"
VILLAGE_2 = "330106001002"
CITIZEN_ID = "330106199003070014"  # the demo citizen's synthetic number (checksum valid)


def client(svc, role: str, **claims) -> httpx.AsyncClient:
    defaults = {
        "city_admin": {"area": CITY}, "district_officer": {"area": DISTRICT}, "town_worker": {"area": TOWNSHIP},
        "village_worker": {"area": VILLAGE}, "auditor": {"area": CITY}, "citizen": {"area": VILLAGE},
    }
    merged = {**defaults.get(role, {}), **claims}
    if role == "citizen":
        merged.setdefault("resident_id", CITIZEN_ID)
    return svc.client(role, **merged)


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    if slug is not None:
        assert body["type"] == f"urn:zhongfu:problem:{slug}", body
    return body


__all__ = ["CITY", "DISTRICT", "OTHER_TOWNSHIP", "TOWNSHIP", "VILLAGE"]
