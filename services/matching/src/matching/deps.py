"""Dependencies shared by the routers, declared once as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from servicekit.auth import Caller, Role, require_roles
from servicekit.crypto import BlindIndex
from servicekit.idempotency import Idempotency, IdempotencyClaim

from matching.problems import IdempotencyKeyRequired
from matching.profile import Profile


def get_profile(request: Request) -> Profile:
    return request.app.state.profile


def get_blind_index(request: Request) -> BlindIndex:
    return request.app.state.blind_index


CurrentProfile = Annotated[Profile, Depends(get_profile)]
CurrentBlindIndex = Annotated[BlindIndex, Depends(get_blind_index)]

# Who may do what, by role; the jurisdiction is checked on the rows themselves.
Administrator = Annotated[Caller, Depends(require_roles(Role.city_admin, Role.district_officer))]
Official = Annotated[Caller, Depends(require_roles(
    Role.city_admin, Role.district_officer, Role.town_worker, Role.village_worker))]
Revoker = Annotated[Caller, Depends(require_roles(Role.city_admin, Role.district_officer, Role.town_worker))]
Partner = Annotated[Caller, Depends(require_roles(Role.partner))]
Citizen = Annotated[Caller, Depends(require_roles(Role.citizen))]
Reader = Annotated[Caller, Depends(require_roles(
    Role.city_admin, Role.district_officer, Role.town_worker, Role.village_worker, Role.auditor, Role.service))]
Anyone = Annotated[Caller, Depends(require_roles(*Role))]

# Roles that read every area's rows (the city, auditors, other services).
CITY_READERS = frozenset({Role.city_admin, Role.auditor, Role.service})


async def _required_idempotency(claim: Idempotency) -> IdempotencyClaim:
    if claim is None:
        raise IdempotencyKeyRequired("Send an Idempotency-Key, so a retried redemption is applied once.")
    return claim


RequiredIdempotency = Annotated[IdempotencyClaim, Depends(_required_idempotency)]
