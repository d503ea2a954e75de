"""/api/v1/models: drafts, validation, simulation, activation and history of the scoring model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from servicekit.concurrency import expected_version, set_etag
from servicekit.db import Session, TransactionalRoute, after_commit
from servicekit.errors import (
    Conflict, Forbidden, NotFound, PreconditionFailed, PreconditionRequired, Unauthorized, Unprocessable,
    problem_responses,
)
from servicekit.idempotency import Idempotency
from servicekit.pagination import Page, Paging, paginate
from scoring.deps import Admin, Engine, Reader
from scoring.models import repository as repo
from scoring.models import service
from scoring.models.schemas import ActivationPublic, ModelCreate, ModelDetail, ModelSummary, ModelUpdate, Simulation
from scoring.models.tables import ModelActivation, ScoringModel
from scoring.rules.document import ModelDocument
from scoring.rules.validation import ValidationReport

router = APIRouter(prefix="/api/v1/models", tags=["models"], route_class=TransactionalRoute)
READ = problem_responses(Unauthorized, Forbidden)
VersionPath = Annotated[str, Path(max_length=40, pattern=r"^[a-z0-9][a-z0-9._\-]{0,39}$",
                                                       examples=["hz-2026.1"])]


def summary(row: ScoringModel) -> ModelSummary:
    return ModelSummary.model_validate(row, from_attributes=True)


def detail(row: ScoringModel, report: ValidationReport) -> ModelDetail:
    return ModelDetail(**summary(row).model_dump(), document=row.document, report=report)


def activation_public(row: ModelActivation) -> ActivationPublic:
    return ActivationPublic.model_validate(row, from_attributes=True)


@router.get("", operation_id="models:list", summary="List model versions, newest first", response_model=Page[ModelSummary],
            responses=READ)
async def list_models(session: Session, _caller: Reader, paging: Paging,
                      status: Annotated[str | None, Query(pattern="^(draft|active|retired)$")] = None) -> Any:
    rows = await repo.page(session, paging, status)
    page, cursor = paginate(rows, paging, key=lambda r: [r.created_at.isoformat()])
    return Page[ModelSummary](items=[summary(r) for r in page], next_cursor=cursor)


@router.post("", operation_id="models:create", status_code=201, response_model=ModelDetail,
             summary="Create a draft model (stored with its validation report, even when it does not validate)",
             responses=problem_responses(Unauthorized, Forbidden, Conflict, Unprocessable))
async def create_model(body: ModelCreate, session: Session, caller: Admin, engine: Engine, _idem: Idempotency,
                       response: Response) -> Any:
    row, report = await service.create_draft(session, engine, caller, body)
    response.headers["Location"] = f"/api/v1/models/{row.version}"
    set_etag(response, row.row_version)
    return detail(row, report)


@router.get("/schema", operation_id="models:schema", summary="The JSON Schema of a model document", responses=READ)
async def model_schema(_caller: Reader) -> dict[str, Any]:
    return ModelDocument.model_json_schema(by_alias=True)


@router.get("/active", operation_id="models:active", summary="The active model", response_model=ModelDetail,
            responses=problem_responses(Unauthorized, Forbidden, NotFound))
async def active_model(session: Session, _caller: Reader, engine: Engine, response: Response) -> Any:
    state = await repo.state(session)
    row = await repo.get(session, state.active_version or "")
    if row is None:
        raise NotFound("No model is active.")
    set_etag(response, row.row_version)
    return detail(row, service.report_of(engine, row)[1])


@router.get("/activations", operation_id="models:activations", summary="Activations, newest first",
            response_model=Page[ActivationPublic], responses=READ)
async def list_activations(session: Session, _caller: Reader, paging: Paging) -> Any:
    rows = await repo.activations(session, paging)
    page, cursor = paginate(rows, paging, key=lambda r: [r.started_at.isoformat()])
    return Page[ActivationPublic](items=[activation_public(r) for r in page], next_cursor=cursor)


@router.get("/activations/{activation_id}", operation_id="models:activation", summary="One activation",
            response_model=ActivationPublic, responses=problem_responses(Unauthorized, Forbidden, NotFound))
async def get_activation(activation_id: Annotated[str, Path(max_length=36)], session: Session,
                         _caller: Reader) -> Any:
    row = await repo.activation(session, activation_id)
    if row is None:
        raise NotFound("No activation with that id.")
    return activation_public(row)


@router.get("/{version}", operation_id="models:get", summary="One model version with its document and report",
            response_model=ModelDetail, responses=problem_responses(Unauthorized, Forbidden, NotFound))
async def get_model(version: VersionPath, session: Session, _caller: Reader, engine: Engine, response: Response) -> Any:
    row = await repo.get(session, version)
    if row is None:
        raise NotFound("No model with that version.")
    set_etag(response, row.row_version)
    return detail(row, service.report_of(engine, row)[1])


@router.put("/{version}", operation_id="models:update", summary="Replace a draft's document (If-Match)",
            response_model=ModelDetail,
            responses=problem_responses(Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed,
                                        PreconditionRequired, Unprocessable))
async def update_model(version: VersionPath, body: ModelUpdate, request: Request, session: Session, _caller: Admin,
                       engine: Engine, response: Response) -> Any:
    row, report = await service.update_draft(session, engine, version, expected_version(request), body)
    set_etag(response, row.row_version)
    return detail(row, report)


@router.post("/{version}/validate", operation_id="models:validate", response_model=ValidationReport,
             summary="Validate a model: a report naming every problem (changes nothing)",
             responses=problem_responses(Unauthorized, Forbidden, NotFound))
async def validate_model(version: VersionPath, session: Session, _caller: Admin, engine: Engine) -> Any:
    row = await repo.get(session, version)
    if row is None:
        raise NotFound("No model with that version.")
    return service.report_of(engine, row)[1]


@router.post("/{version}/simulate", operation_id="models:simulate", response_model=Simulation,
             summary="Score the whole population with this model beside the active one (changes nothing)",
             responses=problem_responses(Unauthorized, Forbidden, NotFound, Unprocessable))
async def simulate_model(version: VersionPath, session: Session, _caller: Admin, engine: Engine) -> Any:
    return await service.simulate(session, engine, version)


@router.post("/{version}/activate", operation_id="models:activate", status_code=202, response_model=ActivationPublic,
             summary="Activate a valid model: rescores every household in the background (one at a time)",
             responses=problem_responses(Unauthorized, Forbidden, NotFound, Conflict, Unprocessable))
async def activate_model(version: VersionPath, session: Session, caller: Admin, engine: Engine, _idem: Idempotency,
                         response: Response) -> Any:
    activation = await service.request_activation(session, engine, caller, version)
    after_commit(session, lambda: engine.spawn(service.run_activation(engine, activation.id)))
    response.headers["Location"] = f"/api/v1/models/activations/{activation.id}"
    return activation_public(activation)
