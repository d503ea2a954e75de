"""Load and check the whole city profile once, at start-up; a bad file stops the process."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from registry.facts.view import ScoringView, ViewParameters
from registry.profile.areas import AreaTree, load_areas
from registry.profile.catalogue import Catalogue, load_catalogue, load_code_lists, load_need_types
from registry.profile.errors import ProfileError
from registry.profile.scoring_view import ScoringViewSpec, load_scoring_view
from registry.profile.triggers import TriggerRules, load_triggers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CityProfile:
    areas: AreaTree
    scoring_view: ScoringViewSpec
    view: ScoringView
    triggers: TriggerRules
    catalogue: Catalogue
    need_types: frozenset[str]


def load_profile(config_dir: Path) -> CityProfile:
    areas = load_areas(config_dir / "areas.yaml")
    spec = load_scoring_view(config_dir / "scoring-view.yaml", areas.districts())
    triggers_path = config_dir / "registry" / "triggers.yaml"
    triggers = load_triggers(triggers_path)
    if "large_medical_expense_cny" not in triggers.parameters:
        raise ProfileError(triggers_path, "parameters.large_medical_expense_cny", "required by the scoring view")
    code_lists = load_code_lists(config_dir / "registry" / "illnesses.yaml")
    catalogue = load_catalogue(config_dir / "registry" / "departments.yaml", code_lists, triggers.rules_by_fact())
    try:
        view = ScoringView(spec, ViewParameters(large_medical_expense=triggers.parameters["large_medical_expense_cny"]))
    except RuntimeError as exc:
        raise ProfileError(config_dir / "scoring-view.yaml", "fields", str(exc)) from None
    counts = areas.counts()
    log.info(
        "city profile loaded: %d districts, %d townships, %d villages; scoring view of %d fields; "
        "%d departments, %d data items; %d trigger codes",
        counts["district"], counts["township"], counts["village"], len(spec.names),
        len(catalogue.departments), len(catalogue.items), len(triggers.codes),
    )
    need_types = load_need_types(config_dir / "catalogues" / "services.yaml")
    return CityProfile(areas=areas, scoring_view=spec, view=view, triggers=triggers, catalogue=catalogue,
                       need_types=need_types)
