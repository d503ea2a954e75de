"""Load and check the whole city profile once, at start-up; a bad file stops the process."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from registry.profile.areas import AreaTree, load_areas
from registry.profile.scoring_view import ScoringViewSpec, load_scoring_view

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CityProfile:
    areas: AreaTree
    scoring_view: ScoringViewSpec


def load_profile(config_dir: Path) -> CityProfile:
    areas = load_areas(config_dir / "areas.yaml")
    view = load_scoring_view(config_dir / "scoring-view.yaml", areas.districts())
    counts = areas.counts()
    log.info("city profile loaded: %d districts, %d townships, %d villages; scoring view of %d fields",
             counts["district"], counts["township"], counts["village"], len(view.names))
    return CityProfile(areas=areas, scoring_view=view)
