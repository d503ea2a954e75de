"""What the registry writes to the audit log: every read of personal data, masked or not."""

from __future__ import annotations

from datetime import timedelta

from servicekit.audit import AuditAction, entry, insert, record
from servicekit.errors import TooManyRequests

from registry.audit import repository
from registry.deps import Context

HOUSEHOLD_FIELDS = ("label_masked", "address_masked", "members.resident_id_masked", "members.name_masked",
                    "members.phone_masked", "members.age", "facts")
MEMBER_FIELDS = ("resident_id_masked", "name_masked", "phone_masked", "age", "facts")
SUMMARY_FIELDS = ("label_masked",)
REVEALED_FIELDS = ("resident_id", "name", "phone", "birth_date", "address")


def household_read(ctx: Context, household_id: str, area_code: str, fields: tuple[str, ...] = HOUSEHOLD_FIELDS) -> None:
    record(ctx.session, ctx.caller, AuditAction.read_masked, "household", household_id, fields, area_code=area_code)


async def household_read_now(ctx: Context, household_id: str, area_code: str) -> None:
    """``household_read``, inserted at once as one statement (the masked read by id, the hottest
    path, has nothing else to flush)."""
    await insert(ctx.session, entry(ctx.caller, AuditAction.read_masked, "household", household_id, HOUSEHOLD_FIELDS,
                                    None, area_code))


def households_listed(ctx: Context, items: list[tuple[str, str]]) -> None:
    for household_id, area_code in items:
        household_read(ctx, household_id, area_code, SUMMARY_FIELDS)


def member_read(ctx: Context, member_id: str, area_code: str, *, lookup: bool = False) -> None:
    action = AuditAction.lookup if lookup else AuditAction.read_masked
    record(ctx.session, ctx.caller, action, "member", member_id, MEMBER_FIELDS, area_code=area_code)


def written(ctx: Context, resource_type: str, resource_id: str, fields: list[str], area_code: str | None) -> None:
    record(ctx.session, ctx.caller, AuditAction.write, resource_type, resource_id, fields, area_code=area_code)


async def unmasked_read(ctx: Context, member_id: str, area_code: str, purpose: str) -> None:
    """Audit an unmasked read, refusing it past the hourly allowance (counted in the log itself,
    so every replica sees the same count)."""
    since = ctx.now - timedelta(hours=1)
    if await repository.unmasked_reads_since(ctx.session, ctx.caller.subject, since) >= ctx.settings.reveal_per_hour:
        raise TooManyRequests("You have reached the hourly limit of unmasked reads; try again later.",
                              headers={"Retry-After": "3600"})
    record(ctx.session, ctx.caller, AuditAction.read_unmasked, "member", member_id, REVEALED_FIELDS,
           purpose=purpose[:256], area_code=area_code)


def lead_read(ctx: Context, lead_id: str, area_code: str | None) -> None:
    record(ctx.session, ctx.caller, AuditAction.read_masked, "lead", lead_id, ("resident_id_masked", "value"),
           area_code=area_code)
