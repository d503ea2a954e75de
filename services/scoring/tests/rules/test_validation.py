"""A bad model gets a report naming each problem; the default model passes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scoring.rules.errors import ConfigError
from scoring.rules.loader import load_default_model
from scoring.rules.validation import compile_model


def indicator(document, code):
    return next(i for i in document["indicators"] if i["code"] == code)


def at(document, code, tier=0):
    """Where the report places a tier's condition."""
    i = next(n for n, x in enumerate(document["indicators"]) if x["code"] == code)
    return f"indicators[{i}] ({code}).tiers[{tier}].when"


def set_when(document, code, when, tier=0):
    found = indicator(document, code)
    (found["tiers"][tier] if "tiers" in found else found)["when"] = when


def set_points(document, code, points, tier=0):
    found = indicator(document, code)
    (found["tiers"][tier] if "tiers" in found else found)["points"] = points


def problems(document, ctx):
    model, report = compile_model(document, ctx)
    assert (model is None) == (not report.valid)
    return report, {(p.code, p.location) for p in report.problems if p.severity == "error"}


def test_default_model_is_valid_and_reaches_the_brief(document, ctx):
    model, report = compile_model(document, ctx)
    assert report.valid and report.errors == 0, report.problems
    assert report.summary["indicators"] >= 50
    assert report.summary["fields_read"] >= 100
    assert report.summary["policies"] == 16
    assert sum(d.max for d in model.dimensions) == model.total == 100
    assert [b.level for b in model.bands] == [1, 2, 3]  # ordered by score


def test_unknown_field(document, ctx):
    set_when(document, "major_illness", "major_illness_count >= 2")
    report, found = problems(document, ctx)
    assert ("unknown_field", at(document, "major_illness", 0)) in found
    assert "major_illness_count" in report.problems[0].message


def test_unknown_key(document, ctx):
    document["dimensions"][0]["weight"] = 3
    document["indicators"][0]["colour"] = "red"
    report, found = problems(document, ctx)
    assert ("unknown_key", "dimensions.0.weight") in found
    assert ("unknown_key", "indicators.0.colour") in found


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_number_that_is_not_finite_is_a_problem(document, ctx, number):
    """YAML has .nan and .inf: a NaN standard would score every household NaN."""
    first = next(iter(document["standards"]["default"]))
    document["standards"]["default"][first] = number
    report, found = problems(document, ctx)
    assert not report.valid
    assert any(location.startswith(f"standards.default.{first}") for _, location in found), found


def test_dimension_over_its_maximum(document, ctx):
    health = next(d for d in document["dimensions"] if d["code"] == "health")
    health["base"] = 25
    report, found = problems(document, ctx)
    assert ("dimension_over_maximum", "dimensions[2] (health)") in found


def test_positive_points_over_the_maximum(document, ctx):
    set_points(document, "critical_illness_insurance", 3)  # base 19 + 3 > 20
    report, found = problems(document, ctx)
    assert ("dimension_over_maximum", "dimensions[2] (health)") in found
    assert "22" in next(p.message for p in report.problems if p.code == "dimension_over_maximum")


def test_weights_do_not_add_up(document, ctx):
    document["dimensions"][6]["max"] = 9  # other: 8 -> 9, total 101
    report, found = problems(document, ctx)
    assert ("weights_do_not_add_up", "dimensions") in found
    assert "101" in next(p.message for p in report.problems if p.code == "weights_do_not_add_up")


def test_overlapping_bands(document, ctx):
    document["bands"][1]["to"] = 92  # level 2: 60-92 overlaps level 3: 90-100
    report, found = problems(document, ctx)
    assert ("bands_overlap", "bands (level 3)") in found


def test_missing_band(document, ctx):
    document["bands"] = [b for b in document["bands"] if b["level"] != 2]
    document["bands"][0]["level"] = 2  # 90-100 becomes level 2; 60-90 belongs to no band
    report, found = problems(document, ctx)
    assert ("bands_gap", "bands (level 2)") in found
    assert "60 to 90" in next(p.message for p in report.problems if p.code == "bands_gap")


