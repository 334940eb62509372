"""`generate_city(out_dir, seed)`: a synthetic city at the reference scale, reproducible from a seed.

5 districts > 30 streets > 143 communities > 1,037 cells in a Xining-sized extent, 40 police stations
(each over a contiguous group of communities) and 8,502 cameras spread over the cells as key units, key areas
and key sites. Units tile their parent exactly (recursive bisection on shared coordinates), so the result
passes `validate_city` with no overlaps and no gaps.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import yaml

# Xining's built-up area, roughly: 36 km east-west, 25 km north-south.
EXTENT = (101.55, 36.52, 101.95, 36.75)
DISTRICTS = [
    ("630102", "Chengdong"),
    ("630103", "Chengzhong"),
    ("630104", "Chengxi"),
    ("630105", "Chengbei"),
    ("630106", "Huangzhong"),
]
REFERENCE = {"streets": 30, "communities": 143, "cells": 1037, "stations": 40, "cameras": 8502}
SITE_TYPES = (("key_unit", 0.2), ("key_area", 0.3), ("key_site", 0.5))

Rect = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class CitySummary:
    out_dir: Path
    districts: int
    streets: int
    communities: int
    cells: int
    stations: int
    cameras: int


def _split_counts(total: int, parts: int, rng: random.Random, minimum: int) -> list[int]:
    """`total` split into `parts` random counts, each at least `minimum`."""
    if parts * minimum > total:
        raise ValueError(f"cannot split {total} into {parts} parts of at least {minimum}")
    counts = [minimum] * parts
    weights = [rng.uniform(0.5, 1.5) for _ in range(parts)]
    spare = total - parts * minimum
    for _ in range(spare):
        counts[rng.choices(range(parts), weights)[0]] += 1
    return counts


def _tile(rect: Rect, k: int, rng: random.Random) -> list[Rect]:
    """Split `rect` into `k` rectangles by recursive bisection; cuts are rounded once and shared."""
    if k == 1:
        return [rect]
    x0, y0, x1, y1 = rect
    k1 = k // 2
    frac = k1 / k * rng.uniform(0.92, 1.08)
    if (x1 - x0) * 0.8 >= (y1 - y0):  # degrees of longitude are ~0.8 of latitude's length here
        cut = round(x0 + (x1 - x0) * frac, 6)
        a, b = (x0, y0, cut, y1), (cut, y0, x1, y1)
    else:
        cut = round(y0 + (y1 - y0) * frac, 6)
        a, b = (x0, y0, x1, cut), (x0, cut, x1, y1)
    return _tile(a, k1, rng) + _tile(b, k - k1, rng)


def _feature(
    fid: str, level: str, code: str, name: str, parent: str | None, rect: Rect, station: str | None = None
) -> dict[str, object]:
    x0, y0, x1, y1 = rect
    props: dict[str, object] = {"id": fid, "level": level, "code": code, "name": name, "parent": parent}
    if station is not None:
        props["station"] = station
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def generate_city(out_dir: Path, seed: int = 630100) -> CitySummary:
    """Write grid.geojson, stations.yaml and cameras.yaml for the reference city into `out_dir`."""
    rng = random.Random(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = REFERENCE
    streets_per = _split_counts(n["streets"], len(DISTRICTS), rng, 3)
    comms_per = _split_counts(n["communities"], n["streets"], rng, 2)
    cells_per = _split_counts(n["cells"], n["communities"], rng, 4)
    stations_per = _split_counts(n["communities"], n["stations"], rng, 2)
    station_of_community = [f"st-{i + 1:02d}" for i, c in enumerate(stations_per) for _ in range(c)]

    features: list[dict[str, object]] = []
    cells: list[tuple[str, Rect, str]] = []
    street_i = comm_i = 0
    for (dcode, dname), drect in zip(DISTRICTS, _tile(EXTENT, len(DISTRICTS), rng), strict=True):
        did = f"d-{dcode}"
        features.append(_feature(did, "district", dcode, f"{dname} District", None, drect))
        for s_local, srect in enumerate(_tile(drect, streets_per[DISTRICTS.index((dcode, dname))], rng), 1):
            scode, sid = f"{dcode}{s_local:03d}", f"s-{dcode}{s_local:03d}"
            features.append(_feature(sid, "street", scode, f"{dname} Street {s_local}", did, srect))
            for c_local, crect in enumerate(_tile(srect, comms_per[street_i], rng), 1):
                ccode, cid = f"{scode}{c_local:03d}", f"c-{scode}{c_local:03d}"
                features.append(
                    _feature(
                        cid, "community", ccode, f"{dname} Community {street_i + 1}-{c_local}", sid, crect
                    )
                )
                station = station_of_community[comm_i]
                for k, cell_rect in enumerate(_tile(crect, cells_per[comm_i], rng), 1):
                    cell_code = f"{ccode}{k:03d}"
                    cell_id = f"g-{cell_code}"
                    features.append(
                        _feature(cell_id, "cell", cell_code, f"Cell {cell_code}", cid, cell_rect, station)
                    )
                    cells.append((cell_id, cell_rect, station))
                comm_i += 1
            street_i += 1

    (out_dir / "grid.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )
    stations = {
        "city_command": {"id": "city", "name": "Xining City Command Center"},
        "stations": [
            {"id": f"st-{i:02d}", "name": f"Police Station {i:02d}", "code": f"6301-{i:02d}"}
            for i in range(1, n["stations"] + 1)
        ],
    }
    (out_dir / "stations.yaml").write_text(
        "# Generated by center_api.grid.generate.generate_city; do not edit by hand.\n"
        + yaml.dump(stations, Dumper=yaml.CSafeDumper, sort_keys=False),
        encoding="utf-8",
    )

    cams_per = _split_counts(n["cameras"], len(cells), rng, 1)
    cameras: list[dict[str, object]] = []
    kinds = [kind for kind, _ in SITE_TYPES]
    weights = [weight for _, weight in SITE_TYPES]
    for (cell_id, (x0, y0, x1, y1), _station), count in zip(cells, cams_per, strict=True):
        for j in range(count):
            cam_id = f"xn-{cell_id[2:]}-{j + 1:02d}"
            lon = round(rng.uniform(x0 + (x1 - x0) * 0.05, x1 - (x1 - x0) * 0.05), 6)
            lat = round(rng.uniform(y0 + (y1 - y0) * 0.05, y1 - (y1 - y0) * 0.05), 6)
            site_type = rng.choices(kinds, weights)[0]
            cameras.append(
                {
                    "id": cam_id,
                    "name": f"{site_type} {cam_id}",
                    "url": f"rtsp://127.0.0.1:8554/sim/{cam_id}",
                    "site_type": site_type,
                    "site_id": f"site-{cell_id[2:]}-{j // 3 + 1}",
                    "location": {"lat": lat, "lon": lon},
                    "sample_fps": 1.0,
                }
            )
    (out_dir / "cameras.yaml").write_text(
        "# Generated by center_api.grid.generate.generate_city; do not edit by hand.\n"
        + yaml.dump({"cameras": cameras}, Dumper=yaml.CSafeDumper, sort_keys=False, width=200),
        encoding="utf-8",
    )
    return CitySummary(
        out_dir, len(DISTRICTS), n["streets"], n["communities"], len(cells), n["stations"], len(cameras)
    )
