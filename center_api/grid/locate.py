"""Locate a point in the grid (Shapely STRtree on a local metric projection) and route it to a station.

A point inside a cell gets that cell; on a shared edge, the cell with the smallest id (deterministic). A point
outside every cell gets the nearest cell within `tolerance_m`, else it is unassigned and goes to the city
command center: never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from center_api.grid.model import UNASSIGNED, City

_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON_EQ = 111_320.0


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an alert lands: its grid units and its station (`unassigned` cells go to the city command)."""

    cell_id: str
    community_id: str | None
    street_id: str | None
    district_id: str | None
    station_id: str
    distance_m: float = 0.0

    @property
    def unassigned(self) -> bool:
        return self.cell_id == UNASSIGNED


class CellLocator:
    """STRtree over the cells, in metres of an equirectangular projection centred on the city."""

    def __init__(self, city: City, tolerance_m: float = 50.0) -> None:
        if tolerance_m < 0:
            raise ValueError("tolerance_m must be >= 0")
        self.city = city
        self.tolerance_m = tolerance_m
        cells = sorted(city.cells, key=lambda u: u.id)
        self._ids = np.array([c.id for c in cells], dtype=object)
        minx, miny, maxx, maxy = shapely.total_bounds([c.geometry for c in cells])
        self._lon0, self._lat0 = (minx + maxx) / 2, (miny + maxy) / 2
        self._kx = _M_PER_DEG_LON_EQ * math.cos(math.radians(self._lat0))
        self._geoms = np.array([shapely.transform(c.geometry, self._project) for c in cells], dtype=object)
        self._tree = shapely.STRtree(self._geoms)
        self._unassigned = Placement(UNASSIGNED, None, None, None, city.city_command.id)

    def _project(self, coords: np.ndarray) -> np.ndarray:
        out = np.empty_like(coords)
        out[:, 0] = (coords[:, 0] - self._lon0) * self._kx
        out[:, 1] = (coords[:, 1] - self._lat0) * _M_PER_DEG_LAT
        return out

    def placement(self, cell_id: str | None, distance_m: float = 0.0) -> Placement:
        """The placement of a known cell id; an unknown or missing id is unassigned."""
        line = self.city.lineage.get(cell_id or "")
        if line is None:
            return self._unassigned
        return Placement(
            line.cell_id, line.community_id, line.street_id, line.district_id, line.station_id, distance_m
        )

    def locate(self, lat: float, lon: float) -> Placement:
        return self.locate_many([(lat, lon)])[0]

    def locate_many(self, points: Sequence[tuple[float, float]]) -> list[Placement]:
        """Vectorised: one tree query for a whole batch of (lat, lon) points."""
        if not points:
            return []
        arr = np.asarray(points, dtype=float).reshape(-1, 2)
        xy = np.column_stack(((arr[:, 1] - self._lon0) * self._kx, (arr[:, 0] - self._lat0) * _M_PER_DEG_LAT))
        pts = shapely.points(xy)
        best: dict[int, int] = {}
        src, hit = self._tree.query(pts, predicate="intersects")
        for i, j in zip(src.tolist(), hit.tolist(), strict=True):
            if i not in best or self._ids[j] < self._ids[best[i]]:
                best[i] = j
        out: list[Placement] = []
        for i in range(len(points)):
            if i in best:
                out.append(self.placement(self._ids[best[i]]))
                continue
            if self.tolerance_m > 0:
                idx, dist = self._tree.query_nearest(
                    pts[i], max_distance=self.tolerance_m, return_distance=True
                )
                if len(idx):
                    k = min(range(len(idx)), key=lambda n: self._ids[idx[n]])
                    out.append(self.placement(self._ids[idx[k]], float(dist[k])))
                    continue
            out.append(self._unassigned)
        return out
