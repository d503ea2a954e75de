"""The registry as scoring calls it: its household snapshot (its feed is read by FeedConsumer)."""

from __future__ import annotations

from servicekit.http import ServiceClient
from scoring.households.schemas import SnapshotPage

SNAPSHOT_PATH = "/internal/snapshot/households"


class RegistryClient(ServiceClient):
    async def snapshot_page(self, cursor: str | None, limit: int) -> SnapshotPage:
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await self.get(SNAPSHOT_PATH, params=params)
        response.raise_for_status()
        return SnapshotPage.model_validate(response.json())
