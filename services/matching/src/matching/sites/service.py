"""Sites: seeded from the city profile, added and changed by administrators."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Caller
from servicekit.concurrency import check_version
from servicekit.errors import NotFound
from servicekit.tables import utcnow

from matching.profile import Profile
from matching.profile.sites import AREA_LEVEL, CODE_PREFIX, SiteIn, SiteLevel
from matching.problems import UnknownReference
from matching.schemas import Location
from matching.sites import repository
from matching.sites.schemas import SiteCreate, SitePublic, SiteUpdate
from matching.sites.tables import Site

SIGNIFICANT = {SiteLevel.district_centre: 6, SiteLevel.township_station: 9, SiteLevel.village_point: 12}


def public(site: Site, profile: Profile) -> SitePublic:
    return SitePublic(
        code=site.code, level=SiteLevel(site.level), name=site.name, area_code=site.area_code,
        location=Location(latitude=site.latitude, longitude=site.longitude), hours=site.hours,
        co_located=site.co_located, supermarket=profile.rules.supermarket in site.co_located,
        serves=site.serves, active=site.active, source=site.source, version=site.version, updated_at=site.updated_at,
    )


def _check_references(profile: Profile, co_located: list[str] | None, serves: list[str] | None) -> None:
    if co_located is not None:
        if any(c not in profile.rules.co_location_codes for c in co_located):
            raise UnknownReference("co_located names something sites cannot be co-located with.")
        if len(set(co_located)) != len(co_located):
            raise UnknownReference("co_located lists a co-location twice.")
    if serves is not None and any(a not in profile.areas for a in serves):
        raise UnknownReference("serves names an area that is not in the city.")


async def create(session: AsyncSession, profile: Profile, caller: Caller, body: SiteCreate) -> Site:
    area = profile.areas.get(body.area_code)
    if area is None:
        raise UnknownReference("area_code is not an area of the city.")
    if area.level is not AREA_LEVEL[body.level]:
        raise UnknownReference(f"A {body.level.value} sits in a {AREA_LEVEL[body.level].value}, not a {area.level.value}.")
    if not caller.can_see_area(body.area_code):
        raise NotFound("That area is not in your jurisdiction.")
    _check_references(profile, body.co_located, body.serves)
    stem = CODE_PREFIX[body.level] + body.area_code[: SIGNIFICANT[body.level]]
    taken = await repository.codes_like(session, stem)
    code = stem if stem not in taken else next(f"{stem}-{n}" for n in range(2, 1000) if f"{stem}-{n}" not in taken)
    now = utcnow()
    site = Site(
        code=code, level=body.level.value, name=body.name, area_code=body.area_code,
        latitude=body.location.latitude, longitude=body.location.longitude,
        hours=[h.model_dump(mode="json") for h in body.hours], co_located=body.co_located,
        serves=body.serves or [body.area_code], active=True, source="admin", version=1, created_at=now, updated_at=now,
    )
    session.add(site)
    await session.flush()
    return site


async def update(session: AsyncSession, profile: Profile, caller: Caller, code: str, expected: int,
                 body: SiteUpdate) -> Site:
    site = await repository.get(session, code, lock=True)
    if site is None or not caller.can_see_area(site.area_code):
        raise NotFound("No site with that code is in your jurisdiction.")
    check_version(expected, site.version)
    _check_references(profile, body.co_located, body.serves)
    changes = body.model_dump(exclude_unset=True, mode="json")
    if "location" in changes and body.location is not None:
        site.latitude, site.longitude = body.location.latitude, body.location.longitude
    for field in ("name", "hours", "co_located", "serves", "active"):
        if field in changes and changes[field] is not None:
            setattr(site, field, changes[field])
    site.version += 1
    site.updated_at = utcnow()
    await session.flush()
    return site


def _row(site: SiteIn) -> dict:
    now = utcnow()
    return {
        "code": site.code, "level": site.level.value, "name": site.name, "area_code": site.area,
        "latitude": site.location[0], "longitude": site.location[1],
        "hours": [h.model_dump(mode="json") for h in site.hours or ()], "co_located": list(site.co_located),
        "serves": list(site.serves or [site.area]), "active": True, "source": "profile", "version": 1,
        "created_at": now, "updated_at": now,
    }


async def seed_from_profile(session: AsyncSession, profile: Profile) -> int:
    """Add the profile's sites the database does not have yet; never overwrite an admin's change."""
    known = await repository.all_codes(session)
    missing = [_row(s) for s in profile.sites if s.code not in known]
    await repository.add_many(session, missing)
    return len(missing)
