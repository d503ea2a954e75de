"""API models of facts: a value to record, and a value as stored with its provenance."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from servicekit.isotime import Day

FactValue = bool | int | float | str | None


class FactInput(BaseModel):
    """A fact to record: its key (see GET /api/v1/feeds/catalogue), value and effective date."""

    model_config = ConfigDict(extra="forbid")

    fact: str = Field(min_length=1, max_length=48, pattern=r"^[a-z][a-z0-9_]*$", examples=["disability_grade"])
    value: FactValue = Field(default=None, examples=[2])
    effective_date: Day | None = Field(default=None, description="Default: today")


class FactPublic(BaseModel):
    fact: str = Field(examples=["disability_grade"])
    value: Any = Field(examples=[2])
    source: str = Field(examples=["disability_federation"], description="Department code, or survey / declaration / worker")
    record_id: str | None = Field(examples=["CDPF-2026-000123"])
    effective_date: date
    received_at: datetime


def facts_public(facts: dict[str, Any]) -> list[FactPublic]:
    return [
        FactPublic(fact=key, value=entry["v"], source=entry["src"], record_id=entry.get("rec"),
                   effective_date=entry["eff"], received_at=entry["at"])
        for key, entry in sorted(facts.items())
    ]


def facts_documents(facts: dict[str, Any]) -> list[dict[str, Any]]:
    """``facts_public`` as plain dicts, serialised alike: the dates as pydantic writes them. The
    stored ones are ``date.isoformat()`` and ``datetime.isoformat()`` in UTC, which is that text
    already (the time with ``Z``): they are passed on as text, anything else is parsed."""
    return [
        {"fact": key, "value": entry["v"], "source": entry["src"], "record_id": entry.get("rec"),
         "effective_date": _date_text(entry["eff"]), "received_at": _utc_text(entry["at"])}
        for key, entry in sorted(facts.items())
    ]


def _date_text(value: str) -> str | date:
    return value if len(value) == 10 and value[4] == "-" and value[7] == "-" else date.fromisoformat(value)


def _utc_text(value: str) -> str | datetime:
    # 2026-11-29T12:34:56+00:00 or 2026-11-29T12:34:56.123456+00:00, as isoformat() writes them.
    if value.endswith("+00:00") and (len(value) == 25 or (len(value) == 32 and value[19] == ".")) and value[10] == "T":
        return value[:-6] + "Z"
    return datetime.fromisoformat(value)
