"""The audit log of personal data: every read and write, who, role, what, when, why, trace.

Records go into the same transaction as the read they describe, so a committed response always
has its record -- or, for a hot read on PostgreSQL, are committed in the read's own statement with
those of the other reads of the moment before the answer goes out (``servicekit.groupcommit``;
the registry's household read). The table is append-only
(database triggers refuse UPDATE and DELETE).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from sqlalchemy import insert as sql_insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller
from servicekit.logging import request_id_var
from servicekit.tables import AuditRecord, utcnow
from servicekit.telemetry import current_trace_id


class AuditAction(StrEnum):
    read_masked = "read_masked"
    read_unmasked = "read_unmasked"
    write = "write"
    lookup = "lookup"
    export = "export"


def request_id() -> str | None:
    return request_id_var.get()


_INSERT = sql_insert(AuditRecord.__table__)


def entry(
    caller: Caller, action: AuditAction, resource_type: str, resource_id: str, fields: Iterable[str],
    purpose: str | None, area_code: str | None,
) -> dict[str, object]:
    """The column values of one audit record, as ``record`` writes them."""
    return {
        "at": utcnow(), "actor": caller.subject, "role": caller.role.value, "action": action.value,
        "resource_type": resource_type, "resource_id": resource_id, "fields": sorted(set(fields)),
        "purpose": purpose, "area_code": area_code, "trace_id": current_trace_id(), "request_id": request_id(),
    }


def record(
    session: AsyncSession,
    caller: Caller,
    action: AuditAction,
    resource_type: str,
    resource_id: str,
    fields: Iterable[str],
    *,
    purpose: str | None = None,
    area_code: str | None = None,
) -> AuditRecord:
    row = AuditRecord(**entry(caller, action, resource_type, resource_id, fields, purpose, area_code))
    session.add(row)
    return row


async def insert(session: AsyncSession, values: dict[str, object]) -> None:
    """Write one record (``values`` from ``entry``) at once, as one Core INSERT in the session's
    transaction: for hot read paths that have nothing else for the unit of work to flush."""
    await session.execute(_INSERT, values)


# The columns of a record as ``entry`` gives them (its keys): a service's group statement
# (``servicekit.groupcommit``) writes records from them, as the registry's household read does.
RECORD_COLUMNS = ("at", "actor", "role", "action", "resource_type", "resource_id", "fields", "purpose", "area_code",
                  "trace_id", "request_id")
