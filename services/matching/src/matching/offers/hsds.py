"""Offers in Open Referral HSDS (3.x JSON): ``organizations``, ``services``, ``locations``.

Mapping: an offer is an HSDS service; its site a location (``external_identifier`` = site code);
catalogue services, eligible need types, household types and the contact route are attributes
with taxonomy terms of our taxonomies; covered areas are service areas with a ``urn:zhongfu:area:``
URI; capacity per period is a service capacity whose unit identifier is the period.
Imports are per record: a broken record is reported with where and why, the rest are imported
as drafts, for the partner to check and publish.
"""

from __future__ import annotations

import re
from typing import Any

from matching.offers.schemas import ContactRoute, Eligibility, OfferCreate
from matching.offers.tables import Offer
from matching.periods import Period
from matching.profile import Profile

AREA_URN = "urn:zhongfu:area:"
SITE_ID_TYPE = "zhongfu-site"
TAXONOMY = {"services": "zhongfu-services", "need_types": "zhongfu-need-types",
            "household_types": "zhongfu-household-types", "contact_route": "zhongfu-contact-routes"}
STATUS = {"draft": "inactive", "published": "active", "paused": "temporarily closed", "closed": "defunct"}


def _term(kind: str, code: str, name: str | None, link_type: str, owner: str) -> dict[str, Any]:
    return {"id": f"{owner}:{kind}:{code}", "link_id": owner, "link_type": link_type, "link_entity": "service",
            "taxonomy_term": {"id": f"{TAXONOMY[kind]}:{code}", "code": code, "name": name or code,
                              "taxonomy": TAXONOMY[kind]}}


def export_document(profile: Profile, offers: list[Offer], organisations: dict[str, Any],
                    sites: dict[str, Any]) -> dict[str, Any]:
    services = []
    for o in offers:
        attrs = [_term("services", s, profile.catalogue.services[s].name_zh if s in profile.catalogue else None,
                       "service_type", o.id) for s in o.services]
        attrs += [_term("need_types", t, profile.catalogue.need_types.get(t), "eligibility", o.id) for t in o.need_types]
        attrs += [_term("household_types", t, None, "eligibility", o.id) for t in o.household_types]
        attrs.append(_term("contact_route", o.contact_route, None, "contact", o.id))
        areas = [{"id": f"{o.id}:area:{a}", "service_id": o.id, "uri": AREA_URN + a,
                  "name": (profile.areas.get(a).name if profile.areas.get(a) else a)} for a in o.areas]
        services.append({
            "id": o.external_id or o.id, "organization_id": o.organisation_id, "name": o.title,
            "description": o.description, "status": STATUS[o.status], "minimum_age": o.min_age,
            "maximum_age": o.max_age, "attributes": attrs, "service_areas": areas,
            "service_at_locations": [{"id": f"{o.id}:at:{o.site_code}", "service_id": o.id, "location_id": o.site_code}],
            "capacities": [{"id": f"{o.id}:capacity", "maximum": o.capacity, "available": o.capacity,
                            "unit": {"id": f"zhongfu-unit:{o.period}", "name": f"needs per {o.period}",
                                     "identifier": o.period}, "updated": o.updated_at.isoformat()}],
        })
    locations = [{"id": code, "location_type": "physical", "name": s.name, "latitude": s.latitude,
                  "longitude": s.longitude, "external_identifier": code, "external_identifier_type": SITE_ID_TYPE}
                 for code, s in sorted(sites.items())]
    orgs = [{"id": oid, "name": org.name, "description": org.description} for oid, org in sorted(organisations.items())]
    return {"hsds_version": "3.1", "organizations": orgs, "services": services, "locations": locations}


class RecordError(ValueError):
    def __init__(self, field: str, issue: str, message: str) -> None:
        super().__init__(message)
        self.field, self.issue, self.message = field, issue, message


def _codes(record: dict[str, Any], kind: str) -> list[str]:
    out = []
    for attr in record.get("attributes") or []:
        term = attr.get("taxonomy_term") if isinstance(attr, dict) else None
        if isinstance(term, dict) and term.get("taxonomy") == TAXONOMY[kind] and isinstance(term.get("code"), str):
            out.append(term["code"])
    return list(dict.fromkeys(out))


def _int(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise RecordError(field, "int_type", "must be a whole number")
    return int(value)


def to_offer(record: Any, locations: dict[str, dict[str, Any]]) -> tuple[str, OfferCreate]:
    """One HSDS service record as an offer; RecordError names the field at fault."""
    if not isinstance(record, dict):
        raise RecordError("", "dict_type", "a service record is an object")
    external = record.get("id")
    if not isinstance(external, str) or not 1 <= len(external) <= 128:
        raise RecordError("id", "missing", "every service needs an id of 1 to 128 characters")
    name = record.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        raise RecordError("name", "string_type", "name is required, at most 100 characters")
    services = _codes(record, "services")
    if not services:
        raise RecordError("attributes", "missing", f"no attribute with a term of the {TAXONOMY['services']} taxonomy")
    areas = []
    for i, area in enumerate(record.get("service_areas") or []):
        uri = area.get("uri") if isinstance(area, dict) else None
        if not isinstance(uri, str) or not re.fullmatch(re.escape(AREA_URN) + r"\d{12}", uri):
            raise RecordError(f"service_areas.{i}.uri", "string_pattern_mismatch", f"expected {AREA_URN}<12 digits>")
        areas.append(uri[len(AREA_URN):])
    if not areas:
        raise RecordError("service_areas", "missing", "at least one service area is needed")
    at = record.get("service_at_locations") or []
    location_id = at[0].get("location_id") if at and isinstance(at[0], dict) else None
    location = locations.get(location_id) if isinstance(location_id, str) else None
    if location is None:
        raise RecordError("service_at_locations", "missing", "no location of this document is linked")
    site = location.get("external_identifier") if location.get("external_identifier_type") == SITE_ID_TYPE \
        else location.get("id")
    capacities = record.get("capacities") or []
    capacity = capacities[0] if capacities and isinstance(capacities[0], dict) else {}
    maximum = _int(capacity.get("maximum", capacity.get("available")), "capacities.0.maximum")
    if maximum is None or maximum < 1:
        raise RecordError("capacities.0.maximum", "greater_than_equal", "capacity must be 1 or more")
    unit = capacity.get("unit") if isinstance(capacity.get("unit"), dict) else {}
    period = unit.get("identifier", "month")
    if period not in {p.value for p in Period}:
        raise RecordError("capacities.0.unit.identifier", "enum", "the period is week, month, quarter, year or once")
    routes = _codes(record, "contact_route")
    try:
        offer = OfferCreate(
            title=name, description=str(record.get("description") or "")[:1000], services=services, areas=areas,
            site_code=str(site or ""), capacity=maximum, period=Period(period),
            eligibility=Eligibility(min_age=_int(record.get("minimum_age"), "minimum_age"),
                                    max_age=_int(record.get("maximum_age"), "maximum_age"),
                                    need_types=_codes(record, "need_types"),
                                    household_types=_codes(record, "household_types")),
            contact_route=ContactRoute(routes[0]) if routes and routes[0] in ContactRoute.__members__ else
            ContactRoute.platform_relay,
        )
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        first = errors()[0] if callable(errors) else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "(record)"
        raise RecordError(where, str(first.get("type", "value_error")), "not valid for an offer") from None
    return external, offer
