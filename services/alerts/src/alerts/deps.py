"""Dependencies shared by the routers, declared once as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from alerts.profile import Profile


def get_profile(request: Request) -> Profile:
    return request.app.state.profile


CurrentProfile = Annotated[Profile, Depends(get_profile)]
