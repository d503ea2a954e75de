"""One OpenAPI document for the product: every service's public paths merged with the gateway's.

Each service's document is fetched and cached; its /api/v1 paths for the resources the route
table gives it are kept with the components they reach. Identical components are shared; a
name two services use for different things is prefixed with the service's name in both, and
their references are rewritten.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp

from gateway.routes import RouteTable

log = logging.getLogger(__name__)

_REF_PREFIX = "#/components/"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
BEARER = "bearerAuth"
DEV_ISSUER = "devIssuer"

Document = dict[str, Any]
Key = tuple[str, str]  # (components section, name)


def _split_ref(ref: str) -> Key | None:
    if not ref.startswith(_REF_PREFIX):
        return None
    section, _, name = ref[len(_REF_PREFIX) :].partition("/")
    return (section, name) if name and "/" not in name else None


def _refs(node: Any) -> Iterator[Key]:
    """Every component reference in a JSON tree, discriminator mappings included."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                if (found := _split_ref(value)) is not None:
                    yield found
            elif key == "discriminator" and isinstance(value, dict):
                for target in (value.get("mapping") or {}).values():
                    if isinstance(target, str) and (found := _split_ref(target)) is not None:
                        yield found
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _rewrite(node: Any, renames: dict[Key, str]) -> Any:
    """A copy of the tree with references to renamed components pointing at the new names."""
    if not renames:
        return node

    def target(ref: Any) -> Any:
        found = _split_ref(ref) if isinstance(ref, str) else None
        return f"{_REF_PREFIX}{found[0]}/{renames[found]}" if found in renames else ref

    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref":
                out[key] = target(value)
            elif (
                key == "discriminator"
                and isinstance(value, dict)
                and isinstance(value.get("mapping"), dict)
            ):
                out[key] = {**value, "mapping": {k: target(t) for k, t in value["mapping"].items()}}
            else:
                out[key] = _rewrite(value, renames)
        return out
    if isinstance(node, list):
        return [_rewrite(item, renames) for item in node]
    return node


class _Source:
    """What one document contributes: its kept paths and the components they reach."""

    def __init__(
        self,
        name: str,
        paths: dict[str, Any],
        components: dict[str, dict[str, Any]],
        tags: list[Any],
    ):
        self.name = name
        self.paths = paths
        self.tags = tags
        self.components = self._reachable(paths, components)
        self.renames: dict[Key, str] = {}

    @staticmethod
    def _reachable(paths: dict[str, Any], components: dict[str, dict[str, Any]]) -> dict[Key, Any]:
        # Components only internal paths use are left out: they are not part of the product.
        kept: dict[Key, Any] = {}
        todo = list(_refs(paths))
        while todo:
            key = todo.pop()
            if key in kept or key[0] == "securitySchemes":
                continue
            target = components.get(key[0], {}).get(key[1])
            if target is None:
                continue
            kept[key] = target
            todo.extend(_refs(target))
        return kept


def _public_paths(doc: Document, service: str, routes: RouteTable) -> dict[str, Any]:
    kept = {}
    for path, item in (doc.get("paths") or {}).items():
        if not path.startswith(routes.prefix + "/"):
            continue  # /internal, /livez, /readyz and anything else the gateway does not route
        resource = path[len(routes.prefix) + 1 :].split("/", 1)[0]
        if routes.service_of(resource) != service:
            log.warning(
                "openapi: %s documents %s, which the route table does not send to it", service, path
            )
            continue
        kept[path] = item
    return kept


def _resolve_clashes(sources: list[_Source]) -> None:
    """Prefix every variant of a component name that means different things in different sources.

    Repeated to a fixed point: renaming one component changes the text of those that refer to it.
    """
    while True:
        variants: dict[Key, list[tuple[_Source, Key, str]]] = defaultdict(list)
        for source in sources:
            for key, value in source.components.items():
                final = (key[0], source.renames.get(key, key[1]))
                canonical = json.dumps(_rewrite(value, source.renames), sort_keys=True)
                variants[final].append((source, key, canonical))
        changed = False
        for entries in variants.values():
            if len({canonical for _, _, canonical in entries}) > 1:
                for source, key, _ in entries:
                    if key not in source.renames:
                        source.renames[key] = f"{source.name}_{key[1]}"
                        changed = True
        if not changed:
            return


