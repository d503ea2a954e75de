"""Webhook subscriptions: SSRF refusals, signatures and rotation, delivery, retries, 410,
isolation between endpoints, redirects never followed."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from alerts.settings import AlertsSettings
from alerts.subscription.addresses import AddressGuard, AddressRefused
from alerts.subscription.sender import Sender
from alerts.subscription.tables import Subscription, WebhookDelivery
from fakes import assessment, new_township
from helpers import alerts_of, worker
from receiver import Receiver

REFUSED_URLS = [
    "http://127.0.0.1/hook", "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook", "http://localhost:8080/hook", "http://[::ffff:127.0.0.1]/hook", "http://2130706433/hook",
    "http://192.168.1.10/hook", "http://100.64.0.1/hook", "http://224.0.0.1/hook", "http://0.0.0.0/hook",
    "http://[fe80::1]/hook", "http://[fc00::1]/hook", "http://240.0.0.1/hook",
]


@pytest.fixture(scope="module")
async def receiver():
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
def strict(svc):
    """The production address check (no test allowlist) for the duration of a test."""
    saved = svc.app.state.address_guard
    svc.app.state.address_guard = AddressGuard(https_required=False)
    yield
    svc.app.state.address_guard = saved


async def subscribe(c, url, **body):
    return await c.post("/api/v1/subscriptions", json={"url": url, **body})


async def raise_alert(svc, feed, township: str) -> str:
    a = assessment(level=1, previous_level=1, triggers=["major_illness_diagnosed"], village=township[:9] + "001")
    await feed.publish(a)
    return (await alerts_of(svc, a["household_id"]))[0].id


async def deliveries(svc, sub_id: str) -> list[WebhookDelivery]:
    async with svc.db.sessionmaker() as s:
        rows = await s.execute(select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub_id).order_by(WebhookDelivery.created_at))
        return list(rows.scalars())


async def make_due(svc, sub_id: str) -> None:
    async with svc.db.sessionmaker() as s:
        await s.execute(update(WebhookDelivery).where(WebhookDelivery.subscription_id == sub_id, WebhookDelivery.status == "pending")
                        .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
        await s.commit()


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_non_public_addresses_are_refused_at_subscription(svc, strict, url):
    async with worker(svc, new_township()) as c:
        r = await subscribe(c, url)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["location"] == "body.url"
    assert url not in r.text
    async with svc.db.sessionmaker() as s:
        assert (await s.execute(select(Subscription).where(Subscription.url == url))).first() is None


async def test_hostnames_are_resolved_and_every_answer_checked():
    async def resolver(host, port):
        return {"mixed.example.org": ["93.184.216.34", "10.0.0.1"], "public.example.org": ["93.184.216.34"]}[host]

    guard = AddressGuard(https_required=True, resolver=resolver)
    with pytest.raises(AddressRefused):
        await guard.vet("https://mixed.example.org/hook")
    target, ips = await guard.vet("https://public.example.org/hook?x=1")
    assert [str(i) for i in ips] == ["93.184.216.34"] and target.path == "/hook?x=1"
    for bad in ("http://public.example.org/hook", "https://user:pw@public.example.org/", "ftp://public.example.org/"):
        with pytest.raises(AddressRefused):
            guard.parse(bad)


def test_the_test_allowlist_is_refused_in_production():
    with pytest.raises(ValueError, match="refused in production"):
        AlertsSettings(environment="production", database_url="postgresql://x@y/z", oidc_issuer="https://id.example.org",
                       webhook_test_allow_networks=["127.0.0.1/32"])


async def test_delivery_connects_to_the_checked_address_and_rechecks_it():
    answers = {"hooks.example.org": ["93.184.216.34"]}

    async def resolver(host, port):
        return answers[host]

    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    guard = AddressGuard(https_required=True, resolver=resolver)
    sender = Sender(guard, timeout=5, transport=httpx.MockTransport(handler))
    target, ips = await sender.resolve("https://hooks.example.org/in")
    attempt = await sender.send(target, ips, "msg_1", {"type": "alert.raised", "data": {"alert_id": "a"}}, ["whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
    assert attempt.ok
    assert seen[0].url.host == "93.184.216.34" and seen[0].headers["host"] == "hooks.example.org"
    assert seen[0].extensions["sni_hostname"] == "hooks.example.org"
    answers["hooks.example.org"] = ["169.254.169.254"]  # DNS rebinding after the subscription
    refused = await sender.resolve("https://hooks.example.org/in")
    assert not refused.ok and refused.error == "non_public_address"
    assert len(seen) == 1
    await sender.aclose()


async def test_delivery_is_signed_thin_and_once(svc, feed, receiver):
    town = new_township()
    async with worker(svc, town) as c:
        r = await subscribe(c, receiver.url("ok-once"), description="duty desk")
        assert r.status_code == 201, r.text
        sub = r.json()
        assert "secret" not in json.dumps(sub["secrets"])
        secrets = (await c.get(f"/api/v1/subscriptions/{sub['id']}/secrets")).json()["items"]
    alert_id = await raise_alert(svc, feed, town)
    dispatcher = svc.app.state.dispatcher
    await dispatcher.drain_all()
    await dispatcher.drain_all()
    [msg] = receiver.received["ok-once"]
    payload = Webhook(secrets[0]["secret"]).verify(msg["body"], msg["headers"])
    assert payload["type"] == "alert.raised" and payload["data"] == {"alert_id": alert_id}
    assert set(payload) == {"type", "timestamp", "data"}  # thin: no label, no area, no level
    [d] = await deliveries(svc, sub["id"])
    assert d.status == "delivered" and d.attempts == 1 and msg["headers"]["webhook-id"] == "msg_" + d.id.replace("-", "")


async def test_rotation_signs_with_both_secrets_during_the_overlap(svc, feed, receiver):
    town = new_township()
    async with worker(svc, town) as c:
        sub = (await subscribe(c, receiver.url("rotate"))).json()
        old = (await c.get(f"/api/v1/subscriptions/{sub['id']}/secrets")).json()["items"][0]["secret"]
        etag = (await c.get(f"/api/v1/subscriptions/{sub['id']}")).headers["etag"]
        r = await c.post(f"/api/v1/subscriptions/{sub['id']}/secret-rotations", json={"overlap_hours": 24}, headers={"If-Match": etag})
        assert r.status_code == 200, r.text
        items = (await c.get(f"/api/v1/subscriptions/{sub['id']}/secrets")).json()["items"]
    assert len(items) == 2 and items[1]["secret"] == old and items[1]["expires_at"] is not None and items[0]["expires_at"] is None
    await raise_alert(svc, feed, town)
    await svc.app.state.dispatcher.drain_all()
    [msg] = receiver.received["rotate"]
    assert len(msg["headers"]["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(msg["body"], msg["headers"])
    Webhook(items[0]["secret"]).verify(msg["body"], msg["headers"])


async def test_failures_retry_with_backoff_and_410_disables(svc, feed, receiver):
    town = new_township()
    async with worker(svc, town) as c:
        failing = (await subscribe(c, receiver.url("fail"))).json()
        gone = (await subscribe(c, receiver.url("gone"))).json()
    await raise_alert(svc, feed, town)
    await raise_alert(svc, feed, town)
    dispatcher = svc.app.state.dispatcher
    await dispatcher.drain_all()
    f = await deliveries(svc, failing["id"])
    assert [d.status for d in f] == ["pending", "pending"] and all(d.attempts == 1 and d.last_status == 503 for d in f)
    assert all(d.next_attempt_at > datetime.now(UTC) for d in f)
    await make_due(svc, failing["id"])
    await dispatcher.drain_all()
    assert [d.attempts for d in await deliveries(svc, failing["id"])] == [2, 2]
    g = await deliveries(svc, gone["id"])
    # both were in flight together (per-endpoint concurrency); none is tried again
    assert {d.status for d in g} <= {"failed", "cancelled"} and len(receiver.received["gone"]) <= 2
    async with worker(svc, town) as c:
        body = (await c.get(f"/api/v1/subscriptions/{gone['id']}")).json()
    assert body["status"] == "disabled" and body["disabled_reason"] == "gone"
    await raise_alert(svc, feed, town)
    assert len(await deliveries(svc, gone["id"])) == 2  # nothing queued for a disabled endpoint


def test_backoff_grows_with_jitter_and_spans_days():
    from alerts.subscription.dispatcher import Dispatcher

    schedule = AlertsSettings(environment="test").webhook_retry_schedule
    d = Dispatcher.__new__(Dispatcher)
    d.retry_schedule = schedule
    delays = [d.backoff(i).total_seconds() for i in range(len(schedule))]
    assert all(schedule[i] / 2 <= delays[i] <= schedule[i] for i in range(len(schedule)))
    assert sum(schedule) > 3 * 86400
    assert len({d.backoff(5).total_seconds() for _ in range(20)}) > 1  # jitter


async def test_a_slow_endpoint_does_not_delay_another(svc, feed, receiver):
    slow_town, fast_town = new_township(), new_township()
    async with worker(svc, slow_town) as c:
        await subscribe(c, receiver.url("slow"))
    async with worker(svc, fast_town) as c:
        await subscribe(c, receiver.url("fast"))
    await raise_alert(svc, feed, slow_town)
    await raise_alert(svc, feed, fast_town)
    dispatcher = svc.app.state.dispatcher
    start = time.monotonic()
    await dispatcher.run_once()
    while not receiver.received["fast"] and time.monotonic() - start < 5:
        await asyncio.sleep(0.02)
    fast_after = time.monotonic() - start
    assert receiver.received["fast"] and fast_after < receiver.slow_seconds / 2
    await dispatcher.drain_all()
    assert receiver.received["slow"]


async def test_redirects_are_never_followed(svc, feed, receiver):
    town = new_township()
    async with worker(svc, town) as c:
        sub = (await subscribe(c, receiver.url("redirect"))).json()
        r = await c.post(f"/api/v1/subscriptions/{sub['id']}/ping")
    assert r.status_code == 502 and "redirect" in r.json()["detail"]
    await raise_alert(svc, feed, town)
    await svc.app.state.dispatcher.drain_all()
    [d] = await deliveries(svc, sub["id"])
    assert d.status == "pending" and d.last_status == 302 and d.last_error == "redirect_not_followed"


async def test_ping_and_subscription_management(svc, receiver):
    town = new_township()
    async with worker(svc, town) as c:
        sub = (await subscribe(c, receiver.url("ping"), event_types=["alert.overdue"])).json()
        assert sub["event_types"] == ["alert.overdue"] and sub["area_code"] == town
        r = await c.post(f"/api/v1/subscriptions/{sub['id']}/ping")
        assert r.status_code == 200 and r.json() == {"delivered": True, "status_code": 204}
        listed = (await c.get("/api/v1/subscriptions")).json()["items"]
        assert [s["id"] for s in listed] == [sub["id"]]
        assert (await c.patch(f"/api/v1/subscriptions/{sub['id']}", json={"description": "x"})).status_code == 428
        etag = (await c.get(f"/api/v1/subscriptions/{sub['id']}")).headers["etag"]
        r = await c.patch(f"/api/v1/subscriptions/{sub['id']}", json={"enabled": False}, headers={"If-Match": etag})
        assert r.status_code == 200 and r.json()["status"] == "disabled"
        etag = r.headers["etag"]
        assert (await c.delete(f"/api/v1/subscriptions/{sub['id']}", headers={"If-Match": etag})).status_code == 204
        assert (await c.get(f"/api/v1/subscriptions/{sub['id']}")).status_code == 404
    async with svc.client("town_worker", area=new_township()) as other:
        assert (await other.get(f"/api/v1/subscriptions/{sub['id']}")).status_code == 404
    async with svc.client("partner", org="o") as partner:
        assert (await partner.post("/api/v1/subscriptions", json={"url": receiver.url("p")})).status_code == 403


async def test_a_changed_url_is_checked_again(svc, strict):
    town = new_township()
    async with worker(svc, town) as c:
        r = await subscribe(c, "http://93.184.216.34/hook")
        assert r.status_code == 201
        etag = r.headers["etag"]
        r = await c.patch(f"/api/v1/subscriptions/{r.json()['id']}", json={"url": "http://10.0.0.1/hook"}, headers={"If-Match": etag})
    assert r.status_code == 422


async def test_a_district_subscription_receives_escalations(svc, feed, receiver):
    from alerts.overdue.service import sweep
    from helpers import set_alert

    town = new_township()
    async with svc.client("district_officer", area="330106000000") as d:
        sub = (await subscribe(d, receiver.url("district"), event_types=["alert.overdue"])).json()
    alert_id = await raise_alert(svc, feed, town)
    await set_alert(svc, alert_id, deadline_at=datetime.now(UTC) - timedelta(minutes=1))
    await sweep(svc.db, svc.app.state.profile)
    await svc.app.state.dispatcher.drain_all()
    types = [json.loads(m["body"])["type"] for m in receiver.received["district"]]
    assert types.count("alert.overdue") >= 1 and set(types) == {"alert.overdue"}
    assert alert_id in {json.loads(m["body"])["data"]["alert_id"] for m in receiver.received["district"]}
    async with svc.client("district_officer", area="330106000000") as d:
        etag = (await d.get(f"/api/v1/subscriptions/{sub['id']}")).headers["etag"]
        await d.delete(f"/api/v1/subscriptions/{sub['id']}", headers={"If-Match": etag})
