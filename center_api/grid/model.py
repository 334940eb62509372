"""The city: grid units (district > street > community > cell), stations, and the errors of a bad config.

GridConfigError (ValueError)   -- a config that does not validate; `.problems` lists each bad feature
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from shapely.geometry.base import BaseGeometry


class Level(StrEnum):
    district = "district"
    street = "street"
    community = "community"
    cell = "cell"


PARENT_LEVEL: dict[Level, Level | None] = {
    Level.district: None,
    Level.street: Level.district,
    Level.community: Level.street,
    Level.cell: Level.community,
}

UNASSIGNED = "unassigned"


@dataclass(frozen=True, slots=True)
class GridProblem:
    """One thing wrong with the config: the file, the feature (id or index) and what is wrong."""

    file: str
    feature: str
    message: str
    severity: str = "error"  # "error" stops loading, "warning" is reported only

    def __str__(self) -> str:
        return f"{self.file}: {self.feature}: {self.message}"


class GridConfigError(ValueError):
    """A grid, station or camera config that does not validate. The message names each file and feature."""

    def __init__(self, problems: list[GridProblem]) -> None:
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:20])
        more = f"; ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(shown + more)


@dataclass(frozen=True, slots=True)
class Unit:
    id: str
    level: Level
    code: str
    name: str
    parent: str | None
    geometry: BaseGeometry = field(repr=False, compare=False)  # WGS-84 lon/lat
    station: str | None = None  # cells only


@dataclass(frozen=True, slots=True)
class Station:
    id: str
    name: str
    code: str | None = None
    city_command: bool = False


@dataclass(frozen=True, slots=True)
class Lineage:
    """The units above a cell, resolved once at load."""

    cell_id: str
    community_id: str | None
    street_id: str | None
    district_id: str | None
    station_id: str


@dataclass(slots=True)
class City:
    """A validated city: units by id, stations by id, the city command center, each cell's lineage."""

    units: dict[str, Unit]
    stations: dict[str, Station]
    city_command: Station
    lineage: dict[str, Lineage]
    warnings: list[GridProblem] = field(default_factory=list)

    @property
    def cells(self) -> list[Unit]:
        return [u for u in self.units.values() if u.level is Level.cell]

    def station_name(self, station_id: str | None) -> str | None:
        station = self.stations.get(station_id or "")
        return station.name if station else None
