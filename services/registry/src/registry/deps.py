"""Dependencies declared once, as Annotated aliases, for every router of the registry."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from registry.profile import CityProfile


def get_profile(request: Request) -> CityProfile:
    return request.app.state.profile


Profile = Annotated[CityProfile, Depends(get_profile)]
