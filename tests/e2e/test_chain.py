"""End to end, through the gateway only, with the five real processes (tests/e2e/conftest.py).

The chain: a village worker registers a household -> the health department reports a major
illness for one member -> the registry's household.changed -> scoring's assessment.updated ->
an alert in the township worker's inbox (and not in the neighbouring township's) -> accepted,
verified by a home visit, disposed with a service referral -> a need in matching, carrying the
members' ages from the registry -> the demo partner's offer covering the village, for households
with someone 60 or older -> a match the partner sees de-identified and accepts.
Beside it: the unified OpenAPI document and /docs, RFC 9457 problems for the errors on the way,
and no response on the chain, nor any line the five processes logged, carrying the member's ID
number or full name.

The chain tests share one state and run in file order; a step whose predecessor failed fails
saying so (never skips).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from servicekit import resident_id as rid

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VILLAGE = "330106001001"
TOWNSHIP = "330106001000"
SITE = "TS330106001"  # the township station of that township (config/matching/sites.yaml)
SERVICE = "home_nursing"
CHAIN_TIMEOUT = 60.0
POLL = 0.5
ACCOUNTS = {a["client_id"]: a for a in yaml.safe_load((ROOT / "config" / "demo-accounts.yaml").read_text())["accounts"]}
PROBLEM = "application/problem+json"


# ---------------------------------------------------------------- helpers


def assert_problem(r: httpx.Response, status: int | tuple[int, ...]) -> dict[str, Any]:
    """An RFC 9457 problem with the given status: the media type, and type/title/status in the body."""
    statuses = (status,) if isinstance(status, int) else status
    where = f"{r.request.method} {r.request.url.path}"
    assert r.status_code in statuses, f"{where}: expected {statuses}, got {r.status_code}: {r.text[:500]}"
    ctype = r.headers.get("content-type", "")
    assert ctype.split(";")[0].strip() == PROBLEM, f"{where}: content-type {ctype!r}, not {PROBLEM}: {r.text[:300]}"
    body = r.json()
    assert isinstance(body, dict), f"{where}: problem body is not an object: {r.text[:300]}"
    assert body.get("status") == r.status_code, f"{where}: problem status {body.get('status')} != {r.status_code}"
    assert isinstance(body.get("type"), str) and body["type"], f"{where}: problem without a type: {body}"
    assert isinstance(body.get("title"), str) and body["title"], f"{where}: problem without a title: {body}"
    return body


def expect(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url.path}: expected {status}, got {r.status_code}: {r.text[:800]}"
    return r.json()


def poll(what: str, probe: Callable[[], Any], timeout: float = CHAIN_TIMEOUT) -> Any:
    """probe() until it returns something truthy; fail naming `what` and the last thing seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last and not isinstance(last, _Seen):
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s; last seen: {getattr(last, 'text', last)}", pytrace=False)
        time.sleep(POLL)


class _Seen:
    """A probe's falsy answer that still says what it saw (for the failure message)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __bool__(self) -> bool:
        return False


def new_resident_id(birth: date, sex: str) -> str:
    """A fresh valid synthetic number in the test district: runs never share a person."""
    seq = uuid.uuid4().int % 500 * 2 + (1 if sex == "male" else 0)
    return rid.generate("330106", birth, seq, sex)  # type: ignore[arg-type]


class Recorder:
    """Every response body seen on the chain, to check for personal data at the end."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, str]] = []

    def __call__(self, r: httpx.Response) -> None:
        r.read()
        text = r.text
        try:  # JSON may escape CJK as \\uXXXX: compare against the decoded form too
            text += "\n" + json.dumps(r.json(), ensure_ascii=False)
        except ValueError:
            pass
        self.seen.append((f"{r.request.method} {r.request.url.path}", r.status_code, text))


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def gw(suite, recorder) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=suite.gateway, timeout=30.0, event_hooks={"response": [recorder]}) as client:
        yield client


