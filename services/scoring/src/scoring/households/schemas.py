"""What the registry sends (docs/events.md): household.changed and its snapshot items.

Parsed leniently (the registry may add keys): scoring needs these and nothing else.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from servicekit.events import Event
from servicekit.events.outbox import FeedPage

AREA = r"^\d{12}$"


class HouseholdChanged(BaseModel):
    model_config = ConfigDict(extra="ignore")

    household_id: str = Field(min_length=1, max_length=36)
    version: int = Field(ge=0)
    area_code: str = Field(pattern=AREA)
    township_code: str = Field(pattern=AREA)
    district_code: str = Field(pattern=AREA)
    label_masked: str = Field(default="", max_length=64)
    synthetic: bool = False
    change: str = Field(default="updated", max_length=32)
    triggers: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    # Absent from events of registries before member ages were sent: unknown, not "nobody".
    member_ages: list[int] | None = Field(default=None, max_length=200)
    view: dict[str, Any]
    missing: list[str] = Field(default_factory=list, max_length=500)


class SnapshotPage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    position: int = Field(ge=0)
    items: list[HouseholdChanged]
    next_cursor: str | None = None


class HouseholdEvent(Event):
    """An event of the registry's feed whose data is read as a household.changed in the same
    pass as the page (a second pass over each 116-field view cost a tenth of catching up); data
    that does not fit stays a dict, for ``parse_events`` to report and skip."""

    data: HouseholdChanged | dict[str, Any] = Field(union_mode="left_to_right")


class HouseholdPage(FeedPage):
    events: list[HouseholdEvent]
