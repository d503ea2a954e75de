"""The personal-data audit log, read-only, for auditors and city officers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from servicekit.audit import AuditAction
from servicekit.db import TransactionalRoute
from servicekit.isotime import Instant
from servicekit.pagination import Page, Paging, paginate

from registry.audit import repository
from registry.audit.schemas import AuditEntry
from registry.responses import LIST, problems
from registry.deps import Auditors, Ctx

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], route_class=TransactionalRoute)


@router.get("", operation_id="audit:list", summary="Who read or wrote which personal data, newest first",
            response_model=Page[AuditEntry], responses=problems(LIST))
async def list_audit(
    ctx: Ctx, _caller: Auditors, paging: Paging,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    resource_type: Annotated[str | None, Query(max_length=64)] = None,
    resource_id: Annotated[str | None, Query(max_length=64)] = None,
    action: AuditAction | None = None,
    since: Instant | None = None,
) -> Page[AuditEntry]:
    rows = await repository.search(ctx.session, limit=paging.limit, after=paging.after, actor=actor,
                                   resource_type=resource_type, resource_id=resource_id,
                                   action=action.value if action else None, since=since)
    page, cursor = paginate(rows, paging, key=lambda r: [r.id])
    return Page[AuditEntry](items=[AuditEntry.model_validate(r, from_attributes=True) for r in page], next_cursor=cursor)