@pytest.fixture(scope="module")
def token(gw: httpx.Client) -> Callable[[str], dict[str, str]]:
    """Authorization headers for a demo account, from the gateway's development issuer."""
    cache: dict[str, dict[str, str]] = {}

    def get(client_id: str) -> dict[str, str]:
        if client_id not in cache:
            r = gw.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                              "client_secret": ACCOUNTS[client_id]["client_secret"]})
            body = expect(r, 200)
            assert body.get("access_token"), f"/oauth/token for {client_id}: no access_token in {body}"
            cache[client_id] = {"Authorization": f"Bearer {body['access_token']}"}
        return cache[client_id]

    return get


@pytest.fixture(scope="module")
def chain() -> dict[str, Any]:
    """What the chain steps hand each other."""
    head_birth, child_birth = date(1958, 3, 7), date(2012, 9, 1)
    return {
        "head_id": new_resident_id(head_birth, "male"),
        "head_name": "欧阳振华",
        "head_birth": head_birth,
        "child_birth": child_birth,
        "child_id": new_resident_id(child_birth, "female"),
        "child_name": "欧阳小雪",
        "run": uuid.uuid4().hex[:10],
    }


def need(chain: dict[str, Any], *keys: str) -> None:
    missing = [k for k in keys if k not in chain]
    if missing:
        pytest.fail(f"an earlier step of the chain failed (no {', '.join(missing)}); see its failure above", pytrace=False)


def age_today(birth: date) -> int:
    """Whole years on the city's calendar day, as the registry counts them."""
    today = datetime.now(rid.CHINA_STANDARD_TIME).date()
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def etag(r: httpx.Response) -> str:
    value = r.headers.get("etag")
    assert value, f"{r.request.method} {r.request.url.path}: no ETag header"
    return value


# ---------------------------------------------------------------- the chain


def test_01_village_worker_registers_household(gw, token, chain) -> None:  # type: ignore[no-untyped-def]
    body = {
        "area_code": VILLAGE, "address": f"合成路 {chain['run'][:4]} 号 1 幢 101",
        "register_status": "dibao", "channel": "survey",
        "members": [
            {"resident_id": chain["head_id"], "name": chain["head_name"], "relation": "head", "phone": "13800001234",
             "facts": [{"fact": "employment_status", "value": "unemployed"}]},
            {"resident_id": chain["child_id"], "name": chain["child_name"], "relation": "child"},
        ],
        "facts": [{"fact": "income_wages_m", "value": 0}, {"fact": "rent_m", "value": 900}],
    }
    r = gw.post("/api/v1/households", json=body,
                headers={**token("village-worker"), "Idempotency-Key": f"e2e-hh-{chain['run']}"})
    created = expect(r, 201)
    assert created.get("id"), created
    assert created.get("area_code", VILLAGE) == VILLAGE, created
    chain["household_id"] = created["id"]
    chain["label_masked"] = created.get("label_masked")
    # The township worker of that village sees it, masked; the neighbouring township does not.
    r = gw.get(f"/api/v1/households/{created['id']}", headers=token("town-worker"))
    expect(r, 200)
    assert_problem(gw.get(f"/api/v1/households/{created['id']}", headers=token("town-worker-2")), 404)


def test_02_health_department_reports_major_illness(gw, token, chain) -> None:  # type: ignore[no-untyped-def]
    need(chain, "household_id")
    record = {"record_id": f"HLTH-E2E-{chain['run']}", "item": "major_illness_diagnosis",
              "resident_id": chain["head_id"], "value": "cancer",
              "effective_date": (date.today() - timedelta(days=2)).isoformat()}
    r = gw.post("/api/v1/feeds/records", json=record, headers=token("dept-health"))
    assert r.status_code in (200, 201, 202), f"POST /api/v1/feeds/records: {r.status_code} {r.text[:800]}"
    outcome = json.dumps(r.json(), ensure_ascii=False)
    assert "applied" in outcome, f"the health record was not applied: {outcome}"
    chain["record_sent"] = time.monotonic()


