"""Routes of webhook subscriptions (/api/v1/subscriptions)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from servicekit.auth import Caller, Role, require_roles
from servicekit.concurrency import expected_version, set_etag
from servicekit.db import Session, TransactionalRoute, db_now
from servicekit.errors import (
    BadGateway, BadRequest, Forbidden, NotFound, PreconditionFailed, PreconditionRequired, Unauthorized,
    Unprocessable, problem_responses,
)
from servicekit.idempotency import Idempotency
from servicekit.pagination import Page, Paging, paginate

from alerts.subscription import repository, service
from alerts.subscription.addresses import AddressGuard
from alerts.subscription.dispatcher import msg_id
from alerts.subscription.outbox import thin_payload
from alerts.subscription.schemas import (
    DeliveryPublic, PingResult, SecretInfo, SecretRotation, SigningSecret, SigningSecrets, SubscriptionCreate,
    SubscriptionPublic, SubscriptionUpdate,
)
from alerts.subscription.secrets import cipher_from_settings, unseal
from alerts.subscription.sender import Attempt, Sender
from alerts.subscription.tables import Subscription

router = APIRouter(prefix="/api/v1/subscriptions", tags=["subscriptions"], route_class=TransactionalRoute)

Owner = Annotated[Caller, Depends(require_roles(Role.town_worker, Role.district_officer, Role.city_admin))]
SubId = Annotated[str, Path(min_length=1, max_length=36)]
READ = (Unauthorized, Forbidden, NotFound)
WRITE = (BadRequest, Unauthorized, Forbidden, NotFound, PreconditionFailed, Unprocessable, PreconditionRequired)


def _guard(request: Request) -> AddressGuard:
    return request.app.state.address_guard


def _sender(request: Request) -> Sender:
    return request.app.state.webhook_sender


def _cipher(request: Request):
    cipher = getattr(request.app.state, "secret_cipher", None)
    if cipher is None:
        cipher = request.app.state.secret_cipher = cipher_from_settings(request.app.state.settings)
    return cipher


async def _public(session: Session, sub: Subscription, response: Response | None = None) -> SubscriptionPublic:
    now = await db_now(session)
    secrets = await repository.secrets(session, sub.id, now)
    if response is not None:
        set_etag(response, sub.version)
    return SubscriptionPublic(
        id=sub.id, area_code=sub.area_code, url=sub.url, description=sub.description, event_types=sub.event_types,
        status=sub.status, disabled_reason=sub.disabled_reason, disabled_at=sub.disabled_at,
        created_at=sub.created_at, updated_at=sub.updated_at, version=sub.version,
        secrets=[SecretInfo(id=s.id, created_at=s.created_at, expires_at=s.expires_at) for s in secrets],
    )


async def _load(session: Session, caller: Caller, sub_id: str) -> Subscription:
    sub = await repository.get_in_scope(session, caller, sub_id)
    if sub is None:
        raise NotFound(service.NOT_FOUND)
    return sub


@router.post(
    "", status_code=201, operation_id="subscriptions:create", response_model=SubscriptionPublic,
    summary="Subscribe a webhook endpoint to the alerts of your township or district",
    responses=problem_responses(BadRequest, Unauthorized, Forbidden, Unprocessable),
)
async def create_subscription(
    body: SubscriptionCreate, session: Session, caller: Owner, request: Request, response: Response, _idem: Idempotency,
) -> SubscriptionPublic:
    sub = await service.create(session, caller, body, _guard(request), _cipher(request))
    response.headers["Location"] = f"/api/v1/subscriptions/{sub.id}"
    return await _public(session, sub, response)


@router.get(
    "", operation_id="subscriptions:list", response_model=Page[SubscriptionPublic],
    summary="Webhook endpoints in your jurisdiction", responses=problem_responses(BadRequest, Unauthorized, Forbidden),
)
async def list_subscriptions(session: Session, caller: Owner, paging: Paging) -> Page[SubscriptionPublic]:
    rows, cursor = paginate(list(await repository.page(session, caller, paging)), paging, key=lambda s: [s.id])
    return Page[SubscriptionPublic](items=[await _public(session, s) for s in rows], next_cursor=cursor)


@router.get(
    "/{sub_id}", operation_id="subscriptions:get", response_model=SubscriptionPublic,
    summary="One webhook endpoint", responses=problem_responses(*READ),
)
async def get_subscription(sub_id: SubId, session: Session, caller: Owner, response: Response) -> SubscriptionPublic:
    return await _public(session, await _load(session, caller, sub_id), response)


@router.patch(
    "/{sub_id}", operation_id="subscriptions:update", response_model=SubscriptionPublic,
    summary="Change the URL, description or event types; enable or disable", responses=problem_responses(*WRITE),
)
async def update_subscription(
    sub_id: SubId, body: SubscriptionUpdate, session: Session, caller: Owner, request: Request, response: Response,
) -> SubscriptionPublic:
    sub = await service.load_for_change(session, caller, sub_id, expected_version(request))
    await service.update(session, sub, body, _guard(request))
    return await _public(session, sub, response)


@router.delete(
    "/{sub_id}", status_code=204, operation_id="subscriptions:delete",
    summary="Remove the endpoint; pending deliveries are cancelled", responses=problem_responses(*WRITE),
)
async def delete_subscription(sub_id: SubId, session: Session, caller: Owner, request: Request) -> Response:
    sub = await service.load_for_change(session, caller, sub_id, expected_version(request))
    await service.delete(session, sub)
    return Response(status_code=204)


@router.post(
    "/{sub_id}/secret-rotations", operation_id="subscriptions:rotate_secret", response_model=SubscriptionPublic,
    summary="Rotate the signing secret; the old one keeps signing during the overlap", responses=problem_responses(*WRITE),
)
async def rotate_secret(
    sub_id: SubId, body: SecretRotation, session: Session, caller: Owner, request: Request, response: Response,
    _idem: Idempotency,
) -> SubscriptionPublic:
    sub = await service.load_for_change(session, caller, sub_id, expected_version(request))
    await service.rotate(session, sub, body, _cipher(request))
    return await _public(session, sub, response)


@router.get(
    "/{sub_id}/secrets", operation_id="subscriptions:secrets", response_model=SigningSecrets,
    summary="The secrets that sign deliveries now (whsec_...), newest first", responses=problem_responses(*READ),
)
async def signing_secrets(sub_id: SubId, session: Session, caller: Owner, request: Request, response: Response) -> SigningSecrets:
    sub = await _load(session, caller, sub_id)
    response.headers["Cache-Control"] = "no-store"
    now = await db_now(session)
    cipher = _cipher(request)
    return SigningSecrets(items=[
        SigningSecret(id=s.id, created_at=s.created_at, expires_at=s.expires_at, secret=unseal(cipher, s.secret_encrypted, s.id))
        for s in await repository.secrets(session, sub.id, now)
    ])


@router.get(
    "/{sub_id}/deliveries", operation_id="subscriptions:deliveries", response_model=Page[DeliveryPublic],
    summary="The endpoint's deliveries, newest first", responses=problem_responses(BadRequest, *READ),
)
async def list_deliveries(sub_id: SubId, session: Session, caller: Owner, paging: Paging) -> Page[DeliveryPublic]:
    sub = await _load(session, caller, sub_id)
    rows, cursor = paginate(
        list(await repository.deliveries_page(session, sub.id, paging)), paging,
        key=lambda d: [d.created_at.isoformat(), d.id],
    )
    return Page[DeliveryPublic](items=[DeliveryPublic.model_validate(d, from_attributes=True) for d in rows], next_cursor=cursor)


@router.post(
    "/{sub_id}/ping", operation_id="subscriptions:ping", response_model=PingResult,
    summary="Send a signed test message now and report the endpoint's answer",
    responses=problem_responses(*READ, Unprocessable, BadGateway),
)
async def ping(sub_id: SubId, session: Session, caller: Owner, request: Request) -> PingResult:
    sub = await _load(session, caller, sub_id)
    now = await db_now(session)
    cipher = _cipher(request)
    secrets = [unseal(cipher, s.secret_encrypted, s.id) for s in await repository.secrets(session, sub.id, now)]
    url, payload = sub.url, thin_payload("webhook.ping", now, {"subscription_id": sub.id})
    await session.rollback()  # read-only from here: hold no transaction while the endpoint answers
    sender = _sender(request)
    resolved = await sender.resolve(url)
    if isinstance(resolved, Attempt):
        raise Unprocessable("The endpoint's host now resolves to an address webhooks may not reach; nothing was sent.")
    target, ips = resolved
    attempt = await sender.send(target, ips, msg_id(str(uuid.uuid4())), payload, secrets)
    if attempt.error == "redirect_not_followed":
        raise BadGateway("The endpoint answered with a redirect; redirects are never followed.", status_code=attempt.status)
    if not attempt.ok and attempt.status is None:
        raise BadGateway("The endpoint could not be reached.", error=attempt.error)
    return PingResult(delivered=attempt.ok, status_code=attempt.status)
