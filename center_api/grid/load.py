"""Import and validate a city config: `grid.geojson` and `stations.yaml` (cameras are the registry's).

`validate_city(config_dir)` returns every problem found; `load_city(config_dir)` raises `GridConfigError`
when any of them is an error. Checks: JSON/YAML syntax, required properties, duplicate ids, unknown levels,
orphans (missing parent or a parent of the wrong level), codes that do not nest in the parent's code,
invalid or self-intersecting polygons, cells without a station or with an unknown one, overlapping cells,
and gaps (a parent not covered by its children) or children sticking out of their parent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
import yaml
from shapely.geometry import shape
from shapely.validation import explain_validity

from center_api.grid.model import (
    PARENT_LEVEL,
    City,
    GridConfigError,
    GridProblem,
    Level,
    Lineage,
    Station,
    Unit,
)

GRID_FILE = "grid.geojson"
STATIONS_FILE = "stations.yaml"
# Overlaps and gaps smaller than this (in squared degrees, ~1 m² at Xining's latitude) are rounding noise.
AREA_EPS = 1e-10


@dataclass(slots=True)
class CityReport:
    """The result of validating a config directory; `city` is set when there are no errors."""

    problems: list[GridProblem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    city: City | None = None

    @property
    def errors(self) -> list[GridProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_text(self) -> str:
        head = ", ".join(f"{n} {k}" for k, n in self.counts.items())
        lines = [f"{'OK' if self.ok else 'INVALID'}: {head}"]
        lines += [f"  {p.severity}: {p}" for p in self.problems]
        return "\n".join(lines)


def load_city(config_dir: Path) -> City:
    """Load and validate `config_dir`; raises `GridConfigError` naming the file and feature of each error."""
    report = validate_city(config_dir)
    if report.city is None:
        raise GridConfigError(report.errors)
    return report.city


def _read_stations(path: Path, problems: list[GridProblem]) -> tuple[dict[str, Station], Station | None]:
    name = str(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    except (OSError, yaml.YAMLError) as exc:
        problems.append(GridProblem(name, "(file)", f"cannot read: {exc}"))
        return {}, None
    if not isinstance(data, dict):
        problems.append(GridProblem(name, "(file)", "expected a mapping with 'city_command' and 'stations'"))
        return {}, None
    stations: dict[str, Station] = {}
    command = None
    raw_cmd = data.get("city_command")
    if not isinstance(raw_cmd, dict) or not isinstance(raw_cmd.get("id"), str) or not raw_cmd["id"]:
        problems.append(GridProblem(name, "city_command", "needs an 'id' (the city command center)"))
    else:
        command = Station(raw_cmd["id"], str(raw_cmd.get("name") or raw_cmd["id"]), raw_cmd.get("code"), True)
        stations[command.id] = command
    raw_list = data.get("stations")
    if not isinstance(raw_list, list):
        problems.append(GridProblem(name, "stations", "expected a list of stations"))
        raw_list = []
    for index, item in enumerate(raw_list):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            problems.append(GridProblem(name, f"station #{index}", "needs a non-empty string 'id'"))
            continue
        if item["id"] in stations:
            problems.append(GridProblem(name, f"station {item['id']!r}", "duplicate station id"))
            continue
        code = item.get("code")
        stations[item["id"]] = Station(
            item["id"], str(item.get("name") or item["id"]), None if code is None else str(code)
        )
    return stations, command


def _read_units(path: Path, problems: list[GridProblem]) -> dict[str, Unit]:
    name = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(GridProblem(name, "(file)", f"cannot read: {exc}"))
        return {}
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        problems.append(GridProblem(name, "(file)", "expected a GeoJSON FeatureCollection"))
        return {}
    units: dict[str, Unit] = {}
    for index, feat in enumerate(features):
        props: dict[str, Any] = (feat.get("properties") if isinstance(feat, dict) else None) or {}
        fid = props.get("id")
        label = f"feature {fid!r}" if isinstance(fid, str) and fid else f"feature #{index}"
        if not isinstance(fid, str) or not fid:
            problems.append(GridProblem(name, label, "needs a non-empty string property 'id'"))
            continue
        if fid in units:
            problems.append(GridProblem(name, label, "duplicate id"))
            continue
        try:
            level = Level(props.get("level", ""))
        except ValueError:
            problems.append(GridProblem(name, label, f"unknown level {props.get('level')!r}"))
            continue
        code = props.get("code")
        if not isinstance(code, str | int) or not str(code).isdigit():
            problems.append(GridProblem(name, label, f"code {code!r} must be a string of digits"))
            continue
        try:
            geom = shape(feat.get("geometry"))
        except (ValueError, TypeError, AttributeError, KeyError, shapely.errors.GEOSException) as exc:
            problems.append(GridProblem(name, label, f"malformed geometry: {exc}"))
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
            problems.append(
                GridProblem(name, label, f"geometry must be a non-empty polygon, not {geom.geom_type}")
            )
            continue
        if not geom.is_valid:
            problems.append(GridProblem(name, label, f"invalid polygon: {explain_validity(geom)}"))
            continue
        station = props.get("station")
        units[fid] = Unit(
            fid,
            level,
            str(code),
            str(props.get("name") or fid),
            props.get("parent"),
            geom,
            station if isinstance(station, str) and station else None,
        )
    return units


def _check_tree(
    file: str, units: dict[str, Unit], stations: dict[str, Station], problems: list[GridProblem]
) -> None:
    for unit in units.values():
        label = f"feature {unit.id!r}"
        want = PARENT_LEVEL[unit.level]
        if want is None:
            if unit.parent is not None:
                problems.append(GridProblem(file, label, "a district has no parent"))
        elif unit.parent is None or unit.parent not in units:
            problems.append(GridProblem(file, label, f"orphan: parent {unit.parent!r} not found"))
        else:
            parent = units[unit.parent]
            if parent.level is not want:
                problems.append(
                    GridProblem(file, label, f"parent {parent.id!r} is a {parent.level}, not a {want}")
                )
            elif not unit.code.startswith(parent.code) or len(unit.code) <= len(parent.code):
                problems.append(
                    GridProblem(file, label, f"code {unit.code} does not nest in parent code {parent.code}")
                )
        if unit.level is Level.cell:
            if unit.station is None:
                problems.append(GridProblem(file, label, "cell has no 'station'"))
            elif unit.station not in stations:
                problems.append(GridProblem(file, label, f"unknown station {unit.station!r}"))
        elif unit.station is not None:
            problems.append(GridProblem(file, label, "only cells name a station", "warning"))


def _check_geometry(file: str, units: dict[str, Unit], problems: list[GridProblem]) -> None:
    cells = [u for u in units.values() if u.level is Level.cell]
    geoms = [u.geometry for u in cells]
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i < j and geoms[i].intersection(geoms[j]).area > AREA_EPS:
            problems.append(GridProblem(file, f"feature {cells[i].id!r}", f"overlaps cell {cells[j].id!r}"))
    children: dict[str, list[Unit]] = {}
    for unit in units.values():
        if unit.parent in units:
            children.setdefault(unit.parent, []).append(unit)
    for parent_id, kids in children.items():
        parent = units[parent_id]
        union = shapely.union_all([k.geometry for k in kids])
        gap = parent.geometry.difference(union).area
        if gap > AREA_EPS:
            problems.append(
                GridProblem(
                    file, f"feature {parent_id!r}", f"gap: {gap:.3g} deg² not covered by its children"
                )
            )
        for kid in kids:
            if kid.geometry.difference(parent.geometry).area > AREA_EPS:
                problems.append(
                    GridProblem(file, f"feature {kid.id!r}", f"extends outside its parent {parent_id!r}")
                )


def _lineage(units: dict[str, Unit], command: Station) -> dict[str, Lineage]:
    out: dict[str, Lineage] = {}
    for unit in units.values():
        if unit.level is not Level.cell:
            continue
        up: dict[Level, str] = {}
        cursor = units.get(unit.parent or "")
        while cursor is not None and cursor.level not in up:
            up[cursor.level] = cursor.id
            cursor = units.get(cursor.parent or "")
        out[unit.id] = Lineage(
            unit.id,
            up.get(Level.community),
            up.get(Level.street),
            up.get(Level.district),
            unit.station or command.id,
        )
    return out


def validate_city(config_dir: Path) -> CityReport:
    """Validate `config_dir` (grid.geojson, stations.yaml); never raises for bad content."""
    report = CityReport()
    grid_path, stations_path = Path(config_dir) / GRID_FILE, Path(config_dir) / STATIONS_FILE
    stations, command = _read_stations(stations_path, report.problems)
    units = _read_units(grid_path, report.problems)
    _check_tree(str(grid_path), units, stations, report.problems)
    if any(u.level is Level.cell for u in units.values()):
        _check_geometry(str(grid_path), units, report.problems)
    else:
        report.problems.append(GridProblem(str(grid_path), "(file)", "no cells"))
    for level in Level:
        report.counts[f"{level}s" if level is not Level.community else "communities"] = sum(
            1 for u in units.values() if u.level is level
        )
    report.counts["stations"] = len(stations) - (1 if command else 0)
    if report.ok and command is not None:
        warnings = [p for p in report.problems if p.severity != "error"]
        report.city = City(units, stations, command, _lineage(units, command), warnings)
    return report