def test_03_alert_reaches_township_inbox(gw, token, chain) -> None:  # type: ignore[no-untyped-def]
    need(chain, "household_id", "record_sent")
    hh = chain["household_id"]
    town = token("town-worker")

    def inbox() -> Any:
        r = gw.get("/api/v1/alerts", params={"village": VILLAGE, "limit": 100}, headers=town)
        if r.status_code != 200:
            return _Seen(f"GET /api/v1/alerts -> {r.status_code} {r.text[:300]}")
        mine = [a for a in r.json().get("items", []) if a.get("household_id") == hh]
        if not mine:
            return _Seen(f"no alert for the household among {len(r.json().get('items', []))}")
        for a in mine:
            rules = {x.get("code") if isinstance(x, dict) else x for x in a.get("rules", [])}
            if "major_illness" in rules:
                return a
            detail = gw.get(f"/api/v1/alerts/{a['id']}", headers=town)
            if detail.status_code == 200 and any(t.get("code") == "major_illness_diagnosed"
                                                 for t in detail.json().get("triggers", [])):
                return a
        return _Seen(f"alert(s) for the household without the major illness yet: {mine}")

    alert = poll("an alert for the household with the major illness in town-worker's inbox", inbox)
    chain["alert_seen_after_s"] = round(time.monotonic() - chain["record_sent"], 1)
    assert alert["township_code"] == TOWNSHIP, alert
    assert alert["village"] == VILLAGE, alert
    expected_class = "important" if alert["level"] == 1 else "general"
    assert alert["class"] == expected_class, f"level {alert['level']} should be {expected_class}: {alert}"
    assert alert["status"] == "raised", alert
    r = gw.get(f"/api/v1/alerts/{alert['id']}", headers=town)
    detail = expect(r, 200)
    assert detail["household_id"] == hh
    chain["alert_id"] = alert["id"]
    chain["level"] = alert["level"]
    chain["alert_etag"] = etag(r)


def test_04_other_township_does_not_see_the_alert(gw, token, chain) -> None:  # type: ignore[no-untyped-def]
    need(chain, "alert_id")
    other = token("town-worker-2")
    assert_problem(gw.get(f"/api/v1/alerts/{chain['alert_id']}", headers=other), 404)
    r = gw.get("/api/v1/alerts", params={"limit": 100}, headers=other)
    listed = expect(r, 200)
    assert all(a.get("id") != chain["alert_id"] for a in listed.get("items", [])), "town-worker-2 lists the alert"
    # Nor can it act on it.
    assert_problem(gw.post(f"/api/v1/alerts/{chain['alert_id']}/accept", json={"worker_name": "李社工"},
                           headers={**other, "If-Match": chain["alert_etag"]}), 404)


def test_05_worker_accepts_verifies_and_refers(gw, token, chain) -> None:  # type: ignore[no-untyped-def]
    need(chain, "alert_id", "alert_etag")
    town = token("town-worker")
    alert = chain["alert_id"]
    r = gw.post(f"/api/v1/alerts/{alert}/accept", json={"worker_name": "王社工"},
                headers={**town, "If-Match": chain["alert_etag"], "Idempotency-Key": f"e2e-accept-{chain['run']}"})
    assert expect(r, 200)["status"] == "accepted"
    r = gw.post(f"/api/v1/alerts/{alert}/verification", headers={**town, "If-Match": etag(r)}, json={
        "method": "home_visit", "performed_at": datetime.now(rid.CHINA_STANDARD_TIME).isoformat(),
        "findings": "Visited; treatment costs exceed the family savings.", "needs_confirmed": ["medical", "care"]})
    assert expect(r, 200)["status"] == "verifying"
    r = gw.post(f"/api/v1/alerts/{alert}/disposition", headers={**town, "If-Match": etag(r)}, json={
        "kind": "service_referral", "services": [{"code": SERVICE, "urgency": "urgent"}], "note": "Weekly visits"})
    disposed = expect(r, 200)
    assert disposed["status"] == "disposed", disposed
    chain["disposed"] = time.monotonic()
    history = expect(gw.get(f"/api/v1/alerts/{alert}/history", headers=town), 200)
    assert history, "empty alert history"


