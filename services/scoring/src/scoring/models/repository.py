"""Queries on scoring models, the active-model row and activations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.pagination import PageParams
from scoring.bulk import is_postgres
from scoring.models.tables import ModelActivation, ScoringModel, ScoringState


async def get(session: AsyncSession, version: str, *, for_update: bool = False) -> ScoringModel | None:
    stmt = select(ScoringModel).where(ScoringModel.version == version)
    if for_update and is_postgres(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def add(session: AsyncSession, model: ScoringModel) -> bool:
    """Insert a new version; False when the version exists already."""
    try:
        async with session.begin_nested():
            session.add(model)
            await session.flush()
    except IntegrityError:
        return False
    return True


async def page(session: AsyncSession, params: PageParams, status: str | None) -> list[ScoringModel]:
    stmt = select(ScoringModel)
    if status:
        stmt = stmt.where(ScoringModel.status == status)
    if params.after:
        stmt = stmt.where(ScoringModel.created_at < datetime.fromisoformat(str(params.after[0])))
    stmt = stmt.order_by(ScoringModel.created_at.desc(), ScoringModel.version).limit(params.limit + 1)
    return list((await session.execute(stmt)).scalars())


async def state(session: AsyncSession, *, lock: str | None = None) -> ScoringState:
    """The active-model row; ``lock`` 'share' while scoring a batch, 'update' while activating."""
    stmt = select(ScoringState).where(ScoringState.id == 1)
    if lock and is_postgres(session):
        stmt = stmt.with_for_update(read=lock == "share")
    return (await session.execute(stmt)).scalar_one()


_ACTIVE = select(ScoringState.__table__.c.active_version).where(ScoringState.__table__.c.id == 1)
_ACTIVE_LOCKED = {None: _ACTIVE, "share": _ACTIVE.with_for_update(read=True), "update": _ACTIVE.with_for_update()}


async def active_version(session: AsyncSession, *, lock: str | None = None) -> str | None:
    """``state(...).active_version`` without loading the row as an object (a statement built once,
    run on the session's connection: a household.changed reads it in every batch)."""
    stmt = _ACTIVE_LOCKED[lock if is_postgres(session) else None]
    return (await (await session.connection()).execute(stmt)).scalar_one()


async def retire(session: AsyncSession, version: str, at: datetime) -> None:
    await session.execute(update(ScoringModel).where(ScoringModel.version == version, ScoringModel.status == "active")
                          .values(status="retired", retired_at=at))


async def start_activation(session: AsyncSession, activation: ModelActivation) -> bool:
    """Record a running activation; False if another one is running (the partial unique index)."""
    try:
        async with session.begin_nested():
            session.add(activation)
            await session.flush()
    except IntegrityError:
        return False
    return True


async def running_activation(session: AsyncSession) -> ModelActivation | None:
    return (await session.execute(select(ModelActivation).where(ModelActivation.status == "running"))).scalar_one_or_none()


async def activation(session: AsyncSession, activation_id: str) -> ModelActivation | None:
    return await session.get(ModelActivation, activation_id)


async def activations(session: AsyncSession, params: PageParams) -> list[ModelActivation]:
    stmt = select(ModelActivation)
    if params.after:
        stmt = stmt.where(ModelActivation.started_at < datetime.fromisoformat(str(params.after[0])))
    stmt = stmt.order_by(ModelActivation.started_at.desc()).limit(params.limit + 1)
    return list((await session.execute(stmt)).scalars())
