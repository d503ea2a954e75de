"""A tiny stand-in for the registry: its feed of household.changed and its snapshot, in memory."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from scoring.synthetic import generate, to_views

VILLAGES = ["330106001001", "330106001002", "330106002001", "330102001001", "330127003004"]


class FakeRegistry:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.pruned_through = 0
        self.households: dict[str, dict[str, Any]] = {}
        self.app = self._app()

    @property
    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app)

    @property
    def head(self) -> int:
        return len(self.events)

    def change(self, household_id: str, view: dict[str, Any], missing: list[str], *, version: int | None = None,
               area: str = VILLAGES[0], triggers: list[dict[str, Any]] | None = None, change: str = "updated",
               label: str = "张*明户", member_ages: list[int] | None = None) -> dict[str, Any]:
        """``member_ages`` None: an event as registries sent before they had them (no key)."""
        known = self.households.get(household_id)
        version = version if version is not None else (known["version"] + 1 if known else 1)
        data = {
            "household_id": household_id, "version": version, "area_code": area,
            "township_code": area[:9] + "000", "district_code": area[:6] + "000000", "label_masked": label,
            "synthetic": True, "change": change, "triggers": triggers or [], "view": view, "missing": missing,
        }
        if member_ages is not None:
            data["member_ages"] = member_ages
        if known is None or version > known["version"]:
            self.households[household_id] = data
        self.events.append({
            "position": len(self.events) + 1, "id": str(uuid.uuid4()), "type": "household.changed",
            "subject": household_id, "occurred_at": datetime.now(UTC).isoformat(), "traceparent": None, "data": data,
        })
        return data

    def raw_event(self, type_: str, data: dict[str, Any]) -> None:
        self.events.append({"position": len(self.events) + 1, "id": str(uuid.uuid4()), "type": type_,
                            "subject": "x", "occurred_at": datetime.now(UTC).isoformat(), "data": data})

    def prune(self) -> None:
        self.pruned_through = len(self.events)

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/internal/feed")
        async def feed(after: int = 0, limit: int = Query(100, le=1000), wait: float = 0) -> Any:
            if after < self.pruned_through:
                return JSONResponse({"type": "urn:zhongfu:problem:gone", "status": 410,
                                     "pruned_through": self.pruned_through}, status_code=410)
            events = self.events[after:after + limit]
            return {"events": events, "next_after": events[-1]["position"] if events else after, "head": self.head}

        @app.get("/internal/snapshot/households")
        async def snapshot(cursor: str | None = None, limit: int = Query(100, le=5000)) -> Any:
            ids = sorted(self.households)
            start = ids.index(cursor) + 1 if cursor else 0
            page = ids[start:start + limit]
            items = [{k: v for k, v in self.households[h].items() if k not in ("change", "triggers")} for h in page]
            more = start + limit < len(ids)
            return {"position": self.head, "items": items, "next_cursor": page[-1] if more and page else None}

        return app


def synthetic_views(ctx, n: int, seed: int, unknown_rate: float = 0.0) -> list[tuple[dict[str, Any], list[str]]]:
    matrix, missing = generate(ctx.view, n, seed=seed, unknown_rate=unknown_rate)
    return to_views(ctx.view, matrix, missing)


def ages_of(i: int) -> list[int]:
    """The member ages ``load_households`` sends for its i-th household (oldest first)."""
    return [40 + i % 50, 38, 8][: 1 + i % 3]


async def load_households(svc, ctx, n: int, seed: int, areas: list[str] | None = None,
                          unknown_rate: float = 0.0) -> list[str]:
    """Feed ``n`` synthetic households through the consumer, as the registry would."""
    from scoring.app import registry_consumer

    registry = FakeRegistry()
    consumer = registry_consumer(svc.app, registry.transport, svc.identity.token_source)
    consumer.name = f"registry-{uuid.uuid4().hex[:8]}"
    ids = [str(uuid.uuid4()) for _ in range(n)]
    areas = areas or VILLAGES
    for i, (hid, (view, missing)) in enumerate(zip(ids, synthetic_views(ctx, n, seed, unknown_rate), strict=True)):
        registry.change(hid, view, missing, area=areas[i % len(areas)], member_ages=ages_of(i))
    while await consumer.step() > 0:
        pass
    return ids
