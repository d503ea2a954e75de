"""The OpenAPI document is a product: stable operation ids, every route declares its problems.

(The session fixture also checks, at the end of the run, that every status the tests saw a
route answer is declared by that route.)"""

from registry.app import create_app

OPERATIONS = {
    "areas:counts", "areas:get", "areas:list", "areas:tree", "audit:list",
    "declarations:accept", "declarations:get", "declarations:list", "declarations:reject", "declarations:submit",
    "feed:read", "feeds:batch-rejections", "feeds:catalogue", "feeds:deliver-batch", "feeds:deliver-record",
    "feeds:get-batch", "feeds:health", "feeds:list-batches",
    "households:add-member", "households:change-status", "households:close", "households:create", "households:fact-history",
    "households:get", "households:list", "households:list-surveys", "households:mine", "households:record-survey",
    "households:status-history", "households:update",
    "leads:dismiss", "leads:get", "leads:list", "leads:open-household",
    "members:get", "members:lookup", "members:reveal", "members:update",
    "reconciliation:get", "reconciliation:list", "reconciliation:resolve", "snapshot:households",
}
PUBLIC_RESOURCES = {"households", "members", "areas", "feeds", "declarations", "leads", "reconciliation", "audit"}


def _operations():
    spec = create_app().openapi()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def test_operation_ids_are_unique_and_stable():
    ids = [op["operationId"] for _, _, op in _operations()]
    assert len(ids) == len(set(ids))
    assert set(ids) == OPERATIONS


def test_every_route_declares_its_problems():
    for path, method, op in _operations():
        responses = op["responses"]
        where = f"{method.upper()} {path}"
        assert "401" in responses, where
        params = {p["name"]: p for p in op.get("parameters", [])}
        if any(p["in"] == "path" for p in params.values()):
            assert {"404", "422"} <= set(responses), where
        if "cursor" in params:
            assert "400" in responses, where
        if "requestBody" in op:
            assert {"413", "415", "422"} <= set(responses), where
        if "412" in responses:
            assert "428" in responses, where
        for code, response in responses.items():
            if code.startswith(("4", "5")):
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (where, code)
        assert op.get("summary"), where


def test_public_paths_are_routed_to_the_registry_by_the_gateway():
    for path, _, _ in _operations():
        if path.startswith("/api/v1/"):
            assert path.split("/")[3] in PUBLIC_RESOURCES, path
        else:
            assert path.startswith("/internal/"), path


def test_examples_carry_no_real_looking_personal_data():
    import json

    text = json.dumps(create_app().openapi(), ensure_ascii=False)
    # The only ID number in the document is the standard synthetic test number.
    import re

    numbers = set(re.findall(r"\b\d{17}[\dX]\b", text))
    assert numbers <= {"330106199003070014"}
