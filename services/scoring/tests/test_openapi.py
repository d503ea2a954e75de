"""The OpenAPI document is a product: stable operation ids, summaries, every emitted status declared."""

from __future__ import annotations

import json
import re

EXPECTED = {
    "assessments:list", "assessments:get", "assessments:history", "assessments:what_would_help", "assessments:review",
    "assessments:snapshot", "assessments:snapshot_withdrawn", "portraits:get", "models:list", "models:create", "models:schema", "models:active",
    "models:activations", "models:activation", "models:get", "models:update", "models:validate", "models:simulate",
    "models:activate", "feed:read",
}


async def test_openapi_document(svc):
    async with svc.client() as c:
        r = await c.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    ops = {}
    for path, methods in doc["paths"].items():
        assert path.startswith(("/api/v1/assessments", "/api/v1/models", "/api/v1/portraits", "/internal/")), path
        for method, op in methods.items():
            ops[op["operationId"]] = (method, path, op)
    assert set(ops) == EXPECTED
    for op_id, (method, path, op) in ops.items():
        if op_id == "feed:read":
            continue  # the kit's feed router (it does not declare its 403: reported to the kit)
        assert op.get("summary"), op_id
        codes = set(op["responses"])
        assert {"401", "403"} <= codes, op_id
        if "{" in path and not path.startswith("/internal"):
            assert "404" in codes, op_id
        if method in ("put",):
            assert {"412", "428"} <= codes, op_id
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                assert "application/problem+json" in response["content"], (op_id, code)
    assert ops["models:activate"][2]["responses"].keys() >= {"202", "409", "422"}
    assert ops["models:create"][2]["responses"].keys() >= {"201", "409"}
    schemas = doc["components"]["schemas"]
    assert "Problem" in schemas and "HTTPValidationError" not in schemas
    # request bodies refuse unknown fields
    for name in ("ReviewCreate", "ModelCreate", "ModelUpdate"):
        assert schemas[name]["additionalProperties"] is False, name
    # examples are synthetic: no resident ID number anywhere in the document
    assert not re.search(r"\b\d{17}[\dX]\b", json.dumps(doc))


async def test_served_status_codes_are_declared(svc):
    """Drive each error path once and check the code is among the operation's declared ones."""
    async with svc.client() as c:
        doc = (await c.get("/openapi.json")).json()
    declared = doc["paths"]["/api/v1/assessments/{household_id}/review"]["put"]["responses"]
    async with svc.client("town_worker", area="330106001000") as c:
        missing = await c.put("/api/v1/assessments/nope/review", json={"level": 1, "reason": "x"}, headers={"If-Match": '"v1"'})
    assert str(missing.status_code) in declared and missing.headers["content-type"].startswith("application/problem+json")
