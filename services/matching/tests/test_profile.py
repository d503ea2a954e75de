"""The city profile: the real config loads, the generated sites are up to date, mistakes name
the file and the field."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from matching.profile import ProfileError, load_profile

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_real_profile_loads_with_the_consortium_of_the_report():
    profile = load_profile(ROOT / "config")
    levels = {}
    for site in profile.sites:
        levels[site.level.value] = levels.get(site.level.value, 0) + 1
    assert levels == {"district_centre": 14, "township_station": 192, "village_point": 3222}
    assert len(profile.catalogue.services) == 31 and len(profile.catalogue.categories) == 9
    assert all(site.area in profile.areas for site in profile.sites)


@pytest.mark.parametrize(("areas", "out"), [
    (ROOT / "config" / "areas.yaml", ROOT / "config" / "matching" / "sites.yaml"),
    (FIXTURES / "areas.yaml", FIXTURES / "sites.yaml"),
])
def test_generated_sites_are_up_to_date(areas, out):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_sites.py"), "--check", "--areas", str(areas),
                             "--out", str(out)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _copy_config(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config" / "catalogues", config / "catalogues")
    shutil.copytree(ROOT / "config" / "matching", config / "matching")
    shutil.copy(FIXTURES / "areas.yaml", config / "areas.yaml")
    shutil.copy(FIXTURES / "sites.yaml", config / "matching" / "sites.yaml")
    return config


@pytest.mark.parametrize(("file", "old", "new", "field"), [
    ("matching/matching.yaml", "priority_unit: 100", "priority_unit: 10", "(root)"),
    ("matching/matching.yaml", "timezone: Asia/Shanghai", "timezone: Mars/Olympus", "timezone"),
    ("matching/matching.yaml", "micro_wish_service: micro_wish", "micro_wish_service: wishes", "micro_wish_service"),
    ("matching/points.yaml", "officer_credit_max: 500", "officer_credit_max: 0", "officer_credit_max"),
    ("matching/points.yaml", "code: oil_5l", "code: rice_5kg", "(root)"),
    ("matching/sites.yaml", 'area: "330106001000"', 'area: "330106009000"', "sites.1.area"),
    ("matching/sites.yaml", "co_located: [elderly_canteen]", "co_located: [casino]", "sites.4.co_located"),
    ("matching/sites.yaml", "level: village_point", "level: district_centre", "sites.2.area"),
])
def test_a_mistake_names_file_and_field(tmp_path, file, old, new, field):
    config = _copy_config(tmp_path)
    path = config / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ProfileError) as err:
        load_profile(config)
    assert err.value.path == str(path)
    assert err.value.field == field


def test_a_missing_file_is_named(tmp_path):
    config = _copy_config(tmp_path)
    (config / "matching" / "points.yaml").unlink()
    with pytest.raises(ProfileError, match="points.yaml: \\(file\\): not found"):
        load_profile(config)
