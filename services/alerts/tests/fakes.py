"""Fakes for the tests: scoring's feed and snapshot, and synthetic assessments.

Only synthetic data: households are random ids, labels are masked placeholders.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Query

DISTRICT = "330106000000"
TOWNSHIP = "330106001000"
OTHER_TOWNSHIP = "330106002000"
VILLAGE = "330106001001"


# Drawn without replacement: two tests given the same township count each other's alerts (a
# random draw per call did that now and then: a statistics test saw 7 alerts raised, not 5).
_TOWNSHIPS = iter(random.sample(range(100, 1000), 900))


def new_township() -> str:
    """A township of the test district of its own, so counts in one test are not another's."""
    return f"330106{next(_TOWNSHIPS)}000"


def assessment(
    *,
    household_id: str | None = None,
    level: int = 1,
    previous_level: int | None = 2,
    triggers: list[str] | None = None,
    village: str = VILLAGE,
    score: float | None = None,
    cause: str = "household_changed",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "assessment_id": str(uuid.uuid4()),
        "household_id": household_id or str(uuid.uuid4()),
        "household_version": extra.pop("household_version", 1),
        "area_code": village,
        "township_code": village[:9] + "000",
        "district_code": village[:6] + "000000",
        "label_masked": "张*明户",
        "score": score if score is not None else {1: 54.5, 2: 72.0, 3: 93.0}[level],
        "level": level,
        "previous_level": previous_level,
        "previous_score": 66.0,
        "dimensions": {"source": 10, "structure": 12.5, "health": 4},
        "indicators": [{"code": "major_illness", "dimension": "health", "points": -12}],
        "cause": cause,
        "triggers": [
            {"code": t, "member_ref": "m-1", "effective_date": "2026-11-20", "source": "health"} for t in (triggers or [])
        ],
        "model_version": "hz-2026.1",
        "portrait": {"difficulty": "especially_difficult", "causes": ["illness"], "needs": ["medical"], "five_types": ["expenditure"]},
        "suggestions": {"policies": [{"code": "medical_assistance", "eligible": True, "receiving": False}],
                        "services": [{"code": "home_nursing", "need_type": "medical"}]},
        "assessed_at": datetime.now(UTC).isoformat(),
        **extra,
    }


class FakeScoring:
    """Serves /internal/feed and /internal/snapshot/{assessments,withdrawn} as scoring does."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.snapshot: list[dict[str, Any]] = []
        self.withdrawn: list[dict[str, Any]] | None = []  # assessment.withdrawn payloads; None: no such route
        self.pruned_through = 0
        self.app = FastAPI()

        @self.app.get("/internal/feed")
        async def feed(after: int = 0, limit: int = Query(100, le=1000), wait: float = 0) -> Any:
            if after < self.pruned_through:
                from fastapi.responses import JSONResponse

                return JSONResponse({"type": "gone", "status": 410}, status_code=410)
            page = [e for e in self.events if e["position"] > after][:limit]
            return {"events": page, "next_after": page[-1]["position"] if page else after, "head": self.head}

        def paged(items: list[dict[str, Any]], cursor: str | None, limit: int) -> dict[str, Any]:
            start = int(cursor or 0)
            more = start + limit < len(items)
            return {"position": self.head, "items": items[start:start + limit],
                    "next_cursor": str(start + limit) if more else None}

        @self.app.get("/internal/snapshot/assessments")
        async def snapshot(cursor: str | None = None, limit: int = 500) -> Any:
            return paged(self.snapshot, cursor, limit)

        @self.app.get("/internal/snapshot/withdrawn")
        async def withdrawn(cursor: str | None = None, limit: int = 500) -> Any:
            if self.withdrawn is None:  # a scoring from before the snapshot of withdrawals
                from fastapi.responses import JSONResponse

                return JSONResponse({"type": "urn:zhongfu:problem:not-found", "status": 404}, status_code=404)
            return paged(self.withdrawn, cursor, limit)

    @property
    def head(self) -> int:
        return self.events[-1]["position"] if self.events else self.pruned_through

    def add(self, data: dict[str, Any], *, event_id: str | None = None, type: str = "assessment.updated") -> dict[str, Any]:
        event = {
            "position": self.head + 1, "id": event_id or str(uuid.uuid4()), "type": type,
            "subject": data.get("household_id", "x"), "occurred_at": datetime.now(UTC).isoformat(), "data": data,
        }
        self.events.append(event)
        return event


def withdrawal(of: dict[str, Any]) -> dict[str, Any]:
    """scoring's assessment.withdrawn of the household of this assessment, as docs/events.md has
    it (fields an assessment has too)."""
    return {k: of[k] for k in ("household_id", "area_code", "township_code", "district_code", "label_masked",
                               "household_version", "assessment_id", "level")} | {
        "cause": "household_closed", "withdrawn_at": "2026-11-29T09:50:00Z"}
