"""Loading the scoring profile from config/ at start-up: the view contract with scoring's ranges,
the catalogues, and the default model (config/scoring/model.yaml + portrait.yaml +
suggestions.yaml, one document). A problem stops the service naming the file and the place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scoring.rules.catalogues import load_catalogues
from scoring.rules.errors import ConfigError, load_yaml
from scoring.rules.model import Model
from scoring.rules.validation import RulesContext, ValidationReport, compile_model
from scoring.rules.view import district_codes_from_areas, load_catalogue

MODEL_FILES = ("model.yaml", "portrait.yaml", "suggestions.yaml")


def load_context(config_dir: Path) -> RulesContext:
    districts = district_codes_from_areas(config_dir / "areas.yaml") if (config_dir / "areas.yaml").is_file() else ()
    view = load_catalogue(config_dir / "scoring-view.yaml", config_dir / "scoring" / "fields.yaml", districts)
    catalogues = load_catalogues(config_dir / "catalogues" / "policies.yaml", config_dir / "catalogues" / "services.yaml")
    return RulesContext(view, catalogues)


def read_model_document(model_dir: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """The three files as one document, and which file each top-level key came from."""
    document: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    for name in MODEL_FILES:
        path = model_dir / name
        data = load_yaml(path)
        if not isinstance(data, dict):
            raise ConfigError(path, "(file)", "must be a mapping")
        for key, value in data.items():
            if key in document:
                raise ConfigError(path, key, f"already given in {origin[key].name}")
            document[key] = value
            origin[key] = path
    return document, origin


def load_default_model(config_dir: Path, ctx: RulesContext) -> tuple[Model, ValidationReport]:
    model_dir = config_dir / "scoring"
    document, origin = read_model_document(model_dir)
    model, report = compile_model(document, ctx)
    if model is None:
        lines = []
        for p in report.problems:
            if p.severity != "error":
                continue
            key = p.location.split(".")[0].split("[")[0].split(" ")[0]
            path = origin.get(key, model_dir / "model.yaml")
            lines.append(f"{path}: {p.location}: {p.code}: {p.message}")
        raise ConfigError(model_dir, "(model)", f"{report.errors} problem(s):\n  " + "\n  ".join(lines))
    return model, report
