"""Generate config/areas.yaml: a synthetic city shaped like Hangzhou (合成杭州).

Deterministic (seeded): the output is committed as data, and running this again must give the
same bytes. District codes are Hangzhou's public statistical division codes; township and village
names are synthetic. Counts: 14 districts and counties, 192 townships, 3,222 villages, as in
the 2024 report (区县 14, 镇街 192, 村社 3,222).

    .venv/bin/python scripts/gen_areas.py > config/areas.yaml
"""

from __future__ import annotations

import random
import sys

SEED = 20241128

# code, name, kind, centroid, townships, villages, spread (degrees), urban share of streets
DISTRICTS = [
    ("330102", "上城区", "district", (30.25, 120.17), 14, 200, 0.03, 1.0),
    ("330105", "拱墅区", "district", (30.32, 120.14), 18, 260, 0.03, 1.0),
    ("330106", "西湖区", "district", (30.26, 120.13), 12, 210, 0.05, 0.85),
    ("330108", "滨江区", "district", (30.21, 120.21), 3, 70, 0.03, 1.0),
    ("330109", "萧山区", "district", (30.16, 120.26), 22, 420, 0.12, 0.45),
    ("330110", "余杭区", "district", (30.38, 119.97), 12, 240, 0.10, 0.6),
    ("330111", "富阳区", "district", (30.05, 119.96), 24, 340, 0.15, 0.25),
    ("330112", "临安区", "district", (30.23, 119.72), 18, 300, 0.20, 0.3),
    ("330113", "临平区", "district", (30.42, 120.30), 8, 140, 0.06, 0.7),
    ("330114", "钱塘区", "district", (30.30, 120.49), 7, 120, 0.06, 0.9),
    ("330122", "桐庐县", "county", (29.80, 119.69), 14, 200, 0.18, 0.2),
    ("330127", "淳安县", "county", (29.61, 119.04), 23, 450, 0.25, 0.1),
    ("330182", "建德市", "county_city", (29.47, 119.28), 16, 260, 0.22, 0.2),
    ("330161", "西湖风景名胜区", "district", (30.24, 120.14), 1, 12, 0.01, 1.0),
]

# Fixed names where other parts of the suite (demo accounts, docs) refer to an area.
FIXED_TOWNSHIP_NAMES = {"330106001000": "北山街道", "330106002000": "西溪街道"}

# Syllables for synthetic place names; any two give a plausible, fictional name.
SYLLABLES = (
    "安宁和平康乐兴福春秋东西南北江河湖山溪泉桥塘林竹梅兰松柏青云龙凤金玉石田"
    "新华文明光华盛昌永吉祥瑞丰泰定远长清方圆望仙霞岭桃李杏荷花月星晨阳海潮"
)

LAT_BOUNDS = (29.19, 30.56)  # Hangzhou's bounding box, roughly
LON_BOUNDS = (118.35, 120.71)


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _name(rng: random.Random, used: set[str], suffix: str) -> str:
    while True:
        name = rng.choice(SYLLABLES) + rng.choice(SYLLABLES) + suffix
        if name not in used and name[0] != name[1]:
            used.add(name)
            return name


def _split(rng: random.Random, total: int, parts: int, minimum: int = 3) -> list[int]:
    """Split `total` into `parts` positive shares of uneven size (some large, some small)."""
    weights = [rng.uniform(0.5, 1.5) for _ in range(parts)]
    spare = total - minimum * parts
    shares = [minimum + int(spare * w / sum(weights)) for w in weights]
    for i in range(total - sum(shares)):
        shares[i % parts] += 1
    return shares


def _point(rng: random.Random, centre: tuple[float, float], spread: float) -> list[float]:
    lat = _clamp(centre[0] + rng.gauss(0, spread / 2), LAT_BOUNDS)
    lon = _clamp(centre[1] + rng.gauss(0, spread / 2), LON_BOUNDS)
    return [round(lat, 4), round(lon, 4)]


def build() -> dict:
    rng = random.Random(SEED)
    districts = []
    for code, name, kind, centre, n_town, n_village, spread, urban in DISTRICTS:
        townships = []
        used_town: set[str] = set(FIXED_TOWNSHIP_NAMES.values())
        for t, villages_here in enumerate(_split(rng, n_village, n_town), start=1):
            t_code = f"{code}{t:03d}000"
            street = rng.random() < urban or t <= 2 and urban >= 0.5
            t_kind = "street" if street else ("town" if rng.random() < 0.75 else "township")
            suffix = {"street": "街道", "town": "镇", "township": "乡"}[t_kind]
            t_name = FIXED_TOWNSHIP_NAMES.get(t_code) or _name(rng, used_town, suffix)
            t_centre = _point(rng, centre, spread)
            used_village: set[str] = set()
            villages = []
            for v in range(1, villages_here + 1):
                community = rng.random() < (0.9 if street else 0.12)
                v_kind = "community" if community else "village"
                villages.append({
                    "code": f"{code}{t:03d}{v:03d}",
                    "name": _name(rng, used_village, "社区" if community else "村"),
                    "kind": v_kind,
                    "centroid": _point(rng, tuple(t_centre), spread / 6),
                })
            townships.append({"code": t_code, "name": t_name, "kind": t_kind,
                              "centroid": t_centre, "villages": villages})
        districts.append({"code": f"{code}000000", "name": name, "kind": kind,
                          "centroid": [centre[0], centre[1]], "townships": townships})
    return {"version": 1,
            "city": {"code": "330100000000", "name": "杭州市(合成)", "centroid": [30.27, 120.16]},
            "districts": districts}


def render(city: dict) -> str:
    """YAML by hand, so that villages stay one per line and the file diffs well."""
    def c(point: list[float]) -> str:
        return f"[{point[0]}, {point[1]}]"

    n_t = sum(len(d["townships"]) for d in city["districts"])
    n_v = sum(len(t["villages"]) for d in city["districts"] for t in d["townships"])
    out = [
        "# Synthetic city shaped like Hangzhou (合成杭州). GENERATED by scripts/gen_areas.py: do not",
        "# edit by hand. District codes are public statistical division codes; all township and",
        "# village names are synthetic.",
        f"# {len(city['districts'])} districts and counties, {n_t} townships, {n_v} villages.",
        f"version: {city['version']}",
        f"city: {{code: \"{city['city']['code']}\", name: {city['city']['name']}, "
        f"centroid: {c(city['city']['centroid'])}}}",
        "districts:",
    ]
    for d in city["districts"]:
        out += [f"  - code: \"{d['code']}\"", f"    name: {d['name']}", f"    kind: {d['kind']}",
                f"    centroid: {c(d['centroid'])}", "    townships:"]
        for t in d["townships"]:
            out += [f"      - code: \"{t['code']}\"", f"        name: {t['name']}",
                    f"        kind: {t['kind']}", f"        centroid: {c(t['centroid'])}",
                    "        villages:"]
            out += [f"          - {{code: \"{v['code']}\", name: {v['name']}, kind: {v['kind']}, "
                    f"centroid: {c(v['centroid'])}}}" for v in t["villages"]]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(build()))