def test_bands_not_reaching_the_total(document, ctx):
    document["bands"][0]["to"] = 95
    report, found = problems(document, ctx)
    assert any(code == "bands_gap" for code, _ in found)


@pytest.mark.parametrize(
    ("when", "code"),
    [
        ("major_illness_members >= 40", "never_fires"),               # above the field's range (0..30)
        ("income_monthly_per_capita < -5", "never_fires"),            # below it
        ("register_status == 'rich'", "unknown_enum_value"),          # not a value of the enum
        ("housing_status in ['castle', 'owned']", "unknown_enum_value"),
        ("members_total >= 5 and members_total < 3", "never_fires"),  # contradictory
        ("disability_grade_min == 2.5", "never_fires"),               # an integer field never equals 2.5
    ],
)
def test_indicator_that_can_never_fire(document, ctx, when, code):
    set_when(document, "large_family", when)
    report, found = problems(document, ctx)
    assert (code, at(document, "large_family", 0)) in found, report.problems


def test_tier_shadowed_by_an_earlier_one(document, ctx):
    tiers = indicator(document, "major_illness")["tiers"]
    tiers.reverse()  # ">= 1" first: the ">= 2" tier can never be reached
    report, found = problems(document, ctx)
    assert ("never_fires", at(document, "major_illness", 1)) in found


@pytest.mark.parametrize(
    "when",
    ["medical_oop_12m / members_total > 1000", "medical_oop_12m / 0 > 1", "debts_total / (members_total - 1) > 5"],
)
def test_division_by_zero(document, ctx, when):
    set_when(document, "large_family", when)
    report, found = problems(document, ctx)
    assert ("division_by_zero", at(document, "large_family", 0)) in found


def test_guarded_division_is_accepted(document, ctx):
    set_when(document, "large_family", "medical_oop_12m / max(members_total, 1) > 10000")
    model, report = compile_model(document, ctx)
    assert report.valid, report.problems


def test_syntax_and_type_errors(document, ctx):
    set_when(document, "large_family", "members_total >=")
    set_when(document, "orphans", "orphans")  # a count is not a yes/no fact
    set_when(document, "single_parent", "__import__('os').system('true')")
    report, found = problems(document, ctx)
    assert ("syntax", at(document, "large_family", 0)) in found
    assert ("type_mismatch", at(document, "orphans", 0)) in found
    assert ("syntax", at(document, "single_parent")) in found


def test_catalogue_references(document, ctx):
    document["policies"] = [p for p in document["policies"] if p["policy"] != "tekun"]
    document["policies"][0]["policy"] = "free_money"
    document["services"]["medical"].append({"service": "tutoring"})
    document["services"]["medical"].append({"service": "space_travel"})
    report, found = problems(document, ctx)
    codes = {code for code, _ in found}
    assert {"policy_without_rule", "unknown_policy", "service_need_mismatch", "unknown_service"} <= codes


def test_every_problem_is_reported_at_once(document, ctx):
    document["dimensions"][6]["max"] = 9
    document["bands"][1]["to"] = 92
    set_when(document, "large_family", "members_total / 0 > 1")
    set_when(document, "orphans", "orphan_count >= 1")
    report, found = problems(document, ctx)
    assert {"weights_do_not_add_up", "bands_overlap", "division_by_zero", "unknown_field"} <= {c for c, _ in found}
    assert report.errors == len(found)


def test_a_broken_model_file_stops_start_up_naming_the_file(tmp_path: Path, config_dir, ctx):
    shutil.copytree(config_dir / "scoring", tmp_path / "scoring")
    text = (tmp_path / "scoring" / "model.yaml").read_text(encoding="utf-8")
    (tmp_path / "scoring" / "model.yaml").write_text(text.replace("major_illness_members >= 2", "major_illness_members >= 99"),
                                                      encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_default_model(tmp_path, ctx)
    assert "model.yaml" in str(caught.value) and "never_fires" in str(caught.value)
    portrait = (tmp_path / "scoring" / "portrait.yaml").read_text(encoding="utf-8")
    (tmp_path / "scoring" / "portrait.yaml").write_text(portrait.replace("fired.major_illness", "fired.nope"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_default_model(tmp_path, ctx)
    assert "portrait.yaml" in str(caught.value)
