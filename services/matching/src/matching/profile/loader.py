"""Everything city-specific the matching service needs, loaded once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matching.profile.areas import AreaTree, load_areas
from matching.profile.catalogue import Catalogue, load_catalogue
from matching.profile.errors import ProfileError
from matching.profile.points import PointsRules, load_points
from matching.profile.rules import MatchingRules, load_rules
from matching.profile.sites import SiteIn, load_sites


@dataclass(frozen=True)
class Profile:
    areas: AreaTree
    catalogue: Catalogue
    rules: MatchingRules
    points: PointsRules
    sites: list[SiteIn]


def load_profile(config_dir: Path, *, areas_file: Path | None = None, sites_file: Path | None = None) -> Profile:
    """Read config/: the area tree, the service catalogue and config/matching/*.yaml."""
    areas = load_areas(areas_file or config_dir / "areas.yaml")
    catalogue = load_catalogue(config_dir / "catalogues" / "services.yaml")
    rules_path = config_dir / "matching" / "matching.yaml"
    rules = load_rules(rules_path)
    if rules.micro_wish_service not in catalogue:
        raise ProfileError(rules_path, "micro_wish_service", "not a service of the catalogue")
    points = load_points(config_dir / "matching" / "points.yaml")
    sites = load_sites(sites_file or config_dir / "matching" / "sites.yaml", areas, rules)
    return Profile(areas=areas, catalogue=catalogue, rules=rules, points=points, sites=sites)
