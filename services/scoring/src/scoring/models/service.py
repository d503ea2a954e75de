"""The model lifecycle: draft -> validate -> simulate -> activate (rescoring everyone) -> history.

A draft is stored even when it does not validate, so that it can be fixed; only a valid draft
can be simulated or activated. Activation runs as a job in its own transaction: the new model,
every household's new assessment, the events and the record of the activation commit together
or not at all, and the active model is untouched until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller
from servicekit.concurrency import check_version
from servicekit.db import unit_of_work
from servicekit.errors import Conflict, NotFound, Unprocessable
from scoring.assessments import repository as assessments
from scoring.assessments.service import matrix_of, rescore_all
from scoring.deps import ScoringEngine
from scoring.engine.runtime import ModelRuntime
from scoring.models import repository as repo
from scoring.models.schemas import (
    DistrictLevels, IndicatorMovement, LevelCount, ModelCreate, Simulation, Transition,
)
from scoring.models.tables import ModelActivation, ScoringModel
from scoring.rules.document import VERSION
from scoring.rules.model import Model
from scoring.rules.validation import ValidationReport, compile_model

log = logging.getLogger(__name__)
RESERVED = frozenset({"active", "schema", "activations"})


def _version_of(document: dict[str, Any]) -> str:
    version = document.get("version")
    if not isinstance(version, str) or not re.match(VERSION, version) or version in RESERVED:
        raise Unprocessable("document.version must name the draft: 1-40 of a-z 0-9 . _ - (not active, schema or "
                            "activations).")
    return version


def _stamp(row: ScoringModel, report: ValidationReport, model: Model | None, document: dict[str, Any]) -> None:
    row.document = document
    row.valid, row.errors, row.warnings = report.valid, report.errors, report.warnings
    row.title_zh = str(document.get("title_zh", ""))[:200]
    row.title_en = str(document.get("title_en", ""))[:300]
    if model is not None:
        row.document_hash = model.document_hash
    else:
        row.document_hash = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


async def create_draft(session: AsyncSession, engine: ScoringEngine, caller: Caller, body: ModelCreate) -> tuple[ScoringModel, ValidationReport]:
    version = _version_of(body.document)
    model, report = compile_model(body.document, engine.profile.ctx)
    now = datetime.now(UTC)
    row = ScoringModel(version=version, status="draft", notes=body.notes, created_by=caller.subject, created_at=now,
                       updated_at=now, row_version=1, title_zh="", title_en="", document={}, document_hash="",
                       valid=False, errors=0, warnings=0)
    _stamp(row, report, model, body.document)
    if not await repo.add(session, row):
        raise Conflict("A model with that version exists already; choose a new version.")
    return row, report


async def update_draft(session: AsyncSession, engine: ScoringEngine, version: str, expected: int, body: ModelCreate) -> tuple[ScoringModel, ValidationReport]:
    row = await repo.get(session, version, for_update=True)
    if row is None:
        raise NotFound("No model with that version.")
    check_version(expected, row.row_version)
    if row.status != "draft":
        raise Conflict("Only a draft can be changed; a model that has been active stays as it was. Create a new version.")
    if _version_of(body.document) != version:
        raise Unprocessable("document.version must stay the version of the draft.")
    model, report = compile_model(body.document, engine.profile.ctx)
    _stamp(row, report, model, body.document)
    row.notes = body.notes
    row.row_version += 1
    row.updated_at = datetime.now(UTC)
    await session.flush()
    return row, report


def report_of(engine: ScoringEngine, row: ScoringModel) -> tuple[Model | None, ValidationReport]:
    return compile_model(row.document, engine.profile.ctx)


async def valid_runtime(session: AsyncSession, engine: ScoringEngine, version: str) -> ModelRuntime:
    row = await repo.get(session, version)
    if row is None:
        raise NotFound("No model with that version.")
    runtime = await engine.runtimes.get(session, version)
    if runtime is None:
        _, report = report_of(engine, row)
        raise Unprocessable("The model does not validate; fix the problems in the report first.",
                            report=report.model_dump())
    return runtime


class _Tally:
    """What a simulation counts, added up chunk by chunk (pure NumPy: run in a worker thread)."""

    def __init__(self, active: ModelRuntime, draft: ModelRuntime) -> None:
        self.sides = (active, draft)
        self.n = 0
        self.scores = [0.0, 0.0]
        self.levels = np.zeros((2, LEVELS), dtype=np.int64)
        self.transitions = np.zeros((LEVELS, LEVELS), dtype=np.int64)
        self.districts: dict[str, np.ndarray] = {}  # (2, LEVELS) per district
        self.fired = [np.zeros(len(rt.model.indicators), dtype=np.int64) for rt in self.sides]
        self.points = [np.zeros(len(rt.model.indicators)) for rt in self.sides]
        # Points by (indicator, tier), with a last column of 0 that tier -1 (none) picks.
        self.tables = []
        for rt in self.sides:
            width = max((len(ind.tiers) for ind in rt.model.indicators), default=0) + 1
            table = np.zeros((len(rt.model.indicators), width))
            for i, ind in enumerate(rt.model.indicators):
                table[i, :len(ind.tiers)] = [t.points for t in ind.tiers]
            self.tables.append(table)

    def add(self, matrix: np.ndarray, districts: Sequence[str]) -> None:
        levels = []
        for side, rt in enumerate(self.sides):
            tiers, _dims, score, level = rt.kernel.score(matrix)
            self.scores[side] += float(score.sum())
            self.levels[side] += np.bincount(level, minlength=LEVELS)[:LEVELS]
            self.fired[side] += (tiers >= 0).sum(axis=1)
            self.points[side] += self.tables[side][np.arange(tiers.shape[0])[:, None], tiers].sum(axis=1)
            levels.append(level.astype(np.int64))
        self.n += matrix.shape[1]
        self.transitions += np.bincount(levels[0] * LEVELS + levels[1], minlength=LEVELS * LEVELS).reshape(LEVELS, LEVELS)
        codes, inverse = np.unique(np.asarray(districts), return_inverse=True)
        for side in (0, 1):
            counts = np.bincount(inverse * LEVELS + levels[side], minlength=len(codes) * LEVELS).reshape(-1, LEVELS)
            for code, row in zip(codes.tolist(), counts, strict=True):
                self.districts.setdefault(code, np.zeros((2, LEVELS), dtype=np.int64))[side] += row


LEVELS = 16  # levels are small integers (1-3 in every model so far); bincount needs a bound


def _counts(row: np.ndarray) -> dict[int, int]:
    return {level: int(v) for level, v in enumerate(row.tolist()) if v}


async def simulate(session: AsyncSession, engine: ScoringEngine, version: str) -> Simulation:
    """Score everyone with the draft and with the active model; change nothing. Only the scores
    are computed (no portrait or suggestions), and while one chunk is tallied in a worker thread
    the next is read."""
    started = time.perf_counter()
    draft = await valid_runtime(session, engine, version)
    active = await engine.runtimes.active(session)
    if any(b.level >= LEVELS for rt in (active, draft) for b in rt.model.bands):
        raise Unprocessable(f"Simulation counts levels below {LEVELS}.")
    tally = _Tally(active, draft)
    counting: asyncio.Future[None] | None = None
    try:
        async for rows in assessments.population_facts(session, engine.settings.rescore_chunk_size):
            matrix, _ = await matrix_of(session, engine.profile.ctx, [r[0] for r in rows], [r[2] for r in rows],
                                        [r[3] for r in rows])
            if counting is not None:
                await counting
            counting = asyncio.ensure_future(asyncio.to_thread(tally.add, matrix, [r[1] for r in rows]))
        if counting is not None:
            await counting
    finally:
        if counting is not None and not counting.done():
            with contextlib.suppress(Exception):
                await counting
    moves: dict[str, list[float]] = {}
    for side, rt in enumerate(tally.sides):
        for i, ind in enumerate(rt.model.indicators):
            m = moves.setdefault(ind.code, [0, 0, 0.0, 0.0])
            m[side] += int(tally.fired[side][i])
            m[2 + side] += float(tally.points[side][i])
    movement = [
        IndicatorMovement(code=code, fired_before=int(m[0]), fired_after=int(m[1]), points_before=round(m[2], 2),
                          points_after=round(m[3], 2), points_change=round(m[3] - m[2], 2))
        for code, m in moves.items()
    ]
    movement.sort(key=lambda x: (-abs(x.points_change), -abs(x.fired_after - x.fired_before), x.code))
    n = tally.n
    before, after = _counts(tally.levels[0]), _counts(tally.levels[1])
    transitions = [(a, b, int(tally.transitions[a, b])) for a, b in zip(*np.nonzero(tally.transitions), strict=True)]
    return Simulation(
        model_version=draft.version, compared_with=active.version, households=n,
        levels_before=[LevelCount(level=k, households=v) for k, v in sorted(before.items())],
        levels_after=[LevelCount(level=k, households=v) for k, v in sorted(after.items())],
        transitions=[Transition(from_level=int(a), to_level=int(b), households=v) for a, b, v in sorted(transitions)],
        by_district=[DistrictLevels(district_code=d, before=_counts(c[0]), after=_counts(c[1]))
                     for d, c in sorted(tally.districts.items())],
        indicators_moving_most=[m for m in movement if m.points_change or m.fired_after != m.fired_before][:20],
        mean_score_before=round(tally.scores[0] / n, 2) if n else None,
        mean_score_after=round(tally.scores[1] / n, 2) if n else None,
        seconds=round(time.perf_counter() - started, 3),
    )


async def request_activation(session: AsyncSession, engine: ScoringEngine, caller: Caller, version: str) -> ModelActivation:
    """Record a running activation (refused while another runs); the job starts after commit."""
    row = await repo.get(session, version)
    if row is None:
        raise NotFound("No model with that version.")
    await valid_runtime(session, engine, version)
    state = await repo.state(session)
    if state.active_version == version:
        raise Conflict("That model is the active one already.")
    now = datetime.now(UTC)
    running = await repo.running_activation(session)
    if running is not None and running.started_at.replace(tzinfo=running.started_at.tzinfo or UTC) < now - timedelta(
            seconds=engine.settings.activation_timeout_seconds):
        running.status, running.finished_at, running.error = "failed", now, "abandoned: its process stopped"
        await session.flush()
    activation = ModelActivation(
        id=str(uuid.uuid4()), model_version=version, previous_version=state.active_version, status="running",
        requested_by=caller.subject, started_at=now, households=0, assessments_changed=0, events=0,
        levels_before={}, levels_after={},
    )
    if not await repo.start_activation(session, activation):
        raise Conflict("Another activation is running; wait until it finishes (see GET /api/v1/models/activations).")
    return activation


async def run_activation(engine: ScoringEngine, activation_id: str) -> None:
    """The job: rescore everyone with the model and make it active, in one transaction."""
    try:
        async with unit_of_work(engine.db) as session:
            activation = await repo.activation(session, activation_id)
            if activation is None or activation.status != "running":
                return
            state = await repo.state(session, lock="update")
            runtime = await engine.runtimes.get(session, activation.model_version)
            if runtime is None:
                raise RuntimeError("the model no longer compiles")
            before = await assessments.level_counts(session)
            outcome = await rescore_all(session, runtime, engine.settings, wake=engine.wake,
                                        worker=engine.rescore_worker)
            now = datetime.now(UTC)
            if state.active_version is not None:
                await repo.retire(session, state.active_version, now)
            model = await repo.get(session, activation.model_version)
            assert model is not None
            model.status, model.activated_at, model.row_version = "active", now, model.row_version + 1
            state.active_version, state.updated_at = activation.model_version, now
            activation.status, activation.finished_at = "succeeded", now
            activation.households, activation.assessments_changed = outcome.assessed, outcome.events
            activation.events = outcome.events
            activation.levels_before = {str(k): v for k, v in sorted(before.items())}
            activation.levels_after = {str(k): v for k, v in sorted(outcome.levels.items())}
        log.info("model %s activated: %d households rescored, %d events", activation.model_version,
                 outcome.assessed, outcome.events)
    except Exception as exc:
        log.exception("activation %s failed", activation_id)
        async with unit_of_work(engine.db) as session:
            failed = await repo.activation(session, activation_id)
            if failed is not None and failed.status == "running":
                failed.status, failed.finished_at = "failed", datetime.now(UTC)
                failed.error = f"{type(exc).__name__}: the activation was rolled back; the active model is unchanged"


async def bootstrap(engine: ScoringEngine) -> None:
    """At start-up: store the configured model; make it active when no model is."""
    default = engine.profile.default_model
    async with unit_of_work(engine.db) as session:
        stored = await repo.get(session, default.version)
        now = datetime.now(UTC)
        if stored is None:
            row = ScoringModel(version=default.version, status="draft", notes="config/scoring", created_by="config",
                               created_at=now, updated_at=now, row_version=1, title_zh="", title_en="", document={},
                               document_hash="", valid=True, errors=0, warnings=0)
            _stamp(row, engine.profile.default_report, default, default.document)
            await repo.add(session, row)
        elif stored.document_hash != default.document_hash:
            log.warning("config/scoring differs from the stored model %s; give the file a new version to ship it",
                        default.version)
        state = await repo.state(session, lock="update")
        if state.active_version is not None:
            return
        model = await repo.get(session, default.version)
        assert model is not None
        model.status, model.activated_at = "active", now
        state.active_version, state.updated_at = default.version, now
        session.add(ModelActivation(
            id=str(uuid.uuid4()), model_version=default.version, previous_version=None, status="succeeded",
            requested_by="start-up", started_at=now, finished_at=now, households=0, assessments_changed=0, events=0,
            levels_before={}, levels_after={},
        ))
        log.info("no active model: activated %s from config/scoring", default.version)
