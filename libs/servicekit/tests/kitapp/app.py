"""Notes: a minimal resource with events, idempotent creates and ETags."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, Integer, String, select, text
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from servicekit.app import ServiceSpec, create_service_app
from servicekit.auth import CurrentCaller, Role, require_roles
from servicekit.concurrency import check_version, expected_version, set_etag
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import Conflict, NotFound, PreconditionFailed, PreconditionRequired, problem_responses
from servicekit.events import publish
from servicekit.idempotency import Idempotency
from servicekit.settings import ServiceSettings
from servicekit import tables as _kit  # noqa: F401

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Note(SQLModel, table=True):
    __tablename__ = "notes"
    id: str = SQLField(sa_column=Column(String(36), primary_key=True))
    area_code: str = SQLField(sa_column=Column(String(12), nullable=False))
    text: str = SQLField(sa_column=Column(String(200), nullable=False))
    version: int = SQLField(sa_column=Column(Integer, nullable=False, default=1))


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    area_code: str = Field(pattern=r"^\d{12}$")
    text: str = Field(min_length=1, max_length=200)
    fail_after_publish: bool = False


class NotePublic(BaseModel):
    id: str
    area_code: str
    text: str
    version: int


class KitSettings(ServiceSettings):
    service_name: str = "kitapp"


router = APIRouter(prefix="/api/v1/notes", route_class=TransactionalRoute)
Writer = Annotated[Any, __import__("fastapi").Depends(require_roles(Role.town_worker, Role.city_admin))]


@router.post("", status_code=201, operation_id="notes:create", response_model=NotePublic)
async def create_note(body: NoteCreate, session: Session, caller: Writer, idem: Idempotency) -> Any:
    note = Note(id=str(uuid.uuid4()), area_code=body.area_code, text=body.text, version=1)
    session.add(note)
    await session.flush()
    publish(session, "note.created", note.id, {"text_length": len(body.text), "area_code": body.area_code})
    if body.fail_after_publish:
        raise Conflict("Asked to fail after publishing.")
    return NotePublic(**note.model_dump())


@router.get("/{note_id}", operation_id="notes:get", response_model=NotePublic)
async def get_note(note_id: str, session: Session, caller: CurrentCaller, response: Response) -> Any:
    note = (await session.execute(select(Note).where(Note.id == note_id, caller.scope(Note.area_code)))).scalar_one_or_none()
    if note is None:
        raise NotFound("No note with that id is in your jurisdiction.")
    set_etag(response, note.version)
    return NotePublic(**note.model_dump())


class NoteUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=200)


@router.put("/{note_id}", operation_id="notes:update", response_model=NotePublic,
            responses=problem_responses(PreconditionFailed, PreconditionRequired))
async def update_note(note_id: str, body: NoteUpdate, session: Session, caller: Writer, response: Response,
                      request: __import__("fastapi").Request) -> Any:
    expected = expected_version(request)
    stmt = select(Note).where(Note.id == note_id, caller.scope(Note.area_code))
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    note = (await session.execute(stmt)).scalar_one_or_none()
    if note is None:
        raise NotFound("No note with that id is in your jurisdiction.")
    check_version(expected, note.version)
    note.text = body.text
    note.version += 1
    set_etag(response, note.version)
    return NotePublic(**note.model_dump())


@router.get("/boom/now", operation_id="notes:boom")
async def boom() -> dict:
    raise RuntimeError("a secret value 330106199003070014 that must not leak")


@router.post("/boom/deadlock/{note_id}", operation_id="notes:deadlock")
async def deadlock(note_id: str, session: Session, caller: Writer) -> dict:
    """Writes a note, then its transaction is aborted as PostgreSQL aborts a deadlock's victim
    (a real error with SQLSTATE 40P01 there; the driver's error on SQLite, which has none)."""
    session.add(Note(id=note_id, area_code="330106001001", text="never committed", version=1))
    await session.flush()
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(
            "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = 'deadlock_detected'; END $$"))
    from asyncpg.exceptions import DeadlockDetectedError

    raise DeadlockDetectedError("deadlock detected")


def create_app(settings: ServiceSettings | None = None, consumers: Any = None, **kw: Any) -> FastAPI:
    spec = ServiceSpec(title="Kit app", description="Test app", routers=[router], migrations_dir=MIGRATIONS,
                       consumers=consumers,
                       raw_body_paths={"/api/v1/notes/raw": ("text/csv",)}, large_body_paths=("/api/v1/notes/raw",))
    return create_service_app(settings or KitSettings(), spec, **kw)
