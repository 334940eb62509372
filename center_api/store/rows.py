"""Plain incident rows for the batch writer: Core inserts and updates, no ORM unit of work per alert.

`IncidentRow` has the attributes of the `Incident` model that readers use (`incident_public`, the feeds), so a
`StoredEvent` can carry either.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from center_api.grid.locate import Placement
from contracts import Alert


@dataclass(slots=True)
class IncidentRow:
    id: int
    alert_id: str
    kind: str
    severity: int
    status: str
    camera_id: str
    site_id: str | None
    rule: str | None
    zone: str | None
    cell_id: str
    community_id: str | None
    street_id: str | None
    district_id: str | None
    station_id: str
    lat: float | None
    lon: float | None
    first_seen: datetime
    last_seen: datetime
    count: int
    objects: list[Any]
    detail: str | None
    snapshot: str | None
    created_at: datetime
    acknowledged_at: datetime | None
    dispatched_at: datetime | None
    resolved_at: datetime | None
    escalated_at: datetime | None
    open_key: str | None

    def insert_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _INSERT_COLUMNS}

    def fold_params(self) -> dict[str, Any]:
        return {
            "b_id": self.id,
            "b_count": self.count,
            "b_last_seen": self.last_seen,
            "b_first_seen": self.first_seen,
            "b_objects": self.objects,
            "b_detail": self.detail,
            "b_snapshot": self.snapshot,
            "b_severity": self.severity,
        }


ROW_COLUMNS = tuple(f.name for f in fields(IncidentRow))
_INSERT_COLUMNS = tuple(name for name in ROW_COLUMNS if name != "id")


def row_of(row: Row[Any]) -> IncidentRow:
    return IncidentRow(**row._mapping)


def objects_of(alert: Alert) -> list[dict[str, Any]]:
    return [o.model_dump(mode="json") for o in alert.objects]


def new_row(alert: Alert, placement: Placement, snapshot: str | None, key: str, now: datetime) -> IncidentRow:
    a, p = alert, placement
    return IncidentRow(
        id=0,
        alert_id=a.id,
        kind=a.kind.value,
        severity=a.severity,
        status="new",
        camera_id=a.camera_id,
        site_id=a.site_id,
        rule=a.rule,
        zone=a.zone,
        cell_id=p.cell_id,
        community_id=p.community_id,
        street_id=p.street_id,
        district_id=p.district_id,
        station_id=p.station_id,
        lat=a.location.lat if a.location else None,
        lon=a.location.lon if a.location else None,
        first_seen=a.captured_at,
        last_seen=a.captured_at,
        count=1,
        objects=objects_of(a),
        detail=a.detail,
        snapshot=snapshot,
        created_at=now,
        acknowledged_at=None,
        dispatched_at=None,
        resolved_at=None,
        escalated_at=None,
        open_key=key,
    )


def fold_into(row: IncidentRow, alert: Alert, snapshot: str | None) -> None:
    """A repeat alert: count it; the newest gives objects, detail and snapshot; keep the worst severity."""
    row.count = (row.count or 0) + 1
    if alert.captured_at >= row.last_seen:
        row.last_seen = alert.captured_at
        row.objects = objects_of(alert)
        row.detail = alert.detail or row.detail
        row.snapshot = snapshot or row.snapshot
    row.first_seen = min(row.first_seen, alert.captured_at)
    row.severity = min(row.severity, alert.severity)
