"""API models of the audit log."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    resource_type: str
    resource_id: str
    fields: list[str]
    purpose: str | None
    area_code: str | None
    trace_id: str | None
    request_id: str | None
