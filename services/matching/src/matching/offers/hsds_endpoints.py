"""/api/v1/offers/export and /api/v1/offers/import: offers in Open Referral HSDS, so partners
bring their existing directories (and take them elsewhere)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from servicekit.auth import Role
from servicekit.db import Session, TransactionalRoute
from servicekit.errors import Forbidden, problem_responses
from servicekit.idempotency import Idempotency

from matching.deps import Anyone, CurrentProfile, Partner
from matching.offers import hsds, repository, service
from matching.offers.schemas import HsdsDocument, ImportReport
from matching.organisations import repository as organisations
from matching.organisations.service import approved_partner
from matching.problems import PartnerNotApproved
from matching.sites import repository as sites

router = APIRouter(prefix="/api/v1/offers", tags=["offers"], route_class=TransactionalRoute)
ALL = ("draft", "published", "paused", "closed")


@router.get("/export", operation_id="offers:export",
            summary="Offers as an Open Referral HSDS document (a partner: its own; officials: one organisation's)",
            responses=problem_responses(Forbidden))
async def export(session: Session, caller: Anyone, profile: CurrentProfile,
                 organisation: Annotated[str | None, Query(max_length=64)] = None) -> dict[str, Any]:
    if caller.role in (Role.citizen, Role.department):
        raise Forbidden("Partners and officials export offers.")
    org_id = caller.organisation if caller.role is Role.partner else organisation
    if org_id is None:
        raise Forbidden("Name the organisation to export.")
    offers = await repository.of_organisation(session, org_id, ALL)
    org = await organisations.get(session, org_id)
    site_rows = {code: await sites.get(session, code) for code in {o.site_code for o in offers}}
    return hsds.export_document(profile, offers, {org_id: org} if org else {},
                                {k: v for k, v in site_rows.items() if v is not None})


@router.post("/import", operation_id="offers:import",
             summary="Import offers from an HSDS document as drafts; broken records are reported, the rest imported",
             response_model=ImportReport, responses=problem_responses(Forbidden, PartnerNotApproved))
async def import_offers(document: HsdsDocument, session: Session, caller: Partner, profile: CurrentProfile,
                        _idem: Idempotency) -> ImportReport:
    org = await approved_partner(session, caller)
    return await service.import_hsds(session, profile, caller, org.id, document)
