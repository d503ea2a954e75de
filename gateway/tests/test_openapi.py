"""The merged OpenAPI document: public paths only, shared components once, clashes renamed."""

from __future__ import annotations

import copy
from typing import Any

from gateway.openapi import merge_documents
from gateway.routes import RouteTable
from gwtest import REPO, gateway_settings, running_gateway

PROBLEM = {
    "type": "object",
    "properties": {"type": {"type": "string"}, "status": {"type": "integer"}},
}
SHARED = {"type": "object", "properties": {"status": {"$ref": "#/components/schemas/Status"}}}


def _get(ref: str, op_id: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": op_id,
            "security": [{"HTTPBearer": []}],
            "responses": {
                "200": {"content": {"application/json": {"schema": {"$ref": ref}}}},
                "404": {
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    }
                },
            },
        }
    }


REGISTRY = {
    "openapi": "3.1.0",
    "paths": {
        "/api/v1/households": _get("#/components/schemas/Household", "list"),
        "/api/v1/assessments": _get(
            "#/components/schemas/Household", "stray"
        ),  # not registry's resource
        "/internal/feed": _get("#/components/schemas/FeedPage", "feed"),
        "/livez": {"get": {"responses": {"200": {"description": "ok"}}}},
    },
    "components": {
        "schemas": {
            "Household": {
                "type": "object",
                "properties": {
                    "status": {"$ref": "#/components/schemas/Status"},
                    "shared": {"$ref": "#/components/schemas/Shared"},
                },
            },
            "Status": {"type": "string", "enum": ["active", "closed"]},
            "Shared": SHARED,
            "Problem": PROBLEM,
            "FeedPage": {"type": "object"},
        },
        "securitySchemes": {"HTTPBearer": {"type": "http", "scheme": "bearer"}},
    },
    "tags": [{"name": "households"}],
}
SCORING = {
    "openapi": "3.1.0",
    "paths": {"/api/v1/assessments": _get("#/components/schemas/Assessment", "assessments:list")},
    "components": {"schemas": {"Assessment": {"type": "object"}, "Problem": PROBLEM}},
}
ALERTS = {
    "openapi": "3.1.0",
    "paths": {"/api/v1/alerts": _get("#/components/schemas/Alert", "list")},
    "components": {
        "schemas": {
            "Alert": {
                "type": "object",
                "properties": {
                    "status": {"$ref": "#/components/schemas/Status"},
                    "shared": {"$ref": "#/components/schemas/Shared"},
                },
            },
            "Status": {"type": "string", "enum": ["raised", "disposed"]},
            "Shared": SHARED,  # the same text as the registry's, but its Status is another one
            "Problem": PROBLEM,
        }
    },
}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in _refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _check_merged(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    assert {"/api/v1/households", "/api/v1/assessments", "/api/v1/alerts"} <= paths.keys()
    assert "/internal/feed" not in paths and "/livez" not in paths and "/readyz" not in paths
    assert (
        paths["/api/v1/assessments"]["get"]["operationId"] == "assessments:list"
    )  # scoring's, not the stray
    schemas = doc["components"]["schemas"]
    assert "Problem" in schemas and "Assessment" in schemas
    assert "Status" not in schemas and "Shared" not in schemas
    assert schemas["registry_Status"]["enum"] == ["active", "closed"]
    assert schemas["alerts_Status"]["enum"] == ["raised", "disposed"]
    household = schemas["Household"]["properties"]
    assert household["status"]["$ref"] == "#/components/schemas/registry_Status"
    assert household["shared"]["$ref"] == "#/components/schemas/registry_Shared"
    assert (
        schemas["registry_Shared"]["properties"]["status"]["$ref"]
        == "#/components/schemas/registry_Status"
    )
    assert schemas["Alert"]["properties"]["shared"]["$ref"] == "#/components/schemas/alerts_Shared"
    assert "FeedPage" not in schemas  # only an internal path used it
    # Every reference resolves inside the document.
    for ref in _refs(doc):
        section, name = ref.removeprefix("#/components/").split("/")
        assert name in doc["components"][section], ref
    # One bearer scheme, required everywhere under /api/v1; services' own schemes are gone.
    assert "HTTPBearer" not in doc["components"]["securitySchemes"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert {"bearerAuth": []} in doc["security"]
    assert all("security" not in op for op in paths["/api/v1/households"].values())
    op_ids = [
        op["operationId"] for item in paths.values() for op in item.values() if "operationId" in op
    ]
    assert len(op_ids) == len(set(op_ids))


def test_merge_documents_unit():
    routes = RouteTable.load(
        REPO / "config" / "routes.yaml",
        {s: "http://x" for s in ("registry", "scoring", "alerts", "matching")},
        max_body_bytes=1,
        max_batch_body_bytes=1,
    )
    docs = {
        "registry": copy.deepcopy(REGISTRY),
        "scoring": SCORING,
        "alerts": ALERTS,
        "matching": None,
    }
    merged = merge_documents(docs, routes, info={"title": "t", "version": "1"})
    _check_merged(merged)
    assert merged["x-missing-services"] == ["matching"]
    assert docs["registry"] == REGISTRY  # inputs (the cache) are not modified


def test_discriminator_mappings_are_rewritten():
    routes = RouteTable.load(
        REPO / "config" / "routes.yaml",
        {s: "http://x" for s in ("registry", "scoring", "alerts", "matching")},
        max_body_bytes=1,
        max_batch_body_bytes=1,
    )

    def doc(resource: str, enum: list[str]) -> dict[str, Any]:
        return {
            "paths": {f"/api/v1/{resource}": _get("#/components/schemas/Event", f"{resource}:get")},
            "components": {
                "schemas": {
                    "Event": {
                        "oneOf": [{"$ref": "#/components/schemas/Kind"}],
                        "discriminator": {
                            "propertyName": "k",
                            "mapping": {"a": "#/components/schemas/Kind"},
                        },
                    },
                    "Kind": {"enum": enum},
                }
            },
        }

    merged = merge_documents(
        {"registry": doc("households", ["x"]), "alerts": doc("alerts", ["y"])},
        routes,
        info={"title": "t", "version": "1"},
    )
    schemas = merged["components"]["schemas"]
    assert (
        schemas["registry_Event"]["discriminator"]["mapping"]["a"]
        == "#/components/schemas/registry_Kind"
    )
    assert schemas["alerts_Event"]["oneOf"][0]["$ref"] == "#/components/schemas/alerts_Kind"


async def test_merged_document_through_the_gateway(tmp_path, upstreams):
    upstreams["registry"].openapi, upstreams["scoring"].openapi, upstreams["alerts"].openapi = (
        REGISTRY,
        SCORING,
        ALERTS,
    )
    urls = {name: fake.url for name, fake in upstreams.items()}  # matching: nothing listens
    try:
        async with running_gateway(gateway_settings(tmp_path, urls)) as gw:
            response = await gw.client.get("/openapi.json")
            assert response.status_code == 200
            doc = response.json()
            _check_merged(doc)
            assert doc["x-missing-services"] == ["matching"]
            assert doc["info"]["title"].startswith("Zhongfu")
            # The gateway's own paths: the development issuer, open (no token needed).
            assert doc["paths"]["/oauth/token"]["post"]["security"] == []
            assert "/.well-known/openid-configuration" in doc["paths"]
            assert "devIssuer" in doc["components"]["securitySchemes"]
            assert "/livez" not in doc["paths"] and "/openapi.json" not in doc["paths"]
            # Cached: a service going away does not drop its paths at once.
            upstreams["scoring"].openapi = None
            again = (await gw.client.get("/openapi.json")).json()
            assert "/api/v1/assessments" in again["paths"]

            docs = await gw.client.get("/docs")
            assert (
                docs.status_code == 200
                and "/openapi.json" in docs.text
                and "swagger" in docs.text.lower()
            )
    finally:
        for fake in upstreams.values():
            fake.openapi = None


def test_gateway_answers_are_declared_on_every_operation():
    routes = RouteTable.load(
        REPO / "config" / "routes.yaml",
        {s: "http://x" for s in ("registry", "scoring", "alerts", "matching")},
        max_body_bytes=1,
        max_batch_body_bytes=1,
    )
    post = {
        "post": {
            "operationId": "households:create",
            "requestBody": {"content": {}},
            "responses": {"201": {"description": "created"}, "401": {"description": "own"}},
        }
    }
    doc = {
        "paths": {"/api/v1/households": {**_get("#/components/schemas/Problem", "list"), **post}},
        "components": {"schemas": {"Problem": PROBLEM}},
    }
    merged = merge_documents({"registry": doc}, routes, info={"title": "t", "version": "1"})
    item = merged["paths"]["/api/v1/households"]
    assert {"401", "429", "502", "504"} <= item["get"]["responses"].keys()
    assert "413" not in item["get"]["responses"]  # no body, no 413
    assert item["post"]["responses"]["413"] == {
        "$ref": "#/components/responses/GatewayPayloadTooLarge"
    }
    assert item["post"]["responses"]["401"] == {"description": "own"}  # the service's own wins
    too_many = merged["components"]["responses"]["GatewayTooManyRequests"]
    assert "Retry-After" in too_many["headers"]
    assert too_many["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
