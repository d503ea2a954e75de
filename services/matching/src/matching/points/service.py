"""Points (春风点数): enrolment, credits by rule and by officers, redemptions at a charity
supermarket that never take a balance below zero, the monthly allowance, statements.

The ledger is append-only (the database refuses updates and deletes); the account's balance is
kept beside it under a row lock and a CHECK (balance >= 0), and always equals the ledger's sum.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.audit import AuditAction, record
from servicekit.auth import Caller
from servicekit.crypto import BlindIndex
from servicekit.errors import NotFound, Unprocessable
from servicekit.resident_id import InvalidResidentId, validate
from servicekit.tables import utcnow

from matching.columns import new_id
from matching.needs.service import DIGEST_PURPOSE
from matching.points import repository
from matching.points.schemas import (
    AccountOwn, AccountPublic, AllowanceResult, Credit, Enrolment, EntryKind, EntryPublic, Redemption, Statement,
)
from matching.points.tables import PointsAccount, PointsEntry
from matching.problems import AlreadyExists, InsufficientPoints, UnknownReference
from matching.profile import Profile
from matching.sites import repository as sites


def digest(index: BlindIndex, resident_id: str) -> str:
    try:
        number = validate(resident_id).number
    except (InvalidResidentId, TypeError):
        raise Unprocessable("The resident ID number is not valid.") from None
    return index.digest(number, purpose=DIGEST_PURPOSE)


def public(account: PointsAccount) -> AccountPublic:
    return AccountPublic(
        id=account.id, household_id=account.household_id, area_code=account.area_code, level=account.level,
        status=account.status, balance=account.balance, zheliban_linked=account.holder_digest is not None,
        enrolled_at=account.enrolled_at, version=account.version,
    )


def own(account: PointsAccount, profile: Profile) -> AccountOwn:
    return AccountOwn(id=account.id, programme=profile.points.name_zh, balance=account.balance, status=account.status)


def entry_public(entry: PointsEntry) -> EntryPublic:
    return EntryPublic.model_validate(entry, from_attributes=True)


async def enrol(session: AsyncSession, profile: Profile, index: BlindIndex, caller: Caller,
                body: Enrolment) -> PointsAccount:
    if not profile.areas.is_village(body.area_code):
        raise UnknownReference("area_code is not a village (村社) of the city.")
    if not caller.can_see_area(body.area_code):
        raise NotFound("That village is not in your jurisdiction.")
    holder = digest(index, body.holder_resident_id) if body.holder_resident_id else None
    if await repository.by_household(session, body.household_id) is not None:
        raise AlreadyExists("That household is enrolled already.")
    if holder is not None and await repository.by_holder(session, holder) is not None:
        raise AlreadyExists("That holder is linked to another account already.")
    account = PointsAccount(
        id=new_id(), household_id=body.household_id, holder_digest=holder, area_code=body.area_code,
        level=body.level, status="active", balance=0, enrolled_by=caller.subject, enrolled_at=utcnow(), version=1,
    )
    session.add(account)
    await session.flush()
    return account


async def visible(session: AsyncSession, caller: Caller, account_id: str, *, lock: bool = False) -> PointsAccount:
    account = await repository.get(session, account_id, lock=lock)
    if account is None or not caller.can_see_area(account.area_code):
        raise NotFound("No points account with that id is in your jurisdiction.")
    return account


async def of_citizen(session: AsyncSession, index: BlindIndex, caller: Caller, *, lock: bool = False) -> PointsAccount:
    account = await repository.by_holder(session, digest(index, caller.resident_id or ""), lock=lock)
    if account is None:
        raise NotFound("You have no points account; your village can enrol your household.")
    return account


async def lookup(session: AsyncSession, index: BlindIndex, caller: Caller, resident_id: str) -> PointsAccount:
    """At the counter: the account of the family whose member shows their ID. Audited."""
    account = await repository.by_holder(session, digest(index, resident_id))
    if account is None or not caller.can_see_area(account.area_code):
        raise NotFound("No points account in your jurisdiction is linked to that person.")
    record(session, caller, AuditAction.lookup, "points_account", account.id, ["holder_resident_id"],
           purpose="points counter", area_code=account.area_code)
    return account


def _entry(account: PointsAccount, kind: EntryKind, amount: int, caller: Caller, now: datetime,
           **fields: Any) -> PointsEntry:
    account.balance += amount
    account.version += 1
    return PointsEntry(account_id=account.id, kind=kind.value, amount=amount, balance_after=account.balance,
                       actor_role=caller.role.value, actor=caller.subject, created_at=now, **fields)


async def credit(session: AsyncSession, profile: Profile, caller: Caller, account_id: str, body: Credit) -> PointsEntry:
    account = await visible(session, caller, account_id, lock=True)
    if account.status != "active":
        raise UnknownReference("The account is not active.")
    if body.rule_code is not None:
        reward = profile.points.reward(body.rule_code)
        if reward is None:
            raise UnknownReference("rule_code is not a reward of the points programme.")
        entry = _entry(account, EntryKind.reward, reward.points, caller, utcnow(), rule_code=reward.code, note=body.note)
    else:
        assert body.amount is not None
        if body.amount > profile.points.officer_credit_max:
            raise Unprocessable("amount is above what one officer credit may add.")
        entry = _entry(account, EntryKind.officer_credit, body.amount, caller, utcnow(), note=body.note)
    session.add(entry)
    await session.flush()
    return entry


async def redeem(session: AsyncSession, profile: Profile, caller: Caller, account: PointsAccount,
                 body: Redemption) -> PointsEntry:
    site = await sites.get(session, body.site_code)
    if site is None or not site.active or profile.rules.supermarket not in site.co_located:
        raise UnknownReference("site_code is not an active charity supermarket (幸福超市).")
    items, total = [], 0
    for item in body.items:
        good = profile.points.good(item.good)
        if good is None:
            raise UnknownReference("items names a good the supermarkets do not offer.")
        items.append({"good": good.code, "quantity": item.quantity, "points": good.points * item.quantity})
        total += good.points * item.quantity
    if total > profile.points.redemption_max:
        raise Unprocessable("The redemption is above what one redemption may spend.")
    if account.status != "active":
        raise UnknownReference("The account is not active.")
    if total > account.balance:
        raise InsufficientPoints("The balance is smaller than this redemption; nothing was taken.")
    entry = _entry(account, EntryKind.redemption, -total, caller, utcnow(), site_code=site.code, items=items)
    session.add(entry)
    await session.flush()
    return entry


def month_bounds(period: str) -> tuple[date, date]:
    year, month = int(period[:4]), int(period[5:7])
    start = date(year, month, 1)
    return start, (start + timedelta(days=32)).replace(day=1)


async def monthly_allowance(session: AsyncSession, profile: Profile, caller: Caller, period: str) -> AllowanceResult:
    """Credit every active account of the caller's jurisdiction once for the month."""
    now = utcnow()
    if month_bounds(period)[0] > now.astimezone(profile.rules.zone).date():
        raise Unprocessable("The allowance of a month that has not begun cannot be credited.")
    rule = profile.points.monthly_allowance
    accounts = await repository.active_in_scope_locked(session, caller.scope(PointsAccount.area_code))
    done = await repository.credited_for(session, rule.code, period, [a.id for a in accounts])
    credited = points = 0
    for account in accounts:
        amount = rule.amount(account.level)
        if account.id in done or amount <= 0:
            continue
        session.add(_entry(account, EntryKind.allowance, amount, caller, now, rule_code=rule.code, period_key=period))
        credited += 1
        points += amount
    try:
        await session.flush()
    except IntegrityError:  # another run credited the same month meanwhile: nothing of ours is kept
        raise AlreadyExists("Another allowance run for this month is under way; run it again afterwards.") from None
    return AllowanceResult(period=period, credited=credited, already=len(done), points=points)


async def statement(session: AsyncSession, profile: Profile, account: PointsAccount, start: date,
                    end: date) -> Statement:
    if end < start or (end - start).days > 366:
        raise Unprocessable("A statement covers from `from` to `to`, at most a year.")
    zone = profile.rules.zone
    since = datetime.combine(start, time.min, zone).astimezone(UTC)
    until = datetime.combine(end + timedelta(days=1), time.min, zone).astimezone(UTC)
    opening = await repository.balance_before(session, account.id, since)
    rows = await repository.entries(session, account.id, since=since, until=until)
    credits = sum(e.amount for e in rows if e.amount > 0)
    debits = -sum(e.amount for e in rows if e.amount < 0)
    return Statement(account_id=account.id, date_from=start, date_to=end, opening_balance=opening, credits=credits,
                     debits=debits, closing_balance=opening + credits - debits,
                     entries=[entry_public(e) for e in rows])
