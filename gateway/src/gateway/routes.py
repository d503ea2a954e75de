"""The route table: top-level resources of /api/v1 mapped to the service that owns them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class RouteTableFile(BaseModel):
    """The shape of config/routes.yaml."""

    model_config = ConfigDict(extra="forbid")

    prefix: str = Field(default="/api/v1", pattern=r"^(/[a-z0-9]+)+$")
    services: dict[str, list[str]]
    batch: list[str] = []


@dataclass(frozen=True, slots=True)
class Route:
    """Where one resource goes and how large a body it takes."""

    resource: str
    service: str
    upstream: str  # base URL, no trailing slash
    max_body_bytes: int
    batch: bool
    path_format: str  # a template naming the route in spans and metrics, never the raw path


class RouteTableError(ValueError):
    """The route table is inconsistent; the gateway refuses to start on it."""


class RouteTable:
    def __init__(self, prefix: str, routes: dict[str, Route]) -> None:
        self.prefix = prefix
        self._routes = routes
        self._prefix_slash = prefix + "/"

    @classmethod
    def load(
        cls,
        path: Path,
        upstreams: dict[str, str],
        *,
        max_body_bytes: int,
        max_batch_body_bytes: int,
    ) -> RouteTable:
        try:
            raw = RouteTableFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise RouteTableError(f"{path}: cannot read the route table: {exc}") from exc
        routes: dict[str, Route] = {}
        for service, resources in raw.services.items():
            if service not in upstreams:
                raise RouteTableError(
                    f"{path}: service {service!r} has no URL in the gateway settings"
                )
            for resource in resources:
                if resource in routes:
                    raise RouteTableError(f"{path}: resource {resource!r} is routed twice")
                batch = resource in raw.batch
                routes[resource] = Route(
                    resource=resource,
                    service=service,
                    upstream=upstreams[service],
                    max_body_bytes=max_batch_body_bytes if batch else max_body_bytes,
                    batch=batch,
                    path_format=f"{raw.prefix}/{resource}/{{path}}",
                )
        unknown = set(raw.batch) - routes.keys()
        if unknown:
            raise RouteTableError(f"{path}: batch resources {sorted(unknown)} are not routed")
        return cls(raw.prefix, routes)

    def match(self, path: str) -> Route | None:
        """The route for a request path, or None (not under the prefix, or an unknown resource)."""
        if not path.startswith(self._prefix_slash):
            return None
        rest = path[len(self._prefix_slash) :]
        resource, _, _ = rest.partition("/")
        return self._routes.get(resource)

    def service_of(self, resource: str) -> str | None:
        route = self._routes.get(resource)
        return route.service if route else None

    @property
    def services(self) -> list[str]:
        return sorted({r.service for r in self._routes.values()})

    @property
    def routes(self) -> list[Route]:
        return list(self._routes.values())
