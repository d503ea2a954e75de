"""The scoring profile loaded at start-up: the view contract with scoring's ranges, the shared
catalogues and the default model. A mistake stops the service naming the file and the field."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from scoring.rules.loader import load_context, load_default_model
from scoring.rules.model import Model
from scoring.rules.validation import RulesContext, ValidationReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoringProfile:
    ctx: RulesContext
    default_model: Model
    default_report: ValidationReport


def load_profile(config_dir: Path) -> ScoringProfile:
    ctx = load_context(config_dir)
    model, report = load_default_model(config_dir, ctx)
    for p in report.problems:
        log.warning("default model %s: %s at %s: %s", model.version, p.code, p.location, p.message)
    return ScoringProfile(ctx, model, report)