def test_06_referral_becomes_a_need_in_matching(gw, token, chain) -> None:  # type: ignore[no-untyped-def]
    need(chain, "disposed")
    town = token("town-worker")

    def needs() -> Any:
        r = gw.get("/api/v1/needs", params={"service": SERVICE, "limit": 100}, headers=town)
        if r.status_code != 200:
            return _Seen(f"GET /api/v1/needs -> {r.status_code} {r.text[:300]}")
        items = [n for n in r.json().get("items", [])
                 if n.get("alert_id") == chain["alert_id"] or n.get("household_id") == chain["household_id"]]
        return items[0] if items else _Seen(f"no need of the household among {r.json().get('items')}")

    found = poll(f"a {SERVICE} need for the household's referral, visible to town-worker", needs)
    assert found["service_code"] == SERVICE
    assert found["area_code"] == VILLAGE
    assert found["urgency"] == "urgent"
    assert found["source"] != "citizen", found
    if found.get("level") is not None:
        assert found["level"] == chain["level"], found
    # The members' ages travelled registry -> scoring -> alerts -> matching (oldest first).
    assert found["member_ages"] == [age_today(chain["head_birth"]), age_today(chain["child_birth"])], found
    chain["need_id"] = found["id"]
    # The district officer sees it too (same jurisdiction chain).
    expect(gw.get(f"/api/v1/needs/{found['id']}", headers=token("district-officer")), 200)


def test_07_partner_offer_is_matched_and_accepted(gw, token, chain) -> None:  # type: ignore[no-untyped-def]
    need(chain, "need_id")
    partner = token("partner-demo")
    r = gw.post("/api/v1/offers", headers={**partner, "Idempotency-Key": f"e2e-offer-{chain['run']}"}, json={
        "title": "上门护理 e2e", "description": "Weekly home nursing visits", "services": [SERVICE],
        "areas": [VILLAGE], "site_code": SITE, "capacity": 5,
        "eligibility": {"min_age": 60}})  # only a household with someone 60 or older can match it
    offer = expect(r, 201)
    assert offer["organisation_id"] == ACCOUNTS["partner-demo"]["organisation"], offer
    assert offer["status"] == "draft", offer
    r = gw.post(f"/api/v1/offers/{offer['id']}/publish", headers={**partner, "If-Match": etag(r)})
    assert expect(r, 200)["status"] == "published"
    chain["offer_id"] = offer["id"]

    run = gw.post("/api/v1/matches/runs", json={"mode": "incremental"}, headers=token("town-worker"))
    expect(run, 201)

    def matches() -> Any:
        r = gw.get("/api/v1/matches", params={"offer": offer["id"], "limit": 100}, headers=partner)
        if r.status_code != 200:
            return _Seen(f"GET /api/v1/matches -> {r.status_code} {r.text[:300]}")
        items = [m for m in r.json().get("items", []) if m.get("need", {}).get("id") == chain["need_id"]]
        return items[0] if items else _Seen(f"no match for the need among {r.json().get('items')}")

    match = poll("a proposed match of the need to the partner's offer", matches)
    assert match["status"] == "proposed", match
    assert match["organisation_id"] == ACCOUNTS["partner-demo"]["organisation"]
    r = gw.get(f"/api/v1/matches/{match['id']}", headers=partner)
    body = expect(r, 200)
    text = r.text + json.dumps(body, ensure_ascii=False)
    # De-identified (脱敏): no name, no ID number, no household id, no ages.
    for secret in (chain["head_id"], chain["head_name"], chain["child_id"], chain["child_name"], chain["household_id"]):
        assert secret not in text, f"GET /api/v1/matches/{{id}} shows the partner personal data: {body}"
    assert "household_id" not in body["need"] and "member_ages" not in body["need"], body["need"]
    r = gw.post(f"/api/v1/matches/{match['id']}/accept", headers={**partner, "If-Match": etag(r)})
    assert expect(r, 200)["status"] == "accepted"
    chain["match_id"] = match["id"]


