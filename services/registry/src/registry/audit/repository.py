"""Queries on the personal-data audit log (the kit's append-only audit_log table)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.audit import AuditAction
from servicekit.tables import AuditRecord

from registry.queries import by_id_descending


async def unmasked_reads_since(session: AsyncSession, actor: str, since: datetime) -> int:
    stmt = select(func.count()).select_from(AuditRecord).where(
        AuditRecord.actor == actor, AuditRecord.action == AuditAction.read_unmasked.value,
        AuditRecord.resource_type == "member", AuditRecord.at >= since
    )
    return (await session.execute(stmt)).scalar_one()


async def search(
    session: AsyncSession, *, limit: int, after: list[Any] | None, actor: str | None, resource_type: str | None,
    resource_id: str | None, action: str | None, since: datetime | None,
) -> list[AuditRecord]:
    stmt = select(AuditRecord)
    if actor:
        stmt = stmt.where(AuditRecord.actor == actor)
    if resource_type:
        stmt = stmt.where(AuditRecord.resource_type == resource_type)
    if resource_id:
        stmt = stmt.where(AuditRecord.resource_id == resource_id)
    if action:
        stmt = stmt.where(AuditRecord.action == action)
    if since:
        stmt = stmt.where(AuditRecord.at >= since)
    return list((await session.execute(by_id_descending(stmt, AuditRecord.id, after, limit))).scalars())
