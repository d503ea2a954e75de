"""Retries never duplicate; stale writes never win."""

import asyncio

from sqlalchemy import func, select

from servicekit.testing import TOWNSHIP

from kitapp.app import Note

AREA = "330106001001"


async def count_notes(db, text):
    async with db.sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(Note).where(Note.text == text))).scalar_one()


async def test_same_key_same_body_replays(kit):
    headers = {"Idempotency-Key": "key-replay-0001"}
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        first = await c.post("/api/v1/notes", json={"area_code": AREA, "text": "idem-1"}, headers=headers)
        second = await c.post("/api/v1/notes", json={"area_code": AREA, "text": "idem-1"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await count_notes(kit.db, "idem-1") == 1


async def test_same_key_other_body_is_422(kit):
    headers = {"Idempotency-Key": "key-mismatch-01"}
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        await c.post("/api/v1/notes", json={"area_code": AREA, "text": "idem-2"}, headers=headers)
        r = await c.post("/api/v1/notes", json={"area_code": AREA, "text": "idem-2-other"}, headers=headers)
    assert r.status_code == 422
    assert await count_notes(kit.db, "idem-2-other") == 0


async def test_failed_request_releases_key(kit):
    headers = {"Idempotency-Key": "key-release-01"}
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        r = await c.post("/api/v1/notes", json={"area_code": AREA, "text": "idem-3", "fail_after_publish": True}, headers=headers)
        assert r.status_code == 409
        r = await c.post("/api/v1/notes", json={"area_code": AREA, "text": "idem-3", "fail_after_publish": True}, headers=headers)
        assert r.status_code == 409  # re-executed, not replayed
        assert "idempotent-replayed" not in r.headers


async def test_concurrent_duplicates_do_the_work_once(kit):
    headers = {"Idempotency-Key": "key-concurrent-1"}
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        results = await asyncio.gather(
            *[c.post("/api/v1/notes", json={"area_code": AREA, "text": "idem-4"}, headers=headers) for _ in range(8)]
        )
    assert {r.status_code for r in results} == {201}
    assert len({r.json()["id"] for r in results}) == 1
    assert await count_notes(kit.db, "idem-4") == 1


async def test_keys_are_per_caller(kit):
    headers = {"Idempotency-Key": "key-per-caller1"}
    async with kit.client("town_worker", area=TOWNSHIP, subject="a") as a, kit.client("town_worker", area=TOWNSHIP, subject="b") as b:
        ra = await a.post("/api/v1/notes", json={"area_code": AREA, "text": "idem-5"}, headers=headers)
        rb = await b.post("/api/v1/notes", json={"area_code": AREA, "text": "idem-5"}, headers=headers)
    assert ra.json()["id"] != rb.json()["id"]


async def test_bad_key_is_400(kit):
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        r = await c.post("/api/v1/notes", json={"area_code": AREA, "text": "x"}, headers={"Idempotency-Key": "short"})
    assert r.status_code == 400


async def test_if_match_required_and_checked(kit):
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        note = (await c.post("/api/v1/notes", json={"area_code": AREA, "text": "etag"})).json()
        got = await c.get(f"/api/v1/notes/{note['id']}")
        tag = got.headers["etag"]
        assert (await c.put(f"/api/v1/notes/{note['id']}", json={"text": "a"})).status_code == 428
        ok = await c.put(f"/api/v1/notes/{note['id']}", json={"text": "a"}, headers={"If-Match": tag})
        assert ok.status_code == 200 and ok.headers["etag"] != tag
        stale = await c.put(f"/api/v1/notes/{note['id']}", json={"text": "b"}, headers={"If-Match": tag})
        assert stale.status_code == 412


async def test_if_match_that_is_no_tag_of_ours_is_412_and_changes_nothing(kit):
    """An If-Match this API could not have handed out -- other digits than ASCII's (latin-1's
    superscript two, Arabic-Indic three), more digits than any version has -- matches no version:
    412, never a 500 from reading it as a number. The forms the API's own tags take still work."""
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        note = (await c.post("/api/v1/notes", json={"area_code": AREA, "text": "tags"})).json()
        url = f"/api/v1/notes/{note['id']}"
        for tag in (b'"v\xb2"', '"v\u0663"'.encode(), b'"v' + b"1" * 5000 + b'"', b'"v-1"', b'"v 1"', b'"v"'):
            answer = await c.put(url, json={"text": "never"}, headers={"If-Match": tag})
            assert answer.status_code == 412, tag[:20]
            assert answer.headers["content-type"].startswith("application/problem+json")
        assert await count_notes(kit.db, "never") == 0
        tag = (await c.get(url)).headers["etag"]
        assert (await c.put(url, json={"text": "weak"}, headers={"If-Match": f"W/{tag}"})).status_code == 200
        tag = (await c.get(url)).headers["etag"]
        assert (await c.put(url, json={"text": "bare"}, headers={"If-Match": tag.strip('"')})).status_code == 200


async def test_concurrent_writers_one_wins(kit):
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        note = (await c.post("/api/v1/notes", json={"area_code": AREA, "text": "race"})).json()
        tag = (await c.get(f"/api/v1/notes/{note['id']}")).headers["etag"]
        results = await asyncio.gather(
            *[c.put(f"/api/v1/notes/{note['id']}", json={"text": f"w{i}"}, headers={"If-Match": tag}) for i in range(5)]
        )
    assert sorted(r.status_code for r in results) == [200, 412, 412, 412, 412]


async def test_out_of_scope_reads_as_404(kit):
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        note = (await c.post("/api/v1/notes", json={"area_code": AREA, "text": "scoped"})).json()
    async with kit.client("town_worker", area="330106002000") as other:
        r = await other.get(f"/api/v1/notes/{note['id']}")
    assert r.status_code == 404
