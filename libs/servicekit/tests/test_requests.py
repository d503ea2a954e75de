"""Bad input gets a clear problem, never a 500 and never the input echoed back."""

import json
import re

import pytest

from servicekit.testing import TOWNSHIP

AREA = "330106001001"
SECRET_ID = "330106199003070014"


async def test_malformed_json_is_400_problem(kit):
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        r = await c.post("/api/v1/notes", content=b'{"area_code": ', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("malformed-body")


async def test_json_nested_too_deeply_is_the_same_malformed_body_problem(kit):
    """A body the JSON parser gives up on (nested past its recursion limit) is the malformed-body
    problem every broken body gets, not FastAPI's bare 400."""
    deep = b'{"area_code": "330106001001", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        r = await c.post("/api/v1/notes", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("malformed-body")
    assert "nested too deeply" in r.json()["detail"]


async def test_unknown_field_is_422_without_echo(kit):
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        r = await c.post("/api/v1/notes", json={"area_code": AREA, "text": "x", "resident_id": SECRET_ID})
    assert r.status_code == 422
    body = r.json()
    assert body["errors"][0]["location"] == "body.resident_id"
    assert body["errors"][0]["issue"] == "extra_forbidden"
    assert SECRET_ID not in r.text


async def test_pattern_mismatch_does_not_echo_value(kit):
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        r = await c.post("/api/v1/notes", json={"area_code": SECRET_ID, "text": "x"})
    assert r.status_code == 422
    assert SECRET_ID not in r.text


async def test_over_long_string_is_422(kit):
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        r = await c.post("/api/v1/notes", json={"area_code": AREA, "text": "x" * 201})
    assert r.status_code == 422
    assert r.json()["errors"][0]["issue"] == "string_too_long"


async def test_wrong_content_type_is_415(kit):
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        r = await c.post("/api/v1/notes", content=b"area_code=1", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    assert r.json()["status"] == 415


async def test_oversized_body_is_413_by_length_and_by_stream(kit):
    big = json.dumps({"area_code": AREA, "text": "x" * 2_000_000}).encode()
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        r = await c.post("/api/v1/notes", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413

        async def chunks():
            for _ in range(40):
                yield b"x" * 65536

        r = await c.post("/api/v1/notes", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


async def test_a_nul_character_or_nan_is_refused_before_the_database(kit):
    """PostgreSQL stores no NUL in text: a note holding one, or a NUL in the address, was a 500 from
    the database there (and stored on SQLite). Now a problem on both, and nothing written. So is a
    NaN, which PostgreSQL's json refuses too."""
    from sqlalchemy import text

    async def notes() -> int:
        async with kit.db.sessionmaker() as session:
            return (await session.execute(text("SELECT count(*) FROM notes"))).scalar_one()

    before = await notes()
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        r = await c.post("/api/v1/notes", json={"area_code": AREA, "text": "a\u0000b"})
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
        assert "NUL" in r.json()["detail"]

        async def in_pieces():  # the escape split across two pieces of the body
            yield b'{"area_code": "' + AREA.encode() + b'", "text": "a\\u00'
            yield b'00"}'

        r = await c.post("/api/v1/notes", content=in_pieces(), headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert await notes() == before  # nothing was written
        # an escaped backslash before "u0000" is a backslash and text: taken as it is
        r = await c.post("/api/v1/notes", json={"area_code": AREA, "text": "a\\u0000b"})
        assert r.status_code == 201, r.text
        assert (await c.get(f"/api/v1/notes/{r.json()['id']}")).json()["text"] == "a\\u0000b"
        # NaN and Infinity are not JSON (Python's parser reads them): a 400, as for other non-JSON
        before = await notes()
        for number in (b"NaN", b"-Infinity"):
            r = await c.post("/api/v1/notes", content=b'{"area_code": "' + AREA.encode() + b'", "text": ' + number + b"}",
                             headers={"content-type": "application/json"})
            assert r.status_code == 400 and "NaN and Infinity" in r.json()["detail"], r.text
        assert await notes() == before
        r = await c.post("/api/v1/notes", json={"area_code": AREA, "text": "NaN, or Infinity"})  # words: taken
        assert r.status_code == 201, r.text
        for address in ("/api/v1/notes/a%00b", "/api/v1/notes/x?q=a%00"):
            r = await c.get(address)
            assert r.status_code == 400 and "NUL" in r.json()["detail"], address


@pytest.mark.parametrize("text", [b'"a\\u0000"', b'"\\\\u0000"', b'"\\\\\\u0000"', b'"u0000\\\\"',
                                  b'"\\\\\\\\u0000"', b'"\\u00000"', b'"x"'])
def test_a_nul_escape_is_found_and_an_escaped_backslash_is_not_one(text):
    from servicekit.app import holds_nul

    assert holds_nul(text) == (json.loads(text).find("\x00") >= 0)


async def test_unknown_route_and_method(kit):
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        assert (await c.get("/api/v1/nothing")).status_code == 404
        r = await c.delete("/api/v1/notes")
    assert r.status_code == 405
    assert r.headers["content-type"] == "application/problem+json"


async def test_unexpected_error_is_bare_500(kit):
    import httpx

    transport = httpx.ASGITransport(app=kit.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=kit.identity.headers("city_admin")) as c:
        r = await c.get("/api/v1/notes/boom/now")
    assert r.status_code == 500
    assert SECRET_ID not in r.text
    assert r.json()["type"].endswith(":internal")


async def test_a_transaction_aborted_for_a_concurrent_one_is_a_503_to_retry_with_nothing_applied(kit):
    """A deadlock's victim (SQLSTATE 40P01): nothing was committed and the same request may simply
    be sent again, so the answer is a 503 problem with Retry-After, not a 500."""
    import uuid

    note_id = str(uuid.uuid4())
    async with kit.client("city_admin") as c:
        r = await c.post(f"/api/v1/notes/boom/deadlock/{note_id}")
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json", r.text
        assert r.headers["retry-after"] == "1" and "concurrent change" in r.json()["detail"]
        assert (await c.get(f"/api/v1/notes/{note_id}")).status_code == 404


async def test_request_id_is_echoed_or_made(kit):
    async with kit.client("town_worker", area=TOWNSHIP) as c:
        r = await c.get("/livez", headers={"x-request-id": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123"
        r = await c.get("/livez", headers={"x-request-id": "bad id with spaces"})
        assert r.headers["x-request-id"] != "bad id with spaces"


async def test_probes(kit):
    async with kit.client() as c:
        assert (await c.get("/livez")).json() == {"status": "ok"}
        r = await c.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"]["migrations"] == "ok"


async def test_openapi_declares_problem_and_security(kit):
    async with kit.client() as c:
        doc = (await c.get("/openapi.json")).json()
    assert "Problem" in doc["components"]["schemas"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    op = doc["paths"]["/api/v1/notes"]["post"]
    assert op["operationId"] == "notes:create"
    assert op["security"] == [{"bearer": []}]
    # what the kit answers before the route, declared: a body not JSON, too large, of another type
    assert {"400", "413", "415"} <= set(op["responses"])
    assert op["responses"]["415"]["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    # any operation: 400 for a NUL character in the address; no body, no 413 or 415
    assert "400" in doc["paths"]["/api/v1/notes/{note_id}"]["get"]["responses"]
    assert not {"413", "415"} & set(doc["paths"]["/api/v1/notes/{note_id}"]["get"]["responses"])


async def test_openapi_declares_the_headers_the_kit_reads(kit):
    """If-Match where an operation answers 412 (required where it answers 428 without it), and
    Idempotency-Key where an operation takes one, with its form: each a text, never null."""
    async with kit.client() as c:
        doc = (await c.get("/openapi.json")).json()

    def headers(path: str, method: str) -> dict[str, dict]:
        return {p["name"]: p for p in doc["paths"][path][method].get("parameters", []) if p["in"] == "header"}

    update = headers("/api/v1/notes/{note_id}", "put")
    assert set(update) == {"If-Match"}
    assert update["If-Match"]["required"] is True and update["If-Match"]["schema"]["type"] == "string"
    create = headers("/api/v1/notes", "post")
    assert set(create) == {"Idempotency-Key"}
    key = create["Idempotency-Key"]
    assert key["required"] is False
    assert key["schema"]["type"] == "string" and "anyOf" not in key["schema"]
    assert re.fullmatch(key["schema"]["pattern"], "retry-2026-11-29.a:1")
    assert not re.fullmatch(key["schema"]["pattern"], "short")
    assert headers("/api/v1/notes/{note_id}", "get") == {}
    # the read of that resource says it answers the ETag to send back
    read = doc["paths"]["/api/v1/notes/{note_id}"]["get"]["responses"]["200"]
    assert read["headers"]["ETag"]["schema"]["type"] == "string"
    assert "headers" not in doc["paths"]["/api/v1/notes"]["post"]["responses"]["201"]
