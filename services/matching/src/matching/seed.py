"""The development seed: the partners of config/demo-accounts.yaml that config/matching/demo.yaml
lists are approved organisations, so they can post offers at once; the others apply as a new
partner would. Never runs in production."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from servicekit.db import Database, unit_of_work

from matching.organisations.service import ensure_demo_partner
from matching.profile import Profile

log = logging.getLogger(__name__)


def _read(path: Path) -> dict:
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}


def demo_partners(config_dir: Path) -> list[tuple[str, str | None]]:
    """(organisation, area) of the demo partner accounts the seed approves."""
    approved = set(_read(config_dir / "matching" / "demo.yaml").get("approved_partners", []))
    accounts = _read(config_dir / "demo-accounts.yaml").get("accounts", [])
    return [(a["organisation"], a.get("area")) for a in accounts
            if a.get("role") == "partner" and a.get("organisation") in approved]


async def seed_demo(db: Database, profile: Profile, config_dir: Path) -> list[str]:
    added = []
    async with unit_of_work(db) as session:
        for org_id, area in demo_partners(config_dir):
            if await ensure_demo_partner(session, org_id, area or profile.areas.city):
                added.append(org_id)
    if added:
        log.info("development seed: approved demo partner(s) %s", ", ".join(added))
    return added
