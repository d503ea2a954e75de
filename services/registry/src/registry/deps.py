"""Dependencies declared once, as Annotated aliases, for every router of the registry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import OFFICIALS, Caller, CurrentCaller, Role, require_roles
from servicekit.db import Session
from servicekit.tables import utcnow

from registry.columns import city_day
from registry.profile import CityProfile
from registry.settings import RegistrySettings
from registry.vault import Vault


def get_profile(request: Request) -> CityProfile:
    return request.app.state.profile


def get_vault(request: Request) -> Vault:
    return request.app.state.vault


Profile = Annotated[CityProfile, Depends(get_profile)]
VaultDep = Annotated[Vault, Depends(get_vault)]


@dataclass
class Context:
    """What a domain operation needs: the transaction, who asks, the city profile, the vault."""

    session: AsyncSession
    caller: Caller
    profile: CityProfile
    vault: Vault
    settings: RegistrySettings
    now: datetime

    @property
    def today(self) -> date:
        return city_day(self.now)

    @property
    def actor(self) -> str:
        return self.caller.subject[:128]


async def get_context(request: Request, session: Session, caller: CurrentCaller) -> Context:
    # async: a plain function would be run in a worker thread for every request.
    return Context(session, caller, request.app.state.profile, request.app.state.vault, request.app.state.settings, utcnow())


Ctx = Annotated[Context, Depends(get_context)]

# Who may do what; every route names one of these.
Officials = Annotated[Caller, Depends(require_roles(*OFFICIALS))]
Deciders = Annotated[Caller, Depends(require_roles(Role.city_admin, Role.district_officer, Role.town_worker))]
Revealers = Annotated[Caller, Depends(require_roles(Role.district_officer, Role.town_worker, Role.village_worker))]
Officers = Annotated[Caller, Depends(require_roles(Role.city_admin, Role.district_officer))]
CityOfficers = Annotated[Caller, Depends(require_roles(Role.city_admin))]
Auditors = Annotated[Caller, Depends(require_roles(Role.auditor, Role.city_admin))]
Citizens = Annotated[Caller, Depends(require_roles(Role.citizen))]
Departments = Annotated[Caller, Depends(require_roles(Role.department))]
FeedReaders = Annotated[Caller, Depends(require_roles(Role.city_admin, Role.district_officer, Role.department))]
