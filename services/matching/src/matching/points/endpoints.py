"""/api/v1/points: 春风点数 accounts, credits, redemptions at a charity supermarket, statements;
a family sees its own in Zheliban (/api/v1/points/me)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from servicekit.concurrency import set_etag
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import BadRequest, Forbidden, NotFound, Unprocessable, problem_responses
from servicekit.idempotency import KEY_REQUIRED, Idempotency
from servicekit.isotime import Day
from servicekit.pagination import Page, Paging, paginate

from matching.paging import after_key, after_number
from matching.deps import (
    Administrator, Anyone, Citizen, CurrentBlindIndex, CurrentProfile, Official, Reader, RequiredIdempotency,
)
from matching.points import repository, service
from matching.points.schemas import (
    AccountOwn, AccountPublic, AllowanceResult, AllowanceRun, Credit, Enrolment, EntryPublic, Good, Lookup,
    Redemption, Statement,
)
from matching.points.tables import PointsAccount
from matching.problems import AlreadyExists, IdempotencyKeyRequired, InsufficientPoints, UnknownReference

router = APIRouter(prefix="/api/v1/points", tags=["points"], route_class=TransactionalRoute)
_REDEEM = problem_responses(Forbidden, NotFound, IdempotencyKeyRequired, InsufficientPoints, UnknownReference,
                            Unprocessable)
From = Annotated[Day, Query(alias="from", description="First day (the city's calendar)")]
To = Annotated[Day, Query(alias="to", description="Last day, included")]


@router.get("/goods", operation_id="points:goods", summary="What the charity supermarkets offer, in points",
            response_model=list[Good], responses=problem_responses(Forbidden))
async def goods(_caller: Anyone, profile: CurrentProfile) -> list[Good]:
    return [Good(code=g.code, name_zh=g.name_zh, name_en=g.name_en, points=g.points) for g in profile.points.goods]


@router.post("/accounts", status_code=201, operation_id="points:enrol",
             summary="Enrol a household (春风用户); optionally link the member who uses Zheliban",
             response_model=AccountPublic,
             responses=problem_responses(Forbidden, NotFound, AlreadyExists, UnknownReference, Unprocessable))
async def enrol(body: Enrolment, session: Session, caller: Official, profile: CurrentProfile,
                index: CurrentBlindIndex, response: Response, _idem: Idempotency) -> AccountPublic:
    account = await service.enrol(session, profile, index, caller, body)
    set_etag(response, account.version)
    response.headers["Location"] = f"/api/v1/points/accounts/{account.id}"
    return service.public(account)


@router.get("/accounts", operation_id="points:list", summary="Accounts of your jurisdiction",
            response_model=Page[AccountPublic], responses=problem_responses(Forbidden))
async def list_accounts(session: Session, caller: Reader, paging: Paging) -> Page[AccountPublic]:
    after = after_key(paging)
    rows = await repository.page(session, caller.scope(PointsAccount.area_code), after, paging.limit)
    items, cursor = paginate(rows, paging, lambda a: (a.id,))
    return Page(items=[service.public(a) for a in items], next_cursor=cursor)


@router.post("/accounts/lookup", operation_id="points:lookup",
             summary="Find the account linked to a member's ID number, at the counter (audited)",
             response_model=AccountPublic, responses=problem_responses(Forbidden, NotFound, Unprocessable))
async def lookup(body: Lookup, session: Session, caller: Official, index: CurrentBlindIndex,
                 response: Response) -> AccountPublic:
    account = await service.lookup(session, index, caller, body.resident_id)
    set_etag(response, account.version)
    return service.public(account)


@router.get("/accounts/{account_id}", operation_id="points:get", summary="One account",
            response_model=AccountPublic, responses=problem_responses(Forbidden, NotFound))
async def get_account(account_id: str, session: Session, caller: Reader, response: Response) -> AccountPublic:
    account = await service.visible(session, caller, account_id)
    set_etag(response, account.version)
    return service.public(account)


@router.post("/accounts/{account_id}/credits", status_code=201, operation_id="points:credit",
             summary="Credit a reward by its rule, or an officer's amount", response_model=EntryPublic,
             responses=problem_responses(Forbidden, NotFound, UnknownReference, Unprocessable))
async def credit(account_id: str, body: Credit, session: Session, caller: Official, profile: CurrentProfile,
                 _idem: Idempotency) -> EntryPublic:
    return service.entry_public(await service.credit(session, profile, caller, account_id, body))


@router.post("/accounts/{account_id}/redemptions", status_code=201, operation_id="points:redeem",
             summary="Spend points on goods at a charity supermarket (Idempotency-Key required; never below zero)",
             response_model=EntryPublic, responses=_REDEEM, openapi_extra=KEY_REQUIRED)
async def redeem(account_id: str, body: Redemption, session: Session, caller: Official, profile: CurrentProfile,
                 _idem: RequiredIdempotency) -> EntryPublic:
    account = await service.visible(session, caller, account_id, lock=True)
    return service.entry_public(await service.redeem(session, profile, caller, account, body))


@router.get("/accounts/{account_id}/entries", operation_id="points:entries", summary="The ledger, newest first",
            response_model=Page[EntryPublic], responses=problem_responses(Forbidden, NotFound, BadRequest))
async def entries(account_id: str, session: Session, caller: Reader, paging: Paging) -> Page[EntryPublic]:
    await service.visible(session, caller, account_id)
    before = after_number(paging)
    rows = await repository.entries(session, account_id, before_id=before, limit=paging.limit + 1, newest_first=True)
    items, cursor = paginate(rows, paging, lambda e: (e.id,))
    return Page(items=[service.entry_public(e) for e in items], next_cursor=cursor)


@router.get("/accounts/{account_id}/statement", operation_id="points:statement",
            summary="Statement of an account over a period: opening, credits, debits, closing, entries",
            response_model=Statement, response_model_by_alias=True,
            responses=problem_responses(Forbidden, NotFound, Unprocessable))
async def statement(account_id: str, session: Session, caller: Reader, profile: CurrentProfile,
                    date_from: From, date_to: To) -> Statement:
    account = await service.visible(session, caller, account_id)
    return await service.statement(session, profile, account, date_from, date_to)


@router.post("/allowances", operation_id="points:allowance",
             summary="Credit the monthly allowance to every active account of your jurisdiction, once a month",
             response_model=AllowanceResult,
             responses=problem_responses(Forbidden, AlreadyExists, Unprocessable))
async def allowance(body: AllowanceRun, session: Session, caller: Administrator, profile: CurrentProfile,
                    _idem: Idempotency) -> AllowanceResult:
    return await service.monthly_allowance(session, profile, caller, body.period)


@router.get("/me", operation_id="points:mine", summary="Your family's balance (Zheliban)",
            response_model=AccountOwn, responses=problem_responses(Forbidden, NotFound))
async def mine(session: Session, caller: Citizen, profile: CurrentProfile, index: CurrentBlindIndex) -> AccountOwn:
    return service.own(await service.of_citizen(session, index, caller), profile)


@router.get("/me/statement", operation_id="points:my-statement", summary="Your family's statement (Zheliban)",
            response_model=Statement, response_model_by_alias=True,
            responses=problem_responses(Forbidden, NotFound, Unprocessable))
async def my_statement(session: Session, caller: Citizen, profile: CurrentProfile, index: CurrentBlindIndex,
                       date_from: From, date_to: To) -> Statement:
    account = await service.of_citizen(session, index, caller)
    return await service.statement(session, profile, account, date_from, date_to)


@router.post("/me/redemptions", status_code=201, operation_id="points:redeem-mine",
             summary="Spend your family's points at a charity supermarket (Idempotency-Key required)",
             response_model=EntryPublic, responses=_REDEEM, openapi_extra=KEY_REQUIRED)
async def redeem_mine(body: Redemption, session: Session, caller: Citizen, profile: CurrentProfile,
                      index: CurrentBlindIndex, _idem: RequiredIdempotency) -> EntryPublic:
    account = await service.of_citizen(session, index, caller, lock=True)
    return service.entry_public(await service.redeem(session, profile, caller, account, body))