def merge_documents(
    service_docs: dict[str, Document | None],
    routes: RouteTable,
    *,
    gateway_paths: Document | None = None,
    info: dict[str, Any],
    dev_issuer: bool = False,
) -> Document:
    """The product's document. ``gateway_paths`` is the gateway's own document, already filtered."""
    sources: list[_Source] = []
    for service in sorted(service_docs):
        doc = service_docs[service]
        if doc is None:
            continue
        sources.append(
            _Source(
                service,
                _public_paths(doc, service, routes),
                (doc.get("components") or {}),
                doc.get("tags") or [],
            )
        )
    if gateway_paths is not None:
        sources.append(
            _Source(
                "gateway",
                gateway_paths.get("paths") or {},
                gateway_paths.get("components") or {},
                gateway_paths.get("tags") or [],
            )
        )
    _resolve_clashes(sources)

    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = defaultdict(dict)
    tags: dict[str, Any] = {}
    operation_ids: set[str] = set()
    for source in sources:
        for key, value in source.components.items():
            name = source.renames.get(key, key[1])
            rewritten = _rewrite(value, source.renames)
            if components[key[0]].setdefault(name, rewritten) != rewritten:
                log.warning(
                    "openapi: component %s/%s clashes after renaming; keeping the first",
                    key[0],
                    name,
                )
        for path, item in source.paths.items():
            item = copy.deepcopy(_rewrite(item, source.renames))
            for method in _METHODS:
                operation = item.get(method)
                if not isinstance(operation, dict):
                    continue
                # The gateway demands the bearer token on every /api/v1 path (the document-level
                # requirement); its own endpoints are open.
                if source.name == "gateway":
                    operation["security"] = []
                else:
                    operation.pop("security", None)
                    _declare_gateway_answers(operation)
                op_id = operation.get("operationId")
                if op_id in operation_ids:
                    operation["operationId"] = f"{source.name}:{op_id}"
                if op_id:
                    operation_ids.add(operation["operationId"])
            paths[path] = item
        for tag in source.tags:
            if isinstance(tag, dict) and "name" in tag:
                tags.setdefault(tag["name"], tag)

    schemes: dict[str, Any] = {BEARER: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    security: list[dict[str, list[str]]] = [{BEARER: []}]
    if dev_issuer:
        schemes[DEV_ISSUER] = {
            "type": "oauth2",
            "description": "The development issuer: demo accounts from config/demo-accounts.yaml.",
            "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {}}},
        }
        security.append({DEV_ISSUER: []})
    components["securitySchemes"] = schemes
    components["responses"].update(_gateway_responses("Problem" in components["schemas"]))

    document: Document = {
        "openapi": "3.1.0",
        "info": info,
        "paths": dict(sorted(paths.items())),
        "components": {
            section: dict(sorted(items.items())) for section, items in sorted(components.items())
        },
        "security": security,
        "x-missing-services": sorted(name for name, doc in service_docs.items() if doc is None),
    }
    if tags:
        document["tags"] = list(tags.values())
    return document


# What the gateway itself may answer on any /api/v1 operation, before or instead of the service.
_GATEWAY_ANSWERS = {
    "401": ("GatewayUnauthorized", "No valid bearer token (checked at the gateway)"),
    "413": ("GatewayPayloadTooLarge", "The request body is larger than allowed"),
    "429": ("GatewayTooManyRequests", "Too many requests from this client; see Retry-After"),
    "502": ("GatewayBadGateway", "The service is unreachable or broke off the exchange"),
    "504": ("GatewayTimeout", "The service did not answer in time"),
}
_HEADERS = {
    "401": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    "429": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
}


def _declare_gateway_answers(operation: dict[str, Any]) -> None:
    """Every status the gateway can emit is declared on the operation (unless the service did)."""
    responses = operation.setdefault("responses", {})
    for status, (name, _) in _GATEWAY_ANSWERS.items():
        if status == "413" and "requestBody" not in operation:
            continue
        responses.setdefault(status, {"$ref": f"{_REF_PREFIX}responses/{name}"})


def _gateway_responses(shared_problem: bool) -> dict[str, Any]:
    schema: dict[str, Any] = (
        {"$ref": f"{_REF_PREFIX}schemas/Problem"}
        if shared_problem
        else {"type": "object", "required": ["type", "title", "status"]}
    )
    out: dict[str, Any] = {}
    for status, (name, description) in _GATEWAY_ANSWERS.items():
        out[name] = {
            "description": description,
            "content": {"application/problem+json": {"schema": schema}},
        }
        if status in _HEADERS:
            out[name]["headers"] = _HEADERS[status]
    return out


class MergedOpenAPI:
    """Fetches and caches the services' documents; serves the merged one as bytes."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        upstreams: dict[str, str],
        routes: RouteTable,
        *,
        gateway_paths: Callable[[], Document | None],
        info: dict[str, Any],
        dev_issuer: bool,
        ttl: float,
        retry: float,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.upstreams = upstreams
        self.routes = routes
        self.gateway_paths = gateway_paths
        self.info = info
        self.dev_issuer = dev_issuer
        self.ttl = ttl
        self.retry = retry
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._docs: dict[str, Document | None] = dict.fromkeys(upstreams)
        self._fetched_at: dict[str, float] = dict.fromkeys(upstreams, float("-inf"))
        self._merged: bytes | None = None
        self._lock = asyncio.Lock()

    async def _fetch(self, service: str) -> Document | None:
        try:
            url = f"{self.upstreams[service]}/openapi.json"
            async with self.session.get(
                url, timeout=self.timeout, allow_redirects=False
            ) as response:
                if response.status != 200:
                    return None
                doc = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None
        return doc if isinstance(doc, dict) and isinstance(doc.get("paths"), dict) else None

    def _due(self, service: str, now: float) -> bool:
        age = now - self._fetched_at[service]
        return age >= (self.ttl if self._docs[service] is not None else self.retry)

    async def document(self) -> bytes:
        async with self._lock:
            now = self._clock()
            due = [s for s in self.upstreams if self._due(s, now)]
            if due:
                fetched = await asyncio.gather(*(self._fetch(s) for s in due))
                for service, doc in zip(due, fetched, strict=True):
                    self._fetched_at[service] = now
                    # A service that stops answering keeps its last document: its API did not
                    # change because it is restarting.
                    if doc is not None or self._docs[service] is None:
                        if doc != self._docs[service]:
                            self._docs[service] = doc
                            self._merged = None
            if self._merged is None:
                merged = merge_documents(
                    self._docs,
                    self.routes,
                    gateway_paths=self.gateway_paths(),
                    info=self.info,
                    dev_issuer=self.dev_issuer,
                )
                self._merged = json.dumps(merged, ensure_ascii=False).encode()
            return self._merged
