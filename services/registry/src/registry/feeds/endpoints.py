"""Department feeds (数据共享): deliver batches and single records; read reports, feed health
and the catalogue of the 17 departments and their 54 data items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from servicekit.auth import Caller, Role
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import Forbidden, NotFound, UnsupportedMediaType
from servicekit.pagination import Page, Paging, paginate
from servicekit.tables import utcnow

from registry.responses import BODY, BUSY, LIST, ONE, problems
from registry.deps import Departments, FeedReaders, Officers, Profile, VaultDep
from registry.feeds import repository, service
from registry.feeds.schemas import (
    BatchFormat, BatchReport, Catalogue, DepartmentPublic, FeedHealth, FeedRecordIn, ItemPublic, RecordOutcome, RejectedLine,
)
from registry.feeds.tables import FeedBatch

router = APIRouter(prefix="/api/v1/feeds", tags=["feeds"], route_class=TransactionalRoute)
# A batch commits chunk by chunk (so a crash loses at most one chunk), hence not one request
# transaction: this router alone does not use TransactionalRoute.
batch_router = APIRouter(prefix="/api/v1/feeds", tags=["feeds"])

BatchId = Annotated[str, Path(min_length=36, max_length=36)]
BATCH_BODY = {"requestBody": {"required": True, "content": {
    "application/x-ndjson": {"schema": {"type": "string"}, "example":
        '{"record_id": "HLTH-2026-000001", "item": "major_illness_diagnosis", "resident_id": "330106199003070014", '
        '"value": "cancer", "effective_date": "2026-11-20"}\n'},
    "text/csv": {"schema": {"type": "string"}, "example":
        "record_id,item,resident_id,value,effective_date\nHLTH-2026-000001,major_illness_diagnosis,"
        "330106199003070014,cancer,2026-11-20\n"},
}}}


def own_department(caller: Caller, profile: Profile) -> str:
    if not caller.department or caller.department not in profile.catalogue.departments:
        raise Forbidden("Your token names no department of the catalogue.")
    return caller.department


def report(batch: FeedBatch) -> BatchReport:
    return BatchReport.model_validate(batch, from_attributes=True)


@batch_router.post("/batches", status_code=201, operation_id="feeds:deliver-batch",
                   summary="Deliver a batch (JSON Lines or CSV, streamed, 100k+ records)", response_model=BatchReport,
                   responses=problems(BODY, BUSY),
                   openapi_extra=BATCH_BODY)
async def deliver_batch(request: Request, caller: Departments, profile: Profile, vault: VaultDep) -> BatchReport:
    department = own_department(caller, profile)
    fmt = service.FORMATS.get(request.headers.get("content-type", "").split(";")[0].strip().lower())
    if fmt is None:
        raise UnsupportedMediaType("Send a batch as application/x-ndjson (JSON Lines) or text/csv.")
    settings = request.app.state.settings
    run = service.BatchRun(request.app.state.db, profile, vault, settings, department, fmt, caller,
                           request.app.state.feed_notifier.local_commit)
    batch_id = await run.run(service.lines_of(request.stream(), settings.max_batch_bytes))
    async with request.app.state.db.sessionmaker() as session:
        batch = await repository.get_batch(session, department, batch_id)
    assert batch is not None
    return report(batch)


@router.post("/records", operation_id="feeds:deliver-record", summary="Deliver one record (an increment)",
             response_model=RecordOutcome,
             responses=problems(BODY, BUSY))
async def deliver_record(body: FeedRecordIn, request: Request, session: Session, caller: Departments, profile: Profile,
                         vault: VaultDep) -> RecordOutcome:
    department = own_department(caller, profile)
    return await service.single_record(session, profile, vault, department, caller, body,
                                       request.app.state.feed_notifier.local_commit)


@router.get("/catalogue", operation_id="feeds:catalogue", summary="The 17 departments and their 54 data items",
            response_model=Catalogue, responses=problems())
async def catalogue(profile: Profile, _caller: FeedReaders) -> Catalogue:
    c = profile.catalogue
    return Catalogue(
        departments=[DepartmentPublic(code=d.code, name_zh=d.name_zh, name_en=d.name_en, every_hours=d.every_hours,
                                      items=[ItemPublic(**i.model_dump()) for i in d.items])
                     for d in c.departments.values()],
        code_lists={name: sorted(codes) for name, codes in c.code_lists.items()},
    )


def readable_department(caller: Caller, department: str | None) -> str | None:
    """The department whose batches the caller reads: a department its own, an officer the one
    named or, when none is, every department's (None)."""
    if caller.role is Role.department:
        if department not in (None, caller.department):
            raise NotFound("No batches of that department for you.")
        return caller.department or ""
    return department


@router.get("/batches", operation_id="feeds:list-batches",
            summary="Deliveries, newest first: a department's own; an officer's of the department named, or of all",
            response_model=Page[BatchReport], responses=problems(LIST, ONE))
async def list_batches(
    session: Session, caller: FeedReaders, paging: Paging,
    department: Annotated[str | None, Query(max_length=48)] = None,
    fmt: Annotated[BatchFormat | None, Query(
        alias="format", description="Only batches sent in this format; `single`: records sent one at a time")] = None,
) -> Page[BatchReport]:
    code = readable_department(caller, department)
    rows = await repository.batches(session, code, paging.limit, paging.after, fmt)
    page, cursor = paginate(rows, paging, key=lambda b: [b.received_at.isoformat(), b.id])
    return Page[BatchReport](items=[report(b) for b in page], next_cursor=cursor)


async def _batch(session: Session, caller: Caller, batch_id: str, department: str | None) -> FeedBatch:
    code = readable_department(caller, department)
    batch = await repository.get_batch(session, code, batch_id)
    if batch is None:
        raise NotFound("No batch with that id." if code is None else "No batch with that id for that department.")
    return batch


@router.get("/batches/{batch_id}", operation_id="feeds:get-batch", summary="A batch report: counts by outcome",
            response_model=BatchReport, responses=problems(LIST, ONE))
async def get_batch(batch_id: BatchId, session: Session, caller: FeedReaders,
                    department: Annotated[str | None, Query(max_length=48)] = None) -> BatchReport:
    return report(await _batch(session, caller, batch_id, department))


@router.get("/batches/{batch_id}/rejections", operation_id="feeds:batch-rejections",
            summary="Rejected lines of a batch, by line, with the reason", response_model=Page[RejectedLine],
            responses=problems(LIST, ONE))
async def batch_rejections(batch_id: BatchId, session: Session, caller: FeedReaders, paging: Paging,
                           department: Annotated[str | None, Query(max_length=48)] = None) -> Page[RejectedLine]:
    batch = await _batch(session, caller, batch_id, department)
    rows = await repository.rejections(session, batch.id, paging.limit, paging.after)
    page, cursor = paginate(rows, paging, key=lambda r: [r.id])
    items = [RejectedLine(line=r.line, record_id=r.record_id, reason_code=r.reason_code, reason=r.reason) for r in page]
    return Page[RejectedLine](items=items, next_cursor=cursor)


@router.get("/health", operation_id="feeds:health",
            summary="Feed health per department: last delivery, volume, rejection rate, late feeds",
            response_model=list[FeedHealth], responses=problems())
async def feed_health(session: Session, profile: Profile, _caller: Officers) -> list[FeedHealth]:
    return await service.health(session, profile, utcnow())

