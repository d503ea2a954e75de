"""The area tree: loaded and checked at start-up, served read-only."""

from pathlib import Path

import pytest
import yaml

from registry.profile import ProfileError
from registry.profile.areas import load_areas
from servicekit.testing import TOWNSHIP, VILLAGE

CONFIG = Path(__file__).resolve().parents[4] / "config"


def test_profile_has_hangzhou_shape():
    tree = load_areas(CONFIG / "areas.yaml")
    assert tree.counts() == {"district": 14, "township": 192, "village": 3222}
    for code in ("330106001000", "330106002000", "330106001001"):
        assert code in tree


def test_generator_is_deterministic_and_matches_the_committed_file():
    import runpy

    gen = runpy.run_path(str(CONFIG.parent / "scripts" / "gen_areas.py"))
    assert gen["render"](gen["build"]()) == (CONFIG / "areas.yaml").read_text(encoding="utf-8")


def _write(tmp_path, data) -> Path:
    path = tmp_path / "areas.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _small():
    village = {"code": "330106001001", "name": "甲村", "kind": "village", "centroid": [30.2, 120.1]}
    township = {"code": "330106001000", "name": "甲镇", "kind": "town", "centroid": [30.2, 120.1], "villages": [village]}
    district = {"code": "330106000000", "name": "甲区", "kind": "district", "centroid": [30.2, 120.1], "townships": [township]}
    return {"version": 1, "city": {"code": "330100000000", "name": "市", "centroid": [30.2, 120.1]}, "districts": [district]}


def test_rejects_a_village_outside_its_township(tmp_path):
    data = _small()
    data["districts"][0]["townships"][0]["villages"][0]["code"] = "330106002001"
    with pytest.raises(ProfileError) as err:
        load_areas(_write(tmp_path, data))
    assert "districts.0.townships.0.villages.0.code" in str(err.value) and "areas.yaml" in str(err.value)


def test_rejects_duplicate_codes(tmp_path):
    data = _small()
    villages = data["districts"][0]["townships"][0]["villages"]
    villages.append(dict(villages[0]))
    with pytest.raises(ProfileError, match="duplicate"):
        load_areas(_write(tmp_path, data))


def test_rejects_unknown_kind(tmp_path):
    data = _small()
    data["districts"][0]["kind"] = "province"
    with pytest.raises(ProfileError, match="districts.0.kind"):
        load_areas(_write(tmp_path, data))


async def test_area_with_parent_chain(registry):
    async with registry.client("town_worker", area=TOWNSHIP) as c:
        r = await c.get(f"/api/v1/areas/{VILLAGE}")
    assert r.status_code == 200
    body = r.json()
    assert [p["code"] for p in body["parents"]] == ["330100000000", "330106000000", TOWNSHIP]
    assert body["level"] == "village" and body["children"] == []


async def test_unknown_area_is_404(registry):
    async with registry.client("town_worker", area=TOWNSHIP) as c:
        assert (await c.get("/api/v1/areas/330106999999")).status_code == 404


async def test_flat_list_pages_by_level(registry):
    seen = []
    async with registry.client("city_admin") as c:
        cursor = None
        while True:
            params = {"level": "district", "limit": 5} | ({"cursor": cursor} if cursor else {})
            body = (await c.get("/api/v1/areas", params=params)).json()
            seen += [a["code"] for a in body["items"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        children = (await c.get("/api/v1/areas", params={"parent": TOWNSHIP, "limit": 100})).json()["items"]
    assert len(seen) == len(set(seen)) == 14
    assert children and all(a["parent_code"] == TOWNSHIP for a in children)


async def test_tree_and_counts(registry):
    async with registry.client("village_worker", area=VILLAGE) as c:
        tree = (await c.get("/api/v1/areas/tree", params={"root": "330106000000", "depth": 2})).json()
        counts = (await c.get("/api/v1/areas/counts")).json()
    assert tree["level"] == "district" and tree["children"][0]["children"]
    assert counts == {"district": 14, "township": 192, "village": 3222}


async def test_areas_need_a_token(registry):
    async with registry.client() as c:
        assert (await c.get("/api/v1/areas")).status_code == 401
