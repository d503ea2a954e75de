"""The OpenAPI document is a product: stable operation ids, summaries, bodies that forbid unknown
fields, no personal data in examples, problem documents for errors."""

from __future__ import annotations

import json
import re

import pytest

ID = re.compile(r"^[a-z]+:[a-z][a-z-]*$")
# HSDS documents carry many fields matching ignores on purpose (see offers/schemas.py).
OPEN_BODIES = {"HsdsDocument"}


@pytest.fixture(scope="module")
async def document(svc):
    async with svc.client() as c:
        r = await c.get("/openapi.json")
        assert r.status_code == 200
        return r.json()


def operations(doc):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path.startswith("/api/v1/"):
                yield path, method, op


async def test_operation_ids_are_stable_unique_and_summarised(document):
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    assert all(ID.match(i) for i in ids), [i for i in ids if not ID.match(i)]
    assert all(op.get("summary") and op.get("tags") for _, _, op in operations(document))
    resources = {path.split("/")[3] for path, _, _ in operations(document)}
    assert resources == {"sites", "catalogue", "organisations", "offers", "needs", "matches", "points"}


async def test_idempotency_key_is_declared_and_required_where_it_must_be_sent(document):
    """Every create and state change declares Idempotency-Key; the redemptions, which refuse a
    request without one (400 idempotency-key-required), declare it required, the others not."""
    required = {}
    for path, method, op in operations(document):
        for p in op.get("parameters", []):
            if p["in"] == "header" and p["name"] == "Idempotency-Key":
                required[(method, path)] = p["required"]
        assert "x-idempotency-key-required" not in op
    assert {k for k, v in required.items() if v} == {
        ("post", "/api/v1/points/accounts/{account_id}/redemptions"), ("post", "/api/v1/points/me/redemptions")}
    assert required[("post", "/api/v1/needs")] is False


async def test_errors_are_problem_documents_and_401_is_declared_everywhere(document):
    for path, method, op in operations(document):
        responses = op["responses"]
        assert "401" in responses, (method, path)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert "application/problem+json" in response["content"], (method, path, status)


async def test_request_bodies_forbid_unknown_fields(document):
    schemas = document["components"]["schemas"]
    for path, method, op in operations(document):
        body = op.get("requestBody")
        if not body:
            continue
        ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        if ref in OPEN_BODIES:
            continue
        assert schemas[ref].get("additionalProperties") is False, (method, path, ref)


async def test_strings_and_lists_in_bodies_are_bounded(document):
    schemas = document["components"]["schemas"]
    unbounded = []

    def walk(name, schema, where):
        if "$ref" in schema:
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in schema.get(key, []):
                walk(name, sub, where)
        if schema.get("type") == "string" and not ({"maxLength", "pattern", "enum", "format", "const"} & set(schema)):
            unbounded.append(f"{name}.{where}")
        if schema.get("type") == "array":
            if "maxItems" not in schema:
                unbounded.append(f"{name}.{where}")
            walk(name, schema.get("items", {}), where + "[]")
        for prop, sub in schema.get("properties", {}).items():
            walk(name, sub, prop)

    bodies = {op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
              for _, _, op in operations(document) if op.get("requestBody")}
    seen, todo = set(), list(bodies - OPEN_BODIES)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        walk(name, schemas[name], "")
        todo += [r.rsplit("/", 1)[-1] for r in re.findall(r'"\\$ref": "([^"]+)"', json.dumps(schemas[name]))]
    assert unbounded == []


async def test_examples_hold_no_personal_data(document):
    text = json.dumps(document, ensure_ascii=False)
    assert not re.search(r"\b\d{17}[\dX]\b", text), "an 18-character ID number in the document"
    assert not re.search(r"\b1[3-9]\d{9}\b", text), "a mobile number in the document"
