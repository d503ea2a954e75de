async def test_the_service_starts_with_the_configured_model_active(svc):
    async with svc.client("city_admin", area="330100000000") as c:
        r = await c.get("/api/v1/models/active")
    assert r.status_code == 200, r.text
    assert r.json()["version"] == "hz-2026.1"
    assert r.json()["report"]["valid"]
