"""Department clients for the feed tests."""

import pytest


@pytest.fixture
async def health_dept(registry):
    async with registry.client("department", dept="health", subject="dept-health") as c:
        yield c


@pytest.fixture
async def police(registry):
    """Public security: deaths come from its death_registration (死亡注销户籍)."""
    async with registry.client("department", dept="public_security", subject="dept-police") as c:
        yield c
