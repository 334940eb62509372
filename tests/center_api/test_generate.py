"""The synthetic reference city: counts, validity, reproducibility."""

from __future__ import annotations

import yaml

from center_api.grid import CellLocator, generate_city, validate_city
from contracts import parse_cameras


def test_generated_city_is_valid_and_reproducible(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    summary = generate_city(a, seed=7)
    generate_city(b, seed=7)
    for name in ("grid.geojson", "stations.yaml", "cameras.yaml"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (summary.communities, summary.cells, summary.stations, summary.cameras) == (143, 1037, 40, 8502)

    report = validate_city(a)
    assert report.ok, report.as_text()
    assert report.counts == {"districts": 5, "streets": 30, "communities": 143, "cells": 1037, "stations": 40}
    city = report.city
    assert len({line.station_id for line in city.lineage.values()}) == 40
    cameras = parse_cameras(
        yaml.load((a / "cameras.yaml").read_text(), Loader=yaml.CSafeLoader), "cameras.yaml"
    )
    assert len(cameras) == 8502
    locator = CellLocator(city, tolerance_m=0)
    placed = locator.locate_many([(c.location.lat, c.location.lon) for c in cameras[:500]])
    assert not any(p.unassigned for p in placed)


def test_other_seed_differs(tmp_path) -> None:
    generate_city(tmp_path / "a", seed=1)
    generate_city(tmp_path / "b", seed=2)
    assert (tmp_path / "a" / "grid.geojson").read_bytes() != (tmp_path / "b" / "grid.geojson").read_bytes()
