"""The development seed: every partner of config/demo-accounts.yaml is an approved organisation,
so the demo partner can post offers at once. Never runs in production."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from servicekit.db import Database, unit_of_work

from matching.organisations.service import ensure_demo_partner
from matching.profile import Profile

log = logging.getLogger(__name__)


def demo_partners(config_dir: Path) -> list[tuple[str, str | None]]:
    path = config_dir / "demo-accounts.yaml"
    if not path.is_file():
        return []
    accounts = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("accounts", [])
    return [(a["organisation"], a.get("area")) for a in accounts if a.get("role") == "partner" and a.get("organisation")]


async def seed_demo(db: Database, profile: Profile, config_dir: Path) -> list[str]:
    added = []
    async with unit_of_work(db) as session:
        for org_id, area in demo_partners(config_dir):
            if await ensure_demo_partner(session, org_id, area or profile.areas.city):
                added.append(org_id)
    if added:
        log.info("development seed: approved demo partner(s) %s", ", ".join(added))
    return added