def test_07b_audited_reveal(gw, token, chain) -> None:  # type: ignore[no-untyped-def]
    """The one place the full name and number may appear: an explicit reveal, with a purpose, audited."""
    need(chain, "household_id")
    town = token("town-worker")
    r = gw.post("/api/v1/members/lookup", json={"resident_id": chain["head_id"]}, headers=town)
    member = expect(r, 200)
    assert member["household_id"] == chain["household_id"], member
    r = gw.post(f"/api/v1/members/{member['id']}/reveal", headers=town,
                json={"purpose": "verification", "note": "e2e: phone call before the home visit"})
    revealed = expect(r, 200)
    assert revealed["resident_id"] == chain["head_id"] and revealed["name"] == chain["head_name"], \
        "the reveal did not give the member unmasked"
    chain["reveal_path"] = r.request.url.path
    # The other township cannot reveal (or even see) the member.
    assert_problem(gw.post(f"/api/v1/members/{member['id']}/reveal", headers=token("town-worker-2"),
                           json={"purpose": "verification"}), 404)

    def audited() -> Any:
        r = gw.get("/api/v1/audit", params={"resource_id": member["id"], "limit": 100}, headers=token("auditor"))
        if r.status_code != 200:
            return _Seen(f"GET /api/v1/audit -> {r.status_code} {r.text[:300]}")
        items = [e for e in r.json().get("items", [])
                 if e.get("action") == "read_unmasked" and str(e.get("purpose", "")).startswith("verification")]
        return items[0] if items else _Seen(f"no reveal in the audit log: {r.json().get('items')}")

    entry = poll("the reveal in the audit log (auditor)", audited, timeout=15)
    assert entry["actor"] == "town-worker" and entry["role"] == "town_worker", entry
    assert entry["resource_type"] == "member" and "resident_id" in entry["fields"], entry


def test_08_no_personal_data_on_the_chain(recorder, chain) -> None:  # type: ignore[no-untyped-def]
    need(chain, "household_id")
    secrets = {"resident ID number": [chain["head_id"], chain["child_id"]],
               "full name": [chain["head_name"], chain["child_name"]]}
    allowed = "POST " + chain.get("reveal_path", "(no reveal)")
    # The checker can see personal data: the audited reveal (the one allowed place) shows it.
    if "reveal_path" in chain:
        assert any(where == allowed and status == 200 and chain["head_id"] in text and chain["head_name"] in text
                   for where, status, text in recorder.seen), "the recorder did not see the reveal's personal data"
    leaks = [f"{where} ({status}) carries a {kind}"
             for where, status, text in recorder.seen if not (where == allowed and status == 200)
             for kind, values in secrets.items() if any(v in text for v in values)]
    assert len(recorder.seen) > 10, "the recorder saw too little of the chain"
    assert not leaks, "personal data in responses:\n" + "\n".join(leaks)


def test_08b_no_personal_data_in_the_logs(suite, chain) -> None:  # type: ignore[no-untyped-def]
    """What the five processes wrote while the chain ran -- access lines, the services' own
    lines, warnings -- names neither member's ID number nor full name, as written or as a JSON
    line would escape it; the audited reveal's request among them."""
    need(chain, "household_id")
    secrets = [chain["head_id"], chain["child_id"], chain["head_name"], chain["child_name"]]
    forms = {form for value in secrets
             for form in (value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1])}
    logs = {path.name: path.read_text(errors="replace") for path in sorted((suite.var_dir / "log").glob("*.log"))}
    assert "registry.log" in logs and "gateway.log" in logs, sorted(logs)
    # The logs saw the chain (an access line of the registration), so their silence means something.
    assert "/api/v1/households" in logs["registry.log"], "the registry logged no request of the chain"
    leaks = sorted({name for name, text in logs.items() for form in forms if form in text})
    assert not leaks, f"personal data of the chain in the logs of: {', '.join(leaks)}"


# ---------------------------------------------------------------- the gateway itself


