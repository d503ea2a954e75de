"""A fake alerts service: its feed and its snapshot, as docs/events.md and the alerts service
describe them. Only synthetic data: random ids, masked placeholder labels."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse


def disposed(*, services: list[tuple[str, str]], village: str = "330106001001", level: int | None = 1,
             disposition: str = "service_referral", alert_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "alert_id": alert_id or str(uuid.uuid4()), "household_id": str(uuid.uuid4()), "area_code": village,
        "township_code": village[:9] + "000", "district_code": village[:6] + "000000", "label_masked": "李*华户",
        "level": level, "disposition": disposition, "policies": ["medical_assistance"],
        "services": [{"code": c, "urgency": u} for c, u in services], "needs_confirmed": ["care"],
        "household_type": "tekun", "member_ages": [79], "disposed_at": datetime.now(UTC).isoformat(), **extra,
    }


class FakeAlerts:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.snapshot: list[dict[str, Any]] = []
        self.pruned_through = 0
        self.app = FastAPI()

        @self.app.get("/internal/feed")
        async def feed(after: int = 0, limit: int = Query(100, le=1000), wait: float = 0) -> Any:
            if after < self.pruned_through:
                return JSONResponse({"type": "urn:zhongfu:problem:gone", "status": 410,
                                     "pruned_through": self.pruned_through}, status_code=410)
            page = [e for e in self.events if e["position"] > after][:limit]
            return {"events": page, "next_after": page[-1]["position"] if page else after, "head": self.head}

        @self.app.get("/internal/snapshot/alerts")
        async def snapshot(cursor: str | None = None, limit: int = 500) -> Any:
            start = int(cursor or 0)
            items = self.snapshot[start:start + limit]
            more = start + limit < len(self.snapshot)
            return {"position": self.head, "items": items, "next_cursor": str(start + limit) if more else None}

    @property
    def head(self) -> int:
        return self.events[-1]["position"] if self.events else self.pruned_through

    def publish(self, data: dict[str, Any], event_type: str = "alert.disposed") -> dict[str, Any]:
        event = {"position": self.head + 1, "id": str(uuid.uuid4()), "type": event_type,
                 "subject": data.get("alert_id", "x"), "occurred_at": datetime.now(UTC).isoformat(),
                 "traceparent": None, "data": data}
        self.events.append(event)
        return event
