"""Households as the API shows them: masked, with the area spelled out."""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

from servicekit.crypto import mask_name

from registry.facts.schemas import facts_documents, facts_public
from registry.households.schemas import AreaRef, HouseholdPublic, HouseholdSummary, StatusChangePublic, SurveyPublic
from registry.households.tables import Household, StatusChange, Survey
from registry.members import service as members
from registry.members.tables import Member
from registry.profile.areas import AreaTree


def label(head_name: str | None) -> str:
    """The only human-readable handle other services get: ``张*明户``."""
    return (mask_name(head_name) if head_name else "*") + "户"


def area_ref(areas: AreaTree, code: str) -> AreaRef:
    village, township, district = areas.get(code), areas.get(code[:9] + "000"), areas.get(code[:6] + "000000")
    assert village is not None and township is not None and district is not None
    return AreaRef(code=code, name=village.name, township_code=township.code, township_name=township.name,
                   district_code=district.code, district_name=district.name, centroid=village.centroid)


def household(h: Household, member_rows: list[Member], areas: AreaTree, today: date) -> HouseholdPublic:
    area = area_ref(areas, h.area_code)
    return HouseholdPublic(
        id=h.id, area=area, register_status=h.register_status, off_register_source=h.off_register_source,
        status_since=h.status_since, channel=h.channel, rural_hukou=h.rural_hukou, label_masked=h.label_masked,
        address_masked=f"{area.name}***" if h.address_enc else None,
        members=[members.public(m, today) for m in member_rows], facts=facts_public(h.facts),
        view=h.view, missing=h.missing, version=h.version, synthetic=h.synthetic,
        closed_on=h.closed_on, closed_reason=h.closed_reason, created_at=h.created_at, updated_at=h.updated_at,
    )


@functools.lru_cache(maxsize=8192)
def _area_document(areas: AreaTree, code: str) -> dict[str, Any]:
    """``area_ref`` as the document writes it, made once per village: the profile does not change
    while the process runs (a new profile is a new AreaTree). Shared by the documents that
    include it, which are only encoded, never changed."""
    area = area_ref(areas, code)
    return {"code": area.code, "name": area.name, "township_code": area.township_code,
            "township_name": area.township_name, "district_code": area.district_code,
            "district_name": area.district_name, "centroid": area.centroid}


def household_document(h: Any, member_rows: list[Any], areas: AreaTree, today: date) -> dict[str, Any]:
    """The masked read as a plain document, field for field what ``household`` serialises to
    (the read path skips building and re-validating the pydantic models); ``h`` and
    ``member_rows`` are the rows of ``repository.read_in_scope``."""
    area = _area_document(areas, h.area_code)
    return {
        "id": h.id, "area": area,
        "register_status": h.register_status, "off_register_source": h.off_register_source,
        "status_since": h.status_since, "channel": h.channel, "rural_hukou": h.rural_hukou,
        "label_masked": h.label_masked, "address_masked": f"{area['name']}***" if h.has_address else None,
        "members": [members.public_document(m, today) for m in member_rows], "facts": facts_documents(h.facts),
        "view": h.view, "missing": h.missing, "version": h.version, "synthetic": h.synthetic,
        "closed_on": h.closed_on, "closed_reason": h.closed_reason, "created_at": h.created_at, "updated_at": h.updated_at,
    }


def summary(h: Household) -> HouseholdSummary:
    return HouseholdSummary(
        id=h.id, area_code=h.area_code, register_status=h.register_status, off_register_source=h.off_register_source,
        channel=h.channel, label_masked=h.label_masked,
        members_total=(h.view or {}).get("members_total"), version=h.version, updated_at=h.updated_at,
    )


def status_change(s: StatusChange) -> StatusChangePublic:
    return StatusChangePublic(from_status=s.from_status, from_source=s.from_source, to_status=s.to_status,
                              to_source=s.to_source, effective_date=s.effective_date, reason=s.reason,
                              actor=s.actor, role=s.role, at=s.at)


def survey(s: Survey) -> SurveyPublic:
    return SurveyPublic(id=s.id, household_id=s.household_id, visited_on=s.visited_on, concern=s.concern,
                        findings=s.findings, actor=s.actor, created_at=s.created_at)
