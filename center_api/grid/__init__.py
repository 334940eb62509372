"""The grid: import and validation, spatial location, station routing, synthetic city generation."""

from __future__ import annotations

from center_api.grid.generate import CitySummary, generate_city
from center_api.grid.load import CityReport, load_city, validate_city
from center_api.grid.locate import CellLocator, Placement
from center_api.grid.model import (
    UNASSIGNED,
    City,
    GridConfigError,
    GridProblem,
    Level,
    Lineage,
    Station,
    Unit,
)

__all__ = [
    "UNASSIGNED",
    "CellLocator",
    "City",
    "CityReport",
    "CitySummary",
    "GridConfigError",
    "GridProblem",
    "Level",
    "Lineage",
    "Placement",
    "Station",
    "Unit",
    "generate_city",
    "load_city",
    "validate_city",
]
