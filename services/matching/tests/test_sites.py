"""Sites: seeded from the profile, listed with cursors and filters, changed by administrators."""

from __future__ import annotations

from helpers import DISTRICT, OTHER_DISTRICT, TOWNSHIP, assert_problem, client, key


async def test_profile_sites_are_seeded_and_listed_with_cursors(svc):
    async with client(svc, "partner", org="org-x") as c:
        seen, cursor = [], None
        while True:
            r = await c.get("/api/v1/sites", params={"limit": 4, **({"cursor": cursor} if cursor else {})})
            assert r.status_code == 200
            seen += [s["code"] for s in r.json()["items"]]
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
    profile_codes = {"DC330106", "TS330106001", "VP330106001001", "VP330106002002", "TS330102001"}
    assert profile_codes <= set(seen)
    assert seen == sorted(seen) and len(seen) == len(set(seen))


async def test_filters_by_level_area_and_co_location(svc):
    async with client(svc, "village_worker") as c:
        r = await c.get("/api/v1/sites", params={"level": "township_station", "area": DISTRICT, "limit": 100})
        assert {s["code"] for s in r.json()["items"]} >= {"TS330106001", "TS330106002"}
        assert all(s["area_code"].startswith("330106") for s in r.json()["items"])
        r = await c.get("/api/v1/sites", params={"co_located": "charity_supermarket", "limit": 100})
        items = r.json()["items"]
        assert items and all(s["supermarket"] for s in items)
        assert "DC330106" in {s["code"] for s in items}


async def test_district_officer_adds_and_changes_a_site_with_if_match(svc):
    async with client(svc, "district_officer") as c:
        body = {"level": "township_station", "name": "北山街道助联体服务站（二部）", "area_code": TOWNSHIP,
                "location": {"latitude": 30.261, "longitude": 120.151},
                "hours": [{"days": ["mo", "we", "fr"], "opens": "09:00", "closes": "12:00"}],
                "co_located": ["charity_supermarket"]}
        r = await c.post("/api/v1/sites", json=body, headers=key())
        assert r.status_code == 201, r.text
        site = r.json()
        assert site["code"].startswith("TS330106001-") and site["source"] == "admin" and site["supermarket"]
        etag = r.headers["etag"]
        no_match = await c.patch(f"/api/v1/sites/{site['code']}", json={"active": False})
        assert_problem(no_match, 428, "precondition-required")
        r = await c.patch(f"/api/v1/sites/{site['code']}", json={"active": False}, headers={"If-Match": etag})
        assert r.status_code == 200 and r.json()["active"] is False
        stale = await c.patch(f"/api/v1/sites/{site['code']}", json={"name": "x"}, headers={"If-Match": etag})
        assert_problem(stale, 412, "precondition-failed")


async def test_site_writes_are_refused_outside_role_jurisdiction_and_city(svc):
    body = {"level": "village_point", "name": "新服务点", "area_code": "330102001001",
            "location": {"latitude": 30.22, "longitude": 120.16},
            "hours": [{"days": ["tu"], "opens": "09:00", "closes": "11:00"}], "co_located": []}
    async with client(svc, "district_officer") as c:  # 西湖区 officer, 上城区 village
        assert_problem(await c.post("/api/v1/sites", json=body), 404, "not-found")
        r = await c.post("/api/v1/sites", json={**body, "area_code": "330106009001"})
        assert_problem(r, 422, "unknown-reference")
        r = await c.post("/api/v1/sites", json={**body, "area_code": TOWNSHIP})
        assert_problem(r, 422, "unknown-reference")  # a village point does not sit in a township
        r = await c.post("/api/v1/sites", json={**body, "area_code": "330106001001", "co_located": ["casino"]})
        assert_problem(r, 422, "unknown-reference")
        r = await c.post("/api/v1/sites", json={**body, "unexpected": 1})
        assert_problem(r, 422, "validation-failed")
        r = await c.patch("/api/v1/sites/DC330102", json={"active": False}, headers={"If-Match": '"v1"'})
        assert_problem(r, 404, "not-found")  # another district's site
    async with client(svc, "town_worker") as c:
        assert_problem(await c.post("/api/v1/sites", json=body), 403, "forbidden")
    async with client(svc, "city_admin") as c:
        r = await c.get(f"/api/v1/sites/DC{OTHER_DISTRICT[:6]}")
        assert r.status_code == 200 and r.headers["etag"] == '"v1"'


async def test_catalogue_is_served_read_only(svc):
    async with client(svc, "partner", org="org-x") as c:
        r = await c.get("/api/v1/catalogue")
        assert r.status_code == 200
        body = r.json()
        assert len(body["categories"]) == 9
        assert sum(len(cat["services"]) for cat in body["categories"]) == 31
        r = await c.get("/api/v1/catalogue/meal_assistance")
        assert r.json()["name_zh"] == "助餐服务"
        assert_problem(await c.get("/api/v1/catalogue/nothing"), 404)
        assert (await c.post("/api/v1/catalogue", json={})).status_code == 405


async def test_a_cursor_this_api_did_not_hand_out_is_a_400(svc):
    from servicekit.pagination import encode_cursor

    async with client(svc, "city_admin") as c:
        for path, cursor in (("/api/v1/sites", encode_cursor([1])), ("/api/v1/needs", encode_cursor(["x", "y"])),
                             ("/api/v1/offers", encode_cursor(["not-a-time"])), ("/api/v1/sites", "%%%"),
                             ("/api/v1/matches", encode_cursor([None, None]))):
            assert_problem(await c.get(path, params={"cursor": cursor}), 400, "bad-request")
        r = await c.get("/api/v1/points/accounts", params={"cursor": encode_cursor([True])})
        assert_problem(r, 400)
