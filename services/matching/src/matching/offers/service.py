"""Offers: partners post them, publish, pause and close them; officials and citizens read them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller, Role
from servicekit.concurrency import check_version
from servicekit.errors import FieldIssue, NotFound
from servicekit.tables import utcnow

from matching.columns import new_id
from matching.locks import lock_shared
from matching.matches import repository as matches
from matching.offers import hsds, repository
from matching.offers.schemas import (
    Eligibility, HsdsDocument, Imported, ImportReport, OfferCreate, OfferPublic, OfferStatus, OfferUpdate, Rejected,
)
from matching.offers.tables import Offer
from matching.periods import local_date, period_key
from matching.problems import InvalidTransition, UnknownReference
from matching.profile import Profile
from matching.sites import repository as sites

# action -> (allowed from, leads to)
TRANSITIONS = {
    "publish": ({"draft", "paused"}, OfferStatus.published),
    "pause": ({"published"}, OfferStatus.paused),
    "close": ({"draft", "published", "paused"}, OfferStatus.closed),
}


def current_key(offer: Offer, profile: Profile, now: datetime) -> str:
    return period_key(offer.period, local_date(profile.rules.zone, now))


def public(offer: Offer, held: int) -> OfferPublic:
    return OfferPublic(
        id=offer.id, organisation_id=offer.organisation_id, title=offer.title, description=offer.description,
        services=offer.services, areas=offer.areas, site_code=offer.site_code, capacity=offer.capacity,
        period=offer.period, held=held,
        eligibility=Eligibility(min_age=offer.min_age, max_age=offer.max_age, need_types=offer.need_types,
                                household_types=offer.household_types),
        contact_route=offer.contact_route, status=offer.status, external_id=offer.external_id, version=offer.version,
        created_at=offer.created_at, updated_at=offer.updated_at, published_at=offer.published_at,
    )


async def publics(session: AsyncSession, profile: Profile, offers: list[Offer]) -> list[OfferPublic]:
    now = utcnow()
    held = await matches.held(session, [(o.id, current_key(o, profile, now)) for o in offers])
    return [public(o, held.get(o.id, 0)) for o in offers]


def check_references(profile: Profile, *, services: list[str] | None = None, areas: list[str] | None = None,
                     eligibility: Eligibility | None = None) -> None:
    """Codes must exist in the city profile; the detail says which field, never echoes values."""
    if services is not None and any(s not in profile.catalogue for s in services):
        raise UnknownReference("services names a service that is not in the catalogue.")
    if areas is not None and any(a not in profile.areas for a in areas):
        raise UnknownReference("areas names an area outside the city.")
    if eligibility is not None:
        if any(t not in profile.catalogue.need_types for t in eligibility.need_types):
            raise UnknownReference("eligibility.need_types names a need type that does not exist.")
        if any(t not in profile.rules.household_type_codes for t in eligibility.household_types):
            raise UnknownReference("eligibility.household_types names a household type that does not exist.")


async def check_site(session: AsyncSession, code: str) -> None:
    site = await sites.get(session, code)
    if site is None or not site.active:
        raise UnknownReference("site_code is not an active site of the consortium.")


def new_offer(organisation: str, caller: Caller, body: OfferCreate, *, external_id: str | None = None,
              now: datetime | None = None) -> Offer:
    now = now or utcnow()
    e = body.eligibility
    return Offer(
        id=new_id(), organisation_id=organisation, title=body.title, description=body.description,
        services=list(body.services), areas=list(body.areas), site_code=body.site_code, capacity=body.capacity,
        period=body.period.value, min_age=e.min_age, max_age=e.max_age, need_types=list(e.need_types),
        household_types=list(e.household_types), contact_route=body.contact_route.value,
        status=OfferStatus.draft.value, external_id=external_id, created_by=caller.subject, version=1,
        created_at=now, updated_at=now, published_at=None,
    )


async def create(session: AsyncSession, profile: Profile, caller: Caller, organisation: str,
                 body: OfferCreate) -> Offer:
    check_references(profile, services=body.services, areas=body.areas, eligibility=body.eligibility)
    await check_site(session, body.site_code)
    offer = new_offer(organisation, caller, body)
    session.add(offer)
    await session.flush()
    return offer


async def visible(session: AsyncSession, caller: Caller, offer_id: str, *, lock: bool = False) -> Offer:
    """Partners see their own offers; citizens see published ones; officials see all."""
    offer = await repository.get(session, offer_id, lock=lock)
    hidden = offer is None or (
        (caller.role is Role.partner and offer.organisation_id != caller.organisation)
        or (caller.role is Role.citizen and offer.status != OfferStatus.published.value)
    )
    if hidden:
        raise NotFound("No offer with that id is visible to you.")
    assert offer is not None
    return offer


async def update(session: AsyncSession, profile: Profile, caller: Caller, offer_id: str, expected: int,
                 body: OfferUpdate) -> Offer:
    offer = await visible(session, caller, offer_id, lock=True)
    check_version(expected, offer.version)
    if offer.status == OfferStatus.closed.value:
        raise InvalidTransition("A closed offer cannot change.")
    check_references(profile, services=body.services, areas=body.areas, eligibility=body.eligibility)
    if body.site_code is not None:
        await check_site(session, body.site_code)
    for field in ("title", "description", "services", "areas", "site_code", "capacity"):
        value = getattr(body, field)
        if value is not None:
            setattr(offer, field, list(value) if isinstance(value, list) else value)
    if body.period is not None:
        offer.period = body.period.value
    if body.contact_route is not None:
        offer.contact_route = body.contact_route.value
    if body.eligibility is not None:
        e = body.eligibility
        offer.min_age, offer.max_age = e.min_age, e.max_age
        offer.need_types, offer.household_types = list(e.need_types), list(e.household_types)
    offer.version += 1
    offer.updated_at = utcnow()
    await session.flush()
    return offer


async def transition(session: AsyncSession, caller: Caller, offer_id: str, action: str,
                     if_match: Callable[[int], None]) -> Offer:
    await lock_shared(session)
    offer = await visible(session, caller, offer_id, lock=True)
    if_match(offer.version)
    allowed, to = TRANSITIONS[action]
    if offer.status not in allowed:
        raise InvalidTransition(f"An offer that is {offer.status} cannot be given '{action}'.")
    now = utcnow()
    offer.status = to.value
    offer.version += 1
    offer.updated_at = now
    if to is OfferStatus.published and offer.published_at is None:
        offer.published_at = now
    if to in (OfferStatus.paused, OfferStatus.closed):
        # Proposals not yet accepted go back to the pool; accepted ones are the partner's to deliver.
        await matches.close_proposals(session, offer_id=offer.id, status="withdrawn", reason=f"offer_{to.value}",
                                      at=now)
    await session.flush()
    return offer


async def import_hsds(session: AsyncSession, profile: Profile, caller: Caller, organisation: str,
                      document: HsdsDocument) -> ImportReport:
    """Import every valid service record as a draft offer; report the others, each with its errors."""
    locations = {loc["id"]: loc for loc in document.locations if isinstance(loc.get("id"), str)}
    ids = [r.get("id") for r in document.services if isinstance(r.get("id"), str)]
    taken = await repository.by_external_ids(session, organisation, ids)
    report = ImportReport(imported=[], rejected=[])
    for index, record in enumerate(document.services):
        try:
            external, body = hsds.to_offer(record, locations)
            if external in taken:
                raise hsds.RecordError("id", "already_exists", "a service with this id was imported already")
            await _check_record(session, profile, body)
        except hsds.RecordError as err:
            raw_id = record.get("id")
            report.rejected.append(Rejected(index=index, id=raw_id if isinstance(raw_id, str) else None, errors=[
                FieldIssue(location=f"services.{index}.{err.field}".rstrip("."), issue=err.issue, message=err.message)]))
            continue
        offer = new_offer(organisation, caller, body, external_id=external)
        session.add(offer)
        taken.add(external)
        report.imported.append(Imported(index=index, id=external, offer_id=offer.id))
    await session.flush()
    return report


async def _check_record(session: AsyncSession, profile: Profile, body: OfferCreate) -> None:
    for field, check in (("attributes", {"services": body.services}), ("service_areas", {"areas": body.areas}),
                         ("attributes", {"eligibility": body.eligibility})):
        try:
            check_references(profile, **check)  # type: ignore[arg-type]
        except UnknownReference as exc:
            raise hsds.RecordError(field, "unknown_reference", exc.detail or "unknown reference") from None
    try:
        await check_site(session, body.site_code)
    except UnknownReference:
        raise hsds.RecordError("service_at_locations", "unknown_reference",
                               "the location is not an active site of the consortium") from None
