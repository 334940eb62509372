"""Grid import, validation, location and station routing (no servers)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from center_api.grid import CellLocator, GridConfigError, load_city, validate_city
from center_api.routing import AlertRouter, CameraPlace
from tests.center_api.conftest import DEMO, make_alert


@pytest.fixture(scope="module")
def city():
    return load_city(DEMO)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    shutil.copy(DEMO / "grid.geojson", tmp_path / "grid.geojson")
    shutil.copy(DEMO / "stations.yaml", tmp_path / "stations.yaml")
    return tmp_path


def _edit(config: Path, fn) -> None:
    data = json.loads((config / "grid.geojson").read_text())
    fn(data["features"])
    (config / "grid.geojson").write_text(json.dumps(data))


def _feature(features: list, fid: str) -> dict:
    return next(f for f in features if f["properties"]["id"] == fid)


@pytest.mark.parametrize(
    ("lat", "lon", "cell", "station"),
    [
        (36.6135, 101.775, "c-nanguan-01", "st-nanguan"),
        (36.6135, 101.795, "c-nanguan-03", "st-nanguan"),
        (36.620, 101.785, "c-xiadu-02", "st-xiadu"),
        (36.6135, 101.78, "c-nanguan-01", "st-nanguan"),  # shared edge: smallest id wins
        (36.6135, 101.8003, "c-nanguan-03", "st-nanguan"),  # ~27 m east of the grid: within tolerance
        (36.6135, 101.81, "unassigned", "city"),  # ~900 m away
        (36.0, 100.0, "unassigned", "city"),
    ],
)
def test_locate(city, lat, lon, cell, station) -> None:
    placement = CellLocator(city, tolerance_m=50).locate(lat, lon)
    assert (placement.cell_id, placement.station_id) == (cell, station)


def test_locate_zero_tolerance_is_unassigned(city) -> None:
    assert CellLocator(city, tolerance_m=0).locate(36.6135, 101.8003).unassigned


def test_lineage(city) -> None:
    p = CellLocator(city).locate(36.62, 101.775)
    assert (p.cell_id, p.community_id, p.street_id, p.district_id) == (
        "c-xiadu-01",
        "c-xiadu",
        "s-renmin",
        "d-chengzhong",
    )


def test_locate_many_matches_single(city) -> None:
    loc = CellLocator(city)
    points = [(36.6135, 101.775), (36.0, 100.0), (36.62, 101.785)]
    assert loc.locate_many(points) == [loc.locate(*p) for p in points]


def test_router_prefers_fixed_cell_then_alert_location_then_camera(city) -> None:
    router = AlertRouter(CellLocator(city))
    router.set_camera("fixed", CameraPlace("c-xiadu-03", 36.6135, 101.775))
    router.set_camera("placed", CameraPlace(None, 36.62, 101.785))
    assert router.route(make_alert((36.6135, 101.775), camera_id="fixed")).cell_id == "c-xiadu-03"
    assert router.route(make_alert((36.6135, 101.775), camera_id="placed")).cell_id == "c-nanguan-01"
    assert router.route(make_alert(None, camera_id="placed")).cell_id == "c-xiadu-02"
    unknown = router.route(make_alert(None, camera_id="nobody"))
    assert unknown.unassigned and unknown.station_id == "city"


def test_demo_config_is_valid() -> None:
    report = validate_city(DEMO)
    assert report.ok, report.as_text()
    assert report.counts["cells"] == 6 and report.counts["stations"] == 2


def _error_for(config: Path) -> str:
    with pytest.raises(GridConfigError) as info:
        load_city(config)
    return str(info.value)


def test_malformed_polygon_names_file_and_feature(config: Path) -> None:
    _edit(config, lambda fs: _feature(fs, "c-xiadu-02")["geometry"].update(coordinates=[[[101.78, 36.6]]]))
    msg = _error_for(config)
    assert "grid.geojson" in msg and "c-xiadu-02" in msg and "geometry" in msg


def test_self_intersecting_polygon(config: Path) -> None:
    bowtie = [[[101.78, 36.6175], [101.79, 36.625], [101.79, 36.6175], [101.78, 36.625], [101.78, 36.6175]]]
    _edit(config, lambda fs: _feature(fs, "c-xiadu-02")["geometry"].update(coordinates=bowtie))
    msg = _error_for(config)
    assert "c-xiadu-02" in msg and "Self-intersection" in msg


def test_unknown_station_names_file_and_feature(config: Path) -> None:
    _edit(config, lambda fs: _feature(fs, "c-nanguan-02")["properties"].update(station="st-nowhere"))
    msg = _error_for(config)
    assert "grid.geojson" in msg and "c-nanguan-02" in msg and "st-nowhere" in msg


def test_duplicate_id(config: Path) -> None:
    _edit(config, lambda fs: fs.append(copy.deepcopy(_feature(fs, "c-nanguan-03"))))
    msg = _error_for(config)
    assert "grid.geojson" in msg and "c-nanguan-03" in msg and "duplicate" in msg


def test_duplicate_station_id(config: Path) -> None:
    text = (config / "stations.yaml").read_text() + "  - id: st-xiadu\n    name: again\n"
    (config / "stations.yaml").write_text(text)
    msg = _error_for(config)
    assert "stations.yaml" in msg and "st-xiadu" in msg and "duplicate" in msg


def test_cell_without_station(config: Path) -> None:
    _edit(config, lambda fs: _feature(fs, "c-xiadu-01")["properties"].pop("station"))
    msg = _error_for(config)
    assert "c-xiadu-01" in msg and "no 'station'" in msg


def test_orphan(config: Path) -> None:
    _edit(config, lambda fs: _feature(fs, "c-xiadu-01")["properties"].update(parent="c-missing"))
    msg = _error_for(config)
    assert "c-xiadu-01" in msg and "orphan" in msg


def test_code_must_nest(config: Path) -> None:
    _edit(config, lambda fs: _feature(fs, "c-xiadu-01")["properties"].update(code="630199001002001"))
    assert "does not nest" in _error_for(config)


def test_overlap_and_gap(config: Path) -> None:
    # Widen cell 1 over cell 2 (overlap); shrink cell 3 (gap in its community).
    def change(fs: list) -> None:
        ring1 = _feature(fs, "c-nanguan-01")["geometry"]["coordinates"][0]
        for pt in ring1:
            if pt[0] == 101.78:
                pt[0] = 101.785
        ring3 = _feature(fs, "c-nanguan-03")["geometry"]["coordinates"][0]
        for pt in ring3:
            if pt[0] == 101.8:
                pt[0] = 101.799

    _edit(config, change)
    report = validate_city(config)
    text = report.as_text()
    assert not report.ok
    assert "'c-nanguan-01': overlaps cell 'c-nanguan-02'" in text
    assert "'c-nanguan': gap" in text


def test_report_lists_every_problem(config: Path) -> None:
    def change(fs: list) -> None:
        _feature(fs, "c-xiadu-01")["properties"].update(station="nope")
        _feature(fs, "c-xiadu-02")["properties"].update(level="block")

    _edit(config, change)
    ids = {p.feature for p in validate_city(config).errors}
    assert {"feature 'c-xiadu-01'", "feature 'c-xiadu-02'"} <= ids


def test_create_app_refuses_a_bad_config(config: Path, tmp_path: Path) -> None:
    from center_api.app import create_app
    from tests.center_api.conftest import make_settings

    _edit(config, lambda fs: _feature(fs, "c-nanguan-02")["properties"].update(station="st-nowhere"))
    with pytest.raises(GridConfigError, match="c-nanguan-02"):
        create_app(make_settings(tmp_path, "sqlite+aiosqlite:///:memory:", config_dir=config))
