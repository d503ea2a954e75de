"""Who may see and work alerts: the household's township, its district and the city.

Every other role (another township is excluded by the jurisdiction filter; partners, citizens,
villages, departments) reads an alert as not found, never as forbidden.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy import ColumnElement, false

from servicekit.auth import Caller, Role, require_roles

from alerts.alert.tables import Alert

READERS = frozenset({Role.city_admin, Role.district_officer, Role.town_worker})
WORKERS = frozenset({Role.district_officer, Role.town_worker})

AlertReader = Annotated[Caller, Depends(require_roles(*READERS))]
AlertWorker = Annotated[Caller, Depends(require_roles(*WORKERS))]


def alert_scope(caller: Caller) -> ColumnElement[bool]:
    """SQL condition for the alerts this caller may see (nothing for other roles)."""
    if caller.role not in READERS:
        return false()
    return caller.scope(Alert.area_code)
