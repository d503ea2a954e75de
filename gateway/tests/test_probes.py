"""/livez, /readyz (each service reported, failing first on shutdown), CORS."""

from __future__ import annotations

from gwtest import Upstream, assert_problem, gateway_settings, running_gateway, serving


async def test_livez(gw):
    response = await gw.client.get("/livez")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_reports_each_service_and_stays_ready_when_one_is_down(gw):
    # One service down must not take every route out of the load balancer.
    response = await gw.client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "services": {
            "registry": {"status": "ready"},
            "scoring": {"status": "ready"},
            "alerts": {"status": "ready"},
            "matching": {"status": "unreachable"},
        },
    }
    # Scripts waiting for the whole suite ask for every service.
    body = assert_problem(await gw.client.get("/readyz?require=all"), 503)
    assert body["services"]["matching"] == {"status": "unreachable"}
    assert "matching" in body["detail"]
    bad = await gw.client.get("/readyz?require=everything")
    assert_problem(bad, 422, not_echoing=("everything",))


async def test_readyz_all_ready_then_one_not_ready(tmp_path, upstreams):
    matching = Upstream("matching")
    async with serving(matching.app()) as matching_url:
        urls = {name: fake.url for name, fake in upstreams.items()} | {"matching": matching_url}
        async with running_gateway(gateway_settings(tmp_path, urls)) as gw:
            for query in ("", "?require=all"):
                response = await gw.client.get("/readyz" + query)
                assert response.status_code == 200
                assert response.json()["status"] == "ready"
                assert set(response.json()["services"]) == {
                    "registry", "scoring", "alerts", "matching",
                }

            matching.ready = False
            body = assert_problem(await gw.client.get("/readyz?require=all"), 503)
            assert body["services"]["matching"] == {"status": "not_ready", "http_status": 503}
            degraded = await gw.client.get("/readyz")
            assert degraded.status_code == 200 and degraded.json()["status"] == "degraded"
            matching.ready = True

            # Shutting down: /readyz fails first, in both forms, while the API still answers.
            gw.app.state.shutting_down = True
            for query in ("", "?require=all"):
                body = assert_problem(await gw.client.get("/readyz" + query), 503)
                assert "shutting down" in body["detail"]
            assert (await gw.client.get("/api/v1/households", headers=gw.auth())).status_code == 200
            assert (await gw.client.get("/livez")).status_code == 200


async def test_cors(tmp_path, upstreams):
    settings = gateway_settings(
        tmp_path, {"registry": upstreams["registry"].url}, cors_origins=["https://console.example"]
    )
    async with running_gateway(settings) as gw:
        preflight = await gw.client.options(
            "/api/v1/households",
            headers={
                "Origin": "https://console.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://console.example"
        response = await gw.client.get(
            "/api/v1/households", headers={**gw.auth(), "Origin": "https://console.example"}
        )
        assert response.headers["access-control-allow-origin"] == "https://console.example"
        assert "x-request-id" in response.headers["access-control-expose-headers"]
        refused = await gw.client.options(
            "/api/v1/households",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