def test_09_closing_a_household_disposes_of_its_open_alert(gw, token) -> None:  # type: ignore[no-untyped-def]
    """Beside the chain: a household with an open alert is closed in the registry (注销) ->
    household.changed "closed" -> scoring's assessment.withdrawn -> alerts dispose of the alert as
    household_closed, so it never goes overdue or escalates."""
    run = uuid.uuid4().hex[:10]
    head = new_resident_id(date(1951, 6, 2), "female")
    body = {"area_code": VILLAGE, "address": f"合成路 {run[:4]} 号 2 幢 202", "register_status": "dibao",
            "channel": "survey", "members": [{"resident_id": head, "name": "司马秀英", "relation": "head"}],
            "facts": [{"fact": "income_wages_m", "value": 0}]}
    hh = expect(gw.post("/api/v1/households", json=body, headers=token("village-worker")), 201)["id"]
    record = {"record_id": f"HLTH-E2E-CLOSE-{run}", "item": "major_illness_diagnosis", "resident_id": head,
              "value": "cancer", "effective_date": (date.today() - timedelta(days=1)).isoformat()}
    expect(gw.post("/api/v1/feeds/records", json=record, headers=token("dept-health")), 200)
    town = token("town-worker")

    def alert_of(status: str) -> Any:
        r = gw.get("/api/v1/alerts", params={"village": VILLAGE, "limit": 100, "status": status}, headers=town)
        mine = [a for a in r.json().get("items", []) if a.get("household_id") == hh] if r.status_code == 200 else []
        return mine[0] if mine else _Seen(f"GET /api/v1/alerts?status={status} -> {r.status_code}, none for it")

    alert = poll("an open alert for the household", lambda: alert_of("raised"))
    r = gw.get(f"/api/v1/households/{hh}", headers=town)
    expect(gw.post(f"/api/v1/households/{hh}/close", json={"reason": "全户迁出本市"},
                   headers={**town, "If-Match": etag(r)}), 200)

    def disposed() -> Any:
        r = gw.get(f"/api/v1/alerts/{alert['id']}", headers=town)
        detail = r.json() if r.status_code == 200 else {}
        return detail if detail.get("status") == "disposed" else _Seen(f"status {detail.get('status')}")

    detail = poll("the alert disposed after the household was closed", disposed)
    assert detail["disposition"]["kind"] == "household_closed", detail["disposition"]


def test_unified_openapi_and_docs(gw) -> None:  # type: ignore[no-untyped-def]
    routes = yaml.safe_load((ROOT / "config" / "routes.yaml").read_text())
    prefix = routes["prefix"]
    doc = expect(gw.get("/openapi.json"), 200)
    paths = doc.get("paths", {})
    assert str(doc.get("openapi", "")).startswith("3."), doc.get("openapi")
    missing = {}
    for service, resources in routes["services"].items():
        served = [r for r in resources if any(p == f"{prefix}/{r}" or p.startswith(f"{prefix}/{r}/") for p in paths)]
        if not served:
            missing[service] = resources
    assert not missing, f"the gateway's OpenAPI lists no path of: {missing}; it has {sorted(paths)[:40]}"
    for expected in ("/api/v1/households", "/api/v1/alerts", "/api/v1/offers", "/api/v1/needs"):
        assert expected in paths, f"{expected} not in the unified OpenAPI"
    r = gw.get("/docs")
    assert r.status_code == 200, f"/docs: {r.status_code} {r.text[:300]}"
    assert "text/html" in r.headers.get("content-type", ""), r.headers.get("content-type")


def test_errors_are_problems(gw, token) -> None:  # type: ignore[no-untyped-def]
    town = token("town-worker")
    # An unknown route, under /api/v1 and outside it.
    assert_problem(gw.get("/api/v1/no-such-resource", headers=town), 404)
    assert_problem(gw.get("/no/such/route"), 404)
    # A missing token, and a malformed one.
    body = assert_problem(gw.get("/api/v1/households"), 401)
    assert "detail" in body
    assert_problem(gw.get("/api/v1/alerts", headers={"Authorization": "Bearer not-a-token"}), 401)
    # A malformed JSON body, on a service behind the gateway.
    for path in ("/api/v1/households", "/api/v1/needs"):
        r = gw.post(path, content=b'{"area_code": "330106001001", ', headers={**town, "Content-Type": "application/json"})
        assert_problem(r, (400, 422))
    # An invalid field: a problem naming the field, never repeating the personal data sent.
    bad_id, name = "330106199003070015", "司马无忌"  # check character wrong on purpose
    r = gw.post("/api/v1/households", headers=town, json={
        "area_code": VILLAGE, "address": "合成路 1 号", "register_status": "dibao", "channel": "survey",
        "members": [{"resident_id": bad_id, "name": name, "relation": "head"}]})
    problem = assert_problem(r, (400, 422))
    assert bad_id not in r.text and name not in json.dumps(problem, ensure_ascii=False), \
        f"POST /api/v1/households {r.status_code}: the problem repeats the input: {r.text[:500]}"
    # A wrong client secret at the issuer.
    r = gw.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "town-worker",
                                      "client_secret": "wrong"})
    assert r.status_code in (400, 401), f"/oauth/token with a wrong secret: {r.status_code} {r.text[:300]}"
